"""Diagnostics: POST /diagnostics end to end against the linter's own bare run on the same code."""
from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from app.sandbox.linters import linters

from .load import Connection, summarize
from .server import HOST, Server

# a little of what a learner has open: a few lines with one problem each tool reports
SOURCES = {
    "python": "import os\n\n\ndef area(width, height):\n    return width * height + undefined_name\n\n\nprint(area(2, 3))\n",
    "javascript": "function area(width, height) {\n  debugger;\n  return width * height;\n}\nconsole.log(area(2, 3));\n",
}


def bare_runs(language: str, count: int) -> list[float]:
    """Seconds of each of count runs of the linter itself, unsandboxed, on a file with SOURCES[language]."""
    command = linters()[language].command
    times = []
    with tempfile.TemporaryDirectory(prefix="bench-lint-") as scratch:
        (Path(scratch) / command.source_file).write_text(SOURCES[language])
        for _ in range(count):
            started = time.perf_counter()
            subprocess.run(command.run, cwd=scratch, capture_output=True, check=False)
            times.append(time.perf_counter() - started)
    return times


async def diagnostics_section(engine: Server, count: int) -> dict[str, object]:
    """count checks per language, one at a time, each answer checked; beside count bare runs of the tool."""
    conn = Connection(HOST, engine.port)
    results: dict[str, object] = {}
    try:
        for language, source in SOURCES.items():
            # the first check warms the path (the tool's pages, the slot's first clearing)
            await conn.request("POST", "/diagnostics", {"language": language, "source_code": source})
            latencies, failures, statuses = [], 0, {}
            for _ in range(count):
                started = time.perf_counter()
                rv = await conn.request("POST", "/diagnostics", {"language": language, "source_code": source})
                elapsed = time.perf_counter() - started
                status = rv.json().get("status") if rv.status == 200 else f"http {rv.status}"
                statuses[status] = statuses.get(status, 0) + 1
                if status == "ok" and rv.json()["diagnostics"]:
                    latencies.append(elapsed)
                else:
                    failures += 1
            bare = bare_runs(language, count)
            results[language] = {
                "latency_ms": summarize(latencies),
                "bare_tool_ms": summarize(bare),
                "failures": failures,
                "statuses": statuses,
            }
    finally:
        await conn.close()
    return results
