#!/usr/bin/env bash
# A program of two files with command-line arguments and its own time limit, then a limit too high.
# Usage: examples/multi_file.sh   (BASE_URL defaults to http://127.0.0.1:8000)
source "$(dirname "$0")/common.sh"

echo "== a Python program whose entry file imports a sibling, run with arguments and a 3 s limit"
call POST /executions '{"language": "python",
  "source_code": "import sys\nfrom greet import greet\nprint(greet(sys.argv[1]))",
  "files": {"greet.py": "def greet(name):\n    return \"hello, \" + name\n"},
  "args": ["learner"], "limits": {"timeout_seconds": 3}}'
expect_status 202
execution_id=$(field execution_id)

echo "== long-poll until it ends"
wait_terminal "$execution_id"
expect_field status COMPLETED
expect_field stdout 'hello, learner'
expect_field file_names '["greet.py"]'
expect_field args '["learner"]'
limits=$(field limits)
[[ $limits == *'"timeout_seconds": 3'* ]] || fail "expected the run held to 3 s, got $limits"

echo "== a limit above the server's maximum is refused"
call POST /executions '{"language": "python", "source_code": "", "limits": {"timeout_seconds": 3600}}'
expect_status 422
expect_field error limit_too_high
echo "OK"
