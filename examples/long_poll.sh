#!/usr/bin/env bash
# Long-polling: a plain GET answers at once with the status as it stands; ?wait=SECONDS (0..30)
# holds the request until the run ends, so a client needs no polling loop of its own.
# Usage: examples/long_poll.sh   (BASE_URL defaults to http://127.0.0.1:8000)
source "$(dirname "$0")/common.sh"

echo "== start a run that takes about a second"
call POST /executions '{"language": "python", "source_code": "import time\ntime.sleep(1)\nprint(\"done\")"}'
expect_status 202
execution_id=$(field execution_id)

echo "== a plain GET answers at once, whatever the status"
call GET "/executions/$execution_id"
expect_status 200
echo "   status now: $(field status)"

echo "== GET with ?wait=30 returns as soon as the run ends"
started=$(date +%s.%N)
wait_terminal "$execution_id"
elapsed=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$started" "$(date +%s.%N)")
expect_field status COMPLETED
expect_field stdout done
echo "   held for ${elapsed} s, then answered $(field status) after $(field execution_time_ms) ms of running"

echo "== a wait outside 0..30 is refused with a JSON error"
call GET "/executions/$execution_id?wait=99"
expect_status 400
echo "   error: $(field error)"
echo "OK"
