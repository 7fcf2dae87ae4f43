#!/usr/bin/env bash
# A one-shot run (no session) that reads its standard input.
# Usage: examples/stdin.sh   (BASE_URL defaults to http://127.0.0.1:8000)
source "$(dirname "$0")/common.sh"

echo "== run a program that reads a name from stdin"
call POST /executions '{"language": "python", "source_code": "name = input()\nprint(\"hello, \" + name)", "stdin": "newcomer\n"}'
expect_status 202
expect_field session_id null
execution_id=$(field execution_id)

echo "== long-poll until it ends"
wait_terminal "$execution_id"
expect_field status COMPLETED
stdout=$(field stdout)
[[ $stdout == 'hello, newcomer' ]] || fail "expected stdout 'hello, newcomer', got '$stdout'"

echo "== stdout:"
echo "$stdout"
echo "OK"
