"""Hostile programs against the output limits: floods on stdout and stderr, invalid UTF-8.

Every test runs twice (tests/support/hostile.py's config): with runs forked from a fork server and cold."""
from __future__ import annotations

from support.hostile import HOSTILE_LIMITS, assert_engine_serves, config  # noqa: F401 (config is a fixture)


def test_an_output_flood_is_cut_at_the_limit(client, run_code):
    done = run_code('while True:\n    print("x" * 1000)\n')

    assert done["status"] == "FAILED", {k: v for k, v in done.items() if k != "stdout"}
    assert done["error"] == "output_limit"
    assert done["stdout_truncated"] is True
    assert len(done["stdout"]) == HOSTILE_LIMITS["OUTPUT_LIMIT_BYTES"]
    assert_engine_serves(client)


def test_a_stderr_flood_is_cut_at_the_limit(client, run_code):
    done = run_code('import sys\nwhile True:\n    sys.stderr.write("e" * 1000)\n')

    assert done["status"] == "FAILED", {k: v for k, v in done.items() if k != "stderr"}
    assert done["error"] == "output_limit"
    assert done["stderr_truncated"] is True
    assert len(done["stderr"]) == HOSTILE_LIMITS["OUTPUT_LIMIT_BYTES"]
    assert_engine_serves(client)


INVALID_UTF8 = """
import sys, time
sys.stdout.buffer.write(b"ok \\xff\\xfe \\xc3\\x28 \\x00 end\\n")
sys.stdout.buffer.write(b"split \\xc3")
sys.stdout.flush()
time.sleep(0.05)
sys.stdout.buffer.write(b"\\xa9\\n")
sys.stderr.buffer.write(b"bad \\xed\\xa0\\x80 surrogate\\n")
"""


def test_invalid_utf8_output_comes_back_replaced(client, run_code):
    done = run_code(INVALID_UTF8)

    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == "ok \ufffd\ufffd \ufffd( \x00 end\nsplit \u00e9\n"
    assert done["stderr"] == "bad \ufffd\ufffd\ufffd surrogate\n"
    rv = client.get(f"/executions/{done['execution_id']}")
    assert rv.status_code == 200 and rv.json["stdout"] == done["stdout"]
    assert_engine_serves(client)
