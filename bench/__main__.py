"""python -m bench [--quick] [--sections a,b] [--skip a,b] [--out PATH]: start the engine, measure, stop it."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from . import backbone, diagnostics, grading, interactive, report, seccomp, server, sections
from .sections import QUICK, Counts

# memory first, so that "idle" is an engine nothing has run on yet (floors and seccomp measure the
# sandbox directly, outside the engine)
SECTIONS = ("floors", "seccomp", "memory", "latency", "throughput", "autosave", "grading", "interactive", "diagnostics", "backbone")
SECTION_TIMEOUT_SECONDS = 600
# after /health answers, how long the engine may take to fill its warm pool before measuring
SETTLE_SECONDS = 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke version with small counts (seconds, not minutes)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, from: {', '.join(SECTIONS)}")
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out")
    parser.add_argument("--languages", default="", help="comma-separated languages to measure (default: all GET /languages lists)")
    parser.add_argument("--shared-slots", action="store_true", help="use the machine-wide run slots other engines use (default: the bench engine's own)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/latest.json)")
    parser.add_argument("--max-seconds", type=int, default=None, help="stop the whole bench after this long (default 1500, quick 120)")
    args = parser.parse_args(argv)
    chosen = [s for s in args.sections.split(",") if s]
    skipped = {s for s in args.skip.split(",") if s}
    unknown = (set(chosen) | skipped) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    args.selected = [s for s in SECTIONS if s in chosen and s not in skipped]
    return args


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as rv:
        return json.load(rv)


def bounded(coro: Coroutine[Any, Any, dict]) -> dict:
    return asyncio.run(asyncio.wait_for(coro, SECTION_TIMEOUT_SECONDS))


def measure(engine: server.Server, workdir: Path, selected: list[str], wanted: set[str], counts: Counts, results: dict) -> None:
    catalog = get_json(engine.url + "/languages")
    languages = [entry["name"] for entry in catalog["languages"]]
    if wanted:
        languages = [name for name in languages if name in wanted]
    pool_size = int(get_json(engine.url + "/health/workers")["pool_size"])
    results["engine"] = {
        "languages": {entry["name"]: entry.get("version") for entry in catalog["languages"]},
        "isolation": catalog.get("isolation"),
        "run_workers": pool_size,
        "overrides": server.unthrottled_settings(),
    }
    results["engine"]["settle_s"] = settle(engine)
    results["engine"]["workers_at_start"] = get_json(engine.url + "/health/workers")
    for name in selected:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        key = {"latency": "hello_latency"}.get(name, name)
        try:
            results[key] = run_section(name, engine, workdir, languages, pool_size, counts)
        except Exception as error:  # noqa: BLE001 (one broken section must not lose the others)
            results[key] = {"error": f"{type(error).__name__}: {error}"[:500]}
            results.setdefault("failed_sections", []).append(name)
        print(f"bench: {name} done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    results["engine"]["workers_at_end"] = get_json(engine.url + "/health/workers")
    results["rss_at_end_mib"] = {k: round(v / sections.MIB, 1) for k, v in engine.rss_bytes().items()}


def run_section(name: str, engine: server.Server, workdir: Path, languages: list[str], pool_size: int, counts: Counts) -> dict:
    if name == "floors":
        return sections.floors_section(languages, pool_size, counts)
    if name == "seccomp":
        return seccomp.seccomp_cost(counts.spawns)
    if name == "memory":
        return bounded(sections.memory_section(engine, pool_size, counts))
    if name == "latency":
        return bounded(sections.latency_section(engine, languages, counts))
    if name == "throughput":
        return bounded(sections.throughput_section(engine, "python", counts))
    if name == "grading":
        return bounded(grading.grading_section(engine, languages, counts.grade_repeats))
    if name == "interactive":
        quick = counts.hello_runs < Counts().hello_runs
        return interactive.interactive_section(engine, 5 if quick else 50, 2 if quick else 10)
    if name == "backbone":
        quick = counts.hello_runs < Counts().hello_runs
        return backbone.backbone_section(workdir, 3 if quick else 30)
    if name == "diagnostics":
        return bounded(diagnostics.diagnostics_section(engine, counts.diagnostics_checks))
    quick = counts.hello_runs < Counts().hello_runs
    return bounded(sections.autosave_section(engine, workdir, counts, quick))


def settle(engine: server.Server) -> float:
    """Seconds until the engine's warm pool (if it has one) is full, waiting at most SETTLE_SECONDS."""
    started = time.perf_counter()
    while time.perf_counter() - started < SETTLE_SECONDS:
        warm = get_json(engine.url + "/health/workers").get("warm_pool")
        if not warm or all(warm.get("ready", {}).get(name, 0) >= size for name, size in warm.get("sizes", {}).items()):
            break
        time.sleep(0.1)
    return round(time.perf_counter() - started, 2)


def on_alarm(signum: int, frame: object) -> None:
    raise TimeoutError("the bench ran past --max-seconds")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = QUICK if args.quick else Counts()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.max_seconds or (120 if args.quick else 1500))
    results: dict[str, Any] = {
        "date": report.now(),
        "machine": report.machine(),
        "quick": args.quick,
        "sections": args.selected,
        "counts": vars(counts),
        "private_slots": not args.shared_slots,
    }
    workdir = Path(tempfile.mkdtemp(prefix="engine-bench-"))
    engine: server.Server | None = None
    try:
        engine = server.start_engine(workdir, private_slots=not args.shared_slots)
        measure(engine, workdir, args.selected, set(filter(None, args.languages.split(","))), counts, results)
    except BaseException:
        if engine is not None:
            print(f"bench: failed; the engine's log ends with:\n{engine.log_tail()}", file=sys.stderr)
        raise
    finally:
        if engine is not None:
            results["engine_exit_code"] = engine.stop()
            server.remove_private_cgroups()
        signal.alarm(0)
        shutil.rmtree(workdir, ignore_errors=True)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["ratios"] = report.ratios(results)
    # written first: a figure the table cannot show is still kept
    path = report.write(results, args.out)
    report.print_table(results)
    print(f"\nJSON: {path}")
    if results.get("failed_sections"):
        print(f"bench: sections failed: {', '.join(results['failed_sections'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
