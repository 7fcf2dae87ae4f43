# Shared by the example scripts (source it): BASE_URL, a request helper and a JSON field reader.
# Needs bash, curl and python3 (for JSON; jq may not be installed).
set -euo pipefail

BASE_URL="${BASE_URL:-http://127.0.0.1:8000}"
BASE_URL="${BASE_URL%/}"
WORK_DIR="$(mktemp -d)"
trap 'rm -rf "$WORK_DIR"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# call METHOD PATH [JSON]: one request; sets STATUS (the HTTP code) and BODY (the response text)
call() {
  local method=$1 path=$2 data=${3:-}
  local args=(-sS -X "$method" -o "$WORK_DIR/body" -w '%{http_code}' --max-time 60)
  if [[ -n $data ]]; then
    args+=(-H 'Content-Type: application/json' --data "$data")
  fi
  echo "> $method $path${data:+  $data}"
  STATUS=$(curl "${args[@]}" "$BASE_URL$path") || fail "no answer from $BASE_URL (is the engine running? try: make run)"
  BODY=$(cat "$WORK_DIR/body")
  echo "< $STATUS $BODY" | cut -c 1-300
}

# expect_status CODE: stop unless the last call answered CODE
expect_status() {
  [[ $STATUS == "$1" ]] || fail "expected HTTP $1, got $STATUS: $BODY"
}

# field NAME: the top-level field NAME of the last JSON body (strings raw, null as "null"; as with
# any $(...), trailing newlines are dropped)
field() {
  python3 -c '
import json, sys
body = json.loads(sys.argv[2])
if not isinstance(body, dict) or sys.argv[1] not in body:
    sys.exit(f"no field {sys.argv[1]!r} in {body!r}"[:300])
value = body[sys.argv[1]]
print(value if isinstance(value, str) else json.dumps(value), end="")
' "$1" "$BODY" || fail "the answer has no field '$1'"
}

# expect_field NAME VALUE: stop unless the last body's NAME is VALUE
expect_field() {
  local actual
  actual=$(field "$1")
  [[ $actual == "$2" ]] || fail "expected $1=$2, got $1=$actual"
}

# wait_terminal EXECUTION_ID: long-poll GET /executions/{id}?wait=30 until the run has ended
wait_terminal() {
  local status
  for _ in 1 2 3 4; do
    call GET "/executions/$1?wait=30"
    expect_status 200
    status=$(field status)
    case $status in
      COMPLETED | FAILED | TIMEOUT) return 0 ;;
    esac
  done
  fail "execution $1 still $status after four long-polls"
}
