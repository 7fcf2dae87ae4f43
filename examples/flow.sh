#!/usr/bin/env bash
# The whole flow: create a session, autosave code into it, run it, long-poll the result, print stdout.
# Usage: examples/flow.sh   (BASE_URL defaults to http://127.0.0.1:8000, where `make run` serves)
source "$(dirname "$0")/common.sh"

echo "== create a code session"
call POST /code-sessions '{"language": "python", "source_code": "print(\"draft\")"}'
expect_status 201
session_id=$(field session_id)
expect_field version 1

echo "== autosave new code (version 1 is what this edit is based on)"
call PATCH "/code-sessions/$session_id" '{"source_code": "print(\"hello\")", "version": 1}'
expect_status 200
expect_field version 2

echo "== run the session's current code"
call POST "/code-sessions/$session_id/run"
expect_status 202
expect_field status QUEUED
execution_id=$(field execution_id)

echo "== long-poll until it ends"
wait_terminal "$execution_id"
expect_field status COMPLETED
expect_field exit_code 0
stdout=$(field stdout)
[[ $stdout == "hello" ]] || fail "expected stdout 'hello', got '$stdout'"

echo "== stdout of execution $execution_id:"
echo "$stdout"
echo "OK"
