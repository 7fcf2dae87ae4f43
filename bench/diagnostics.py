"""Diagnostics: POST /diagnostics end to end against the linter's own bare run on the same code."""
from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.sandbox import Language
from app.sandbox.linters import linters

from .load import Connection, summarize
from .server import HOST, Server

# issue 20: POST /diagnostics of Python and JavaScript, 95th percentile
TARGET_P95_MS = 25
# checks arrive as learners' editors send them (each waits 400 ms after the last keystroke): here
# ten a second, one at a time, on one connection (one engine process)
CHECK_INTERVAL_SECONDS = 0.1
# the profile's slots: past every range an engine uses (app/slots.py), beside the tests' own
PROFILE_SLOT = 2093
# a little of what a learner has open: a few lines with one problem each tool reports
SOURCES = {
    "python": "import os\n\n\ndef area(width, height):\n    return width * height + undefined_name\n\n\nprint(area(2, 3))\n",
    "javascript": "function area(width, height) {\n  debugger;\n  return width * height;\n}\nconsole.log(area(2, 3));\n",
}


def bare_run(command: Language, scratch: str) -> float:
    """Seconds of one run of the linter itself, unsandboxed, on the file already in scratch."""
    started = time.perf_counter()
    subprocess.run(command.run, cwd=scratch, capture_output=True, check=False)
    return time.perf_counter() - started


async def wait_for_pool(conn: Connection, language: str, seconds: float = 10.0) -> None:
    """Until the engine process behind conn has a pre-started sandbox of language's linter ready
    (the first check of a process starts its pool; the measure is of a process that serves checks)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rv = await conn.request("GET", "/health")
        warm = (rv.json().get("diagnostics") or {}).get("warm")
        if warm is None or warm["ready"].get(language, 0) >= 1:
            return
        await asyncio.sleep(0.05)


async def _check(conn: Connection, language: str, source: str) -> tuple[str, float, float | None]:
    """(status, seconds to the answer, the engine's own duration_ms in seconds) of one check."""
    started = time.perf_counter()
    rv = await conn.request("POST", "/diagnostics", {"language": language, "source_code": source})
    elapsed = time.perf_counter() - started
    if rv.status != 200:
        return f"http {rv.status}", elapsed, None
    answer = rv.json()
    status = answer.get("status") if answer["diagnostics"] else "no diagnostics"
    return status, elapsed, answer["duration_ms"] / 1000


async def diagnostics_section(engine: Server, count: int) -> dict[str, object]:
    """Per language: count checks paced as editors send them (the target's figure), each followed by
    a bare run of the tool on the same code (interleaved: both see the same load); then count checks
    back to back (a burst: the pre-started sandboxes are used faster than they are replaced)."""
    conn = Connection(HOST, engine.port)
    results: dict[str, object] = {}
    try:
        for language, source in SOURCES.items():
            command = linters()[language].command
            # the first check warms the path (the tool's pages, the slot's first clearing) and
            # starts the process's pre-started linter sandboxes
            await conn.request("POST", "/diagnostics", {"language": language, "source_code": source})
            await wait_for_pool(conn, language)
            latencies, in_engine, bare, burst, failures, statuses = [], [], [], [], 0, {}
            with tempfile.TemporaryDirectory(prefix="bench-lint-") as scratch:
                (Path(scratch) / command.source_file).write_text(source)
                for _ in range(count):
                    started = time.perf_counter()
                    status, elapsed, duration = await _check(conn, language, source)
                    statuses[status] = statuses.get(status, 0) + 1
                    if status == "ok":
                        latencies.append(elapsed)
                        in_engine.append(duration)
                    else:
                        failures += 1
                    bare.append(bare_run(command, scratch))
                    await asyncio.sleep(max(0.0, CHECK_INTERVAL_SECONDS - (time.perf_counter() - started)))
            for _ in range(count):
                status, elapsed, _ = await _check(conn, language, source)
                if status == "ok":
                    burst.append(elapsed)
                else:
                    failures += 1
            rv = await conn.request("GET", "/health")
            warm = (rv.json().get("diagnostics") or {}).get("warm") or {}
            results[language] = {
                # the engine process's pre-started sandboxes (both languages'): checks they answered,
                # those that waited for one being started, and cold checks
                "pool": {key: warm.get(key) for key in ("hits", "waits", "misses", "starts", "start_ms_median", "given_up")},
                "latency_ms": summarize(latencies),
                # the check as the engine timed it (linter, sandbox hand-off, parse): the rest is HTTP and JSON
                "in_engine_ms": summarize(in_engine),
                "bare_tool_ms": summarize(bare),
                "burst_latency_ms": summarize(burst),
                "interval_s": CHECK_INTERVAL_SECONDS,
                "target_p95_ms": TARGET_P95_MS,
                "failures": failures,
                "statuses": statuses,
                "load": os.getloadavg()[0],
            }
    finally:
        await conn.close()
    return results


def _cpu_seconds() -> float:
    """CPU time of this process and of every child it has collected (the sandboxes' inits adopted
    by this subreaper included), user + system."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def profile(count: int, slot: int = PROFILE_SLOT) -> dict[str, dict[str, dict[str, float]]]:
    """Where a check's time goes, phase by phase, cold and pre-started, beside the bare tool:
    count rounds per language, the three ways interleaved in each round (the same load on each).

    Runs the sandbox directly (root, bubblewrap), in slots PROFILE_SLOT and next, outside every
    engine's ranges.
    """
    from app.sandbox import Sandbox, Settings
    from app.sandbox.isolation import Step
    from app.sandbox.lint_pool import LintPool
    from app.sandbox.process import drive
    from app.sandbox.spawn import spawn
    from app.slots import SlotPool

    found = linters()
    with tempfile.TemporaryDirectory(prefix="bench-lint-profile-") as scratch:
        sandbox = Sandbox(Settings(scratch_dir=scratch))
        pool = LintPool(sandbox, SlotPool(Path(scratch) / "slots", 2, first=slot + 1), found, per_language=1)
        pool.start()
        phases: dict[str, dict[str, list[float]]] = {}
        try:
            for _ in range(count):
                for language, source in SOURCES.items():
                    linter = found[language]
                    times = phases.setdefault(language, {})

                    def note(name: str, seconds: float, times: dict[str, list[float]] = times) -> None:
                        times.setdefault(name, []).append(seconds)

                    with tempfile.TemporaryDirectory(prefix="bench-lint-") as bare_dir:
                        (Path(bare_dir) / linter.command.source_file).write_text(source)
                        cpu, started = _cpu_seconds(), time.perf_counter()
                        subprocess.run(linter.command.run, cwd=bare_dir, capture_output=True, check=False)
                        note("bare tool: wall", time.perf_counter() - started)
                        note("bare tool: CPU", _cpu_seconds() - cpu)
                    # cold: Sandbox._launch's steps, timed one by one
                    cpu, started = _cpu_seconds(), time.perf_counter()
                    group = sandbox.slot_group(slot)
                    if group:
                        group.apply(linter.limits.memory_bytes, linter.limits.processes)
                    with sandbox.isolation.launch(linter.command, source.encode(), linter.limits, sandbox.slot_user(slot), group, Step()) as launch:
                        running = spawn(launch)
                        spawned = time.perf_counter()
                        outcome = drive(running, b"", linter.limits.timeout_seconds, linter.limits.output_bytes)
                        driven = time.perf_counter()
                        running.reap()
                    sandbox.clear_slot(slot)
                    cleared = time.perf_counter()
                    linter.parse(outcome.stdout.decode(), outcome.stderr.decode(), source)
                    parsed = time.perf_counter()
                    note("cold: sandbox start (bwrap until it runs the tool)", spawned - started)
                    note("cold: tool run (stdin, output, exit)", driven - spawned)
                    note("cold: reap + clear slot", cleared - driven)
                    note("cold: parse", parsed - cleared)
                    note("cold: total wall", parsed - started)
                    note("cold: total CPU", _cpu_seconds() - cpu)
                    # pre-started: what stays on a check's path
                    deadline = time.monotonic() + 10
                    while (ready := pool.take(language)) is None and time.monotonic() < deadline:
                        time.sleep(0.005)
                    if ready is None:
                        continue
                    # the sandbox's own CPU (its start included) is collected by whoever reaps it: the
                    # engine's thread is what this check adds on its path, beside the tool's run
                    cpu, started = time.thread_time(), time.perf_counter()
                    try:
                        result = pool.run(ready, source.encode())
                        driven = time.perf_counter()
                        linter.warm_parse()(result.stdout, result.stderr, source)
                        parsed = time.perf_counter()
                    finally:
                        pool.finished(ready)
                    # the replacement starts off the path: let it, before the next round's measures
                    while pool.describe()["ready"][language] < 1 and time.monotonic() < deadline:
                        time.sleep(0.005)
                    note("warm: language server (document sent, diagnostics back)", driven - started)
                    note("warm: parse", parsed - driven)
                    note("warm: total wall (on the check's path)", parsed - started)
                    note("warm: engine thread CPU on the check's path", time.thread_time() - cpu)
        finally:
            pool.shutdown()
            sandbox.close()
        starts = pool.describe()["start_ms_median"]
    figures = {language: {name: summarize(values) for name, values in times.items()} for language, times in phases.items()}
    # a replacement's start (bubblewrap, the server's start, handshake and warm-up lint), off the path
    figures["pool"] = {"replacement start, off the path (wall)": {"median": starts or 0.0, "p95": float("nan")}}
    return figures


def print_profile(figures: dict[str, dict[str, dict[str, float]]]) -> None:
    for language, times in figures.items():
        print(f"\n{language}{'':<48} median     p95  (ms)")
        for name, summary in times.items():
            print(f"  {name:<56} {summary['median']:7.2f} {summary['p95']:7.2f}")


if __name__ == "__main__":
    # python -m bench.diagnostics [rounds]: the phase table of docs/aids.md (root, bubblewrap)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    print(f"load before: {os.getloadavg()}")
    print_profile(profile(rounds))
    print(f"load after: {os.getloadavg()}")
