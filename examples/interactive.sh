#!/usr/bin/env bash
# An interactive run: the program asks, we answer while it runs; then a runaway loop stopped with cancel.
# Usage: examples/interactive.sh   (BASE_URL defaults to http://127.0.0.1:8000, where `make run` serves)
source "$(dirname "$0")/common.sh"

echo "== start a program that asks a question, with stdin kept open"
call POST /executions '{"language": "python", "interactive": true, "source_code": "name = input(\"Name? \")\nprint(\"hello\", name)"}'
expect_status 202
execution_id=$(field execution_id)

echo "== wait until it runs (a console waits for the stdin_wanted event of GET /executions/{id}/events)"
for _ in $(seq 100); do
  call GET "/executions/$execution_id"
  [[ $(field status) == RUNNING ]] && break
  sleep 0.1
done
expect_field status RUNNING

echo "== answer (seq numbers the chunks from 1: a retry with the same seq is not appended twice)"
call POST "/executions/$execution_id/stdin" '{"data": "world\n", "seq": 1}'
expect_status 202
expect_field appended true

wait_terminal "$execution_id"
expect_field status COMPLETED
stdout=$(field stdout)
[[ $stdout == "Name? hello world" ]] || fail "expected stdout 'Name? hello world', got '$stdout'"

echo "== a runaway loop, stopped"
call POST /executions '{"language": "python", "source_code": "while True:\n    pass"}'
expect_status 202
loop_id=$(field execution_id)
call POST "/executions/$loop_id/cancel"
expect_status 202
wait_terminal "$loop_id"
expect_field status FAILED
expect_field error cancelled

echo "== cancelling it again: it has already ended"
call POST "/executions/$loop_id/cancel"
expect_status 409
expect_field error already_finished
echo "OK"
