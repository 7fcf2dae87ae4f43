"""What isolation costs: a cold sandboxed run against a bare spawn of the same interpreter and flags."""
from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from app.sandbox import BY_NAME, Limits, Sandbox, Settings

from .load import summarize

# a slot index no engine uses (engines count from 0, warm pools from 1000), with a cgroup tree of
# its own, so the bench can hold it without asking anyone
SLOT = 3900
HELLO = {"python": 'print("hello")\n', "javascript": 'console.log("hello")\n'}


def sandbox_overhead(language_name: str, count: int) -> dict[str, object]:
    """Median and p95 of a bare spawn and of a cold sandboxed run (no warm pool), and their difference."""
    language = BY_NAME[language_name]
    source = HELLO[language_name]
    # a cold start each time: the fork server (on by default) would be another figure
    sandbox = Sandbox(Settings(cgroup_name="live-code-engine-bench", fork_server=False))
    limits = Limits()
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as scratch:
        (Path(scratch) / language.source_file).write_text(source)
        bare_argv = language.run_argv(scratch, limits.memory_bytes)
        bare, sandboxed = [], []
        for _ in range(count):
            started = time.perf_counter()
            done = subprocess.run(bare_argv, cwd=scratch, capture_output=True, check=False)
            bare.append(time.perf_counter() - started)
            assert done.stdout == b"hello\n", done
            started = time.perf_counter()
            result = sandbox.run(language, source.encode(), b"", limits, SLOT)
            sandboxed.append(time.perf_counter() - started)
            assert result.stdout == "hello\n", result
    bare_ms, sandboxed_ms = summarize(bare), summarize(sandboxed)
    return {
        "bare_ms": bare_ms,
        "sandboxed_ms": sandboxed_ms,
        "overhead_ms_median": round(statistics.median(sandboxed) * 1000 - statistics.median(bare) * 1000, 2),
        "isolation": sandbox.describe()["isolation"],
        "cgroups": sandbox.describe()["cgroups"],
    }
