#!/usr/bin/env bash
# Live feedback: the Server-Sent Events of a run (status changes and output as they happen, then a
# final event with the whole execution), read with curl -N so each event shows as it arrives.
# Usage: examples/events.sh   (BASE_URL defaults to http://127.0.0.1:8000)
source "$(dirname "$0")/common.sh"

echo "== start a program that prints, sleeps a second, prints again"
call POST /executions '{"language": "python", "source_code": "import time\nprint(\"first\", flush=True)\ntime.sleep(1)\nprint(\"second\", flush=True)"}'
expect_status 202
execution_id=$(field execution_id)

echo "== GET /executions/$execution_id/events (the stream ends after the final event)"
curl -N -sS --max-time 60 -D "$WORK_DIR/headers" "$BASE_URL/executions/$execution_id/events" | tee "$WORK_DIR/events" \
  || fail "the event stream broke off"

head -n 1 "$WORK_DIR/headers" | grep -q ' 200' || fail "expected HTTP 200: $(head -n 1 "$WORK_DIR/headers")"
grep -qi '^content-type: text/event-stream' "$WORK_DIR/headers" || fail "not text/event-stream"

echo "== check the events"
python3 - "$WORK_DIR/events" <<'PY' || fail "the events are not as documented"
import json, sys

events = []
for block in open(sys.argv[1]).read().split("\n\n"):
    kind, data = None, []
    for line in block.splitlines():
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if kind:
        events.append((kind, json.loads("\n".join(data))))
kinds = [kind for kind, _ in events]
print("   events:", " ".join(kinds))
assert "status" in kinds, "no status event"
output = "".join(data["text"] for kind, data in events if kind == "stdout")
assert output == "first\nsecond\n", f"stdout events carried {output!r}"
assert kinds[-1] == "final", "the last event is not final"
final = events[-1][1]
assert final["status"] == "COMPLETED" and final["stdout"] == "first\nsecond\n", final
print("   final:", final["status"], "exit_code", final["exit_code"])
PY
echo "OK"
