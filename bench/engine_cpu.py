"""python -m bench.engine_cpu [RUNS]: the engine's own CPU per Python hello-world run, two ways.

1. The throughput load (bench.sections.throughput_section: 32 clients) of RUNS runs after 100
   warm-up runs: runs/s and the gunicorn processes' CPU per run (no sandbox).
2. One run at a time (POST, then the long-poll), RUNS // 5 runs: CPU per run, and where the wall
   time goes by the execution's own timestamps (queued_at, started_at, finished_at: milliseconds).

CPU per run is what load from other processes distorts least; each figure is printed with the load
average. Starts its own engine with private slots, as `python -m bench` does.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from . import server, sections
from .sections import Counts

WARM_UP_RUNS = 100


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (from /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def throughput(engine: server.Server, runs: int) -> dict[str, float]:
    pids = [p.pid for p in engine.processes()]
    asyncio.run(sections.throughput_section(engine, "python", Counts(throughput_runs=WARM_UP_RUNS)))
    before = cpu_seconds(pids)
    result = asyncio.run(sections.throughput_section(engine, "python", Counts(throughput_runs=runs)))
    return {
        "runs_per_s": result["runs_per_s"],
        "failures": result["failures"],
        "engine_cpu_ms_per_run": round(1000 * (cpu_seconds(pids) - before) / runs, 2),
    }


def one_at_a_time(engine: server.Server, runs: int) -> dict[str, float]:
    pids = [p.pid for p in engine.processes()]
    connection = http.client.HTTPConnection(server.HOST, engine.port)
    parts: dict[str, list[float]] = {}
    before = cpu_seconds(pids)
    for n in range(runs):
        sent = time.time()
        connection.request("POST", "/executions", json.dumps({"language": "python", "source_code": f"print({n})"}),
                           {"Content-Type": "application/json"})
        execution = json.loads(connection.getresponse().read())
        connection.request("GET", f"/executions/{execution['execution_id']}?wait=30")
        execution = json.loads(connection.getresponse().read())
        answered = time.time()
        if execution["status"] != "COMPLETED":
            raise RuntimeError(f"unexpected result: {execution}")
        queued, started, finished = (_timestamp(execution[k]) for k in ("queued_at", "started_at", "finished_at"))
        for name, seconds in (
            ("post_to_insert", queued - sent), ("insert_to_start", started - queued),
            ("start_to_end", finished - started), ("program", execution["execution_time_ms"] / 1000),
            ("end_to_answer", answered - finished), ("end_to_end", answered - sent),
        ):
            parts.setdefault(name, []).append(seconds * 1000)
    figures = {f"{name}_ms_median": round(statistics.median(values), 2) for name, values in parts.items()}
    figures["engine_cpu_ms_per_run"] = round(1000 * (cpu_seconds(pids) - before) / runs, 2)
    return figures


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 500
    workdir = Path(tempfile.mkdtemp(prefix="engine-cpu-"))
    engine = server.start_engine(workdir, private_slots=True)
    try:
        print(f"throughput ({runs} runs, 32 clients): {throughput(engine, runs)}  load {os.getloadavg()}")
        print(f"one at a time ({runs // 5} runs): {one_at_a_time(engine, runs // 5)}  load {os.getloadavg()}")
    finally:
        engine.stop()
        server.remove_private_cgroups()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
