"""The figures against their floors: ratios, a readable table, the machine description, the JSON file."""
from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import psutil

from . import interactive

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, object]:
    """What the figures were measured on, without the host's name."""
    model = None
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), None)
    except OSError:
        pass
    return {
        "cpu_model": model,
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _get(data: dict, *path: str) -> object:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _ratio(value: object, floor: object) -> float | None:
    if isinstance(value, (int, float)) and isinstance(floor, (int, float)) and floor:
        return round(value / floor, 3)
    return None


def ratios(results: dict) -> dict[str, float | None]:
    """Each figure over its floor: >1 for latencies means slower than the floor, <1 for rates means fewer."""
    out: dict[str, float | None] = {}
    for language, figures in (results.get("hello_latency") or {}).items():
        out[f"{language}_hello_median_over_spawn_median"] = _ratio(
            _get(figures, "latency_ms", "median"), _get(results, "floors", language, "spawn", "median_ms")
        )
        if "paced" in figures:
            out[f"{language}_paced_hello_median_over_paced_spawn_median"] = _ratio(
                _get(figures, "paced", "latency_ms", "median"), _get(results, "floors", language, "spawn_paced", "median_ms")
            )
    throughput = results.get("throughput") or {}
    out["throughput_over_parallel_spawn_rate"] = _ratio(
        throughput.get("runs_per_s"), _get(results, "floors", throughput.get("language", "python"), "parallel", "runs_per_s")
    )
    out["autosave_over_trivial_route"] = _ratio(
        _get(results, "autosave", "capacity", "requests_per_s"), _get(results, "autosave", "trivial_route", "requests_per_s")
    )
    # the seed-style peer (bench/peer/), measured in the same sitting: above 1 the engine is ahead
    out["autosave_over_peer"] = _ratio(
        _get(results, "autosave", "capacity", "requests_per_s"), _get(results, "autosave", "peer", "capacity", "requests_per_s")
    )
    # the same two comparisons by server CPU per PATCH (what each would serve with equal cores): a
    # loaded machine gives each loop a different share of the cores, which moves requests per second
    engine_cpu = _get(results, "autosave", "capacity", "server_cpu_ms_per_request")
    out["autosave_cpu_trivial_over_engine"] = _ratio(_get(results, "autosave", "trivial_route", "server_cpu_ms_per_request"), engine_cpu)
    out["autosave_cpu_peer_over_engine"] = _ratio(_get(results, "autosave", "peer", "capacity", "server_cpu_ms_per_request"), engine_cpu)
    return out


def _fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(figure, value, floor, ratio) lines for the table."""
    table: list[tuple[str, str, str, str]] = []
    ratio = results.get("ratios") or {}
    floors = results.get("floors") or {}
    for language, figures in floors.items():
        if "spawn" in figures:
            spawn, parallel = figures["spawn"], figures["parallel"]
            table.append((f"{language}: bare spawn, median / p95", f"{_fmt(spawn['median_ms'])} / {_fmt(spawn['p95_ms'])} ms", "", ""))
            table.append((f"{language}: bare spawns x{parallel['parallelism']} in parallel", _fmt(parallel["runs_per_s"], "runs/s"), "", ""))
        cost = figures.get("sandbox_overhead")
        if cost:
            table.append((
                f"{language}: cold sandboxed run, median (sandbox cost)",
                f"{_fmt(cost['sandboxed_ms']['median'])} ms (+{_fmt(cost['overhead_ms_median'])} ms)",
                _fmt(cost["bare_ms"]["median"], "ms"),
                "",
            ))
    filtered, unfiltered = _get(results, "seccomp", "filtered"), _get(results, "seccomp", "unfiltered")
    if filtered and unfiltered:
        table.append((
            "python: cold sandboxed run with / without the syscall filter, median",
            f"{_fmt(filtered['python_hello_cold_ms']['median'])} / {_fmt(unfiltered['python_hello_cold_ms']['median'])} ms",
            "",
            "",
        ))
        for call in (filtered.get("syscall_ns_median") or {}):
            table.append((
                f"syscall {call.removesuffix('_ns')}() with / without the filter, median",
                f"{_fmt(filtered['syscall_ns_median'][call])} / {_fmt(unfiltered['syscall_ns_median'][call])} ns",
                "",
                "",
            ))
    for language, figures in (results.get("hello_latency") or {}).items():
        if "latency_ms" not in figures:
            continue
        lat = figures["latency_ms"]
        floor = _get(floors, language, "spawn", "median_ms")
        table.append((f"{language}: hello world (new source) end to end, median", _fmt(lat["median"], "ms"), _fmt(floor, "ms"), _fmt(ratio.get(f"{language}_hello_median_over_spawn_median"), "x")))
        table.append((f"{language}: hello world (new source) end to end, p95", _fmt(lat["p95"], "ms"), _fmt(_get(floors, language, "spawn", "p95_ms"), "ms"), ""))
        table.append((f"{language}: failures / program's own time (median)", f"{figures['failures']} / {_fmt(figures['execution_time_ms_median'], 'ms')}", "", ""))
        table.append((f"{language}: of which waiting for a slot, median / p95", f"{_fmt(figures['queue_wait_ms']['median'])} / {_fmt(figures['queue_wait_ms']['p95'])} ms", "", ""))
        paced = figures.get("paced")
        if paced:
            table.append((
                f"{language}: hello world, paced (one every {_fmt(paced['pace_s'])} s), median / p95",
                f"{_fmt(paced['latency_ms']['median'])} / {_fmt(paced['latency_ms']['p95'])} ms",
                _fmt(_get(floors, language, "spawn_paced", "median_ms"), "ms"),
                _fmt(ratio.get(f"{language}_paced_hello_median_over_paced_spawn_median"), "x"),
            ))
        table.append((f"{language}: first run after start", _fmt(figures.get("first_run_ms"), "ms"), "", ""))
        repeated = figures.get("repeated_source")
        if repeated:
            table.append((f"{language}: same source again (cache), median / p95", f"{_fmt(repeated['latency_ms']['median'])} / {_fmt(repeated['latency_ms']['p95'])} ms", "", ""))
            table.append((f"{language}: same source again, failures", str(repeated["failures"]), "", ""))
    tp = results.get("throughput")
    if tp:
        floor = _get(floors, tp["language"], "parallel", "runs_per_s")
        table.append((f"throughput: {tp['runs']} runs, {tp['clients']} clients", _fmt(tp["runs_per_s"], "runs/s"), _fmt(floor, "runs/s"), _fmt(ratio.get("throughput_over_parallel_spawn_rate"), "x")))
        table.append(("throughput: failures / run latency p95", f"{tp['failures']} / {_fmt(tp['latency_ms']['p95'], 'ms')}", "", ""))
        # CPU per run (engine processes only, sandboxes apart) against a bare spawn's: load-proof
        engine_cpu, spawn_cpu = tp.get("engine_cpu_ms_per_run"), _get(floors, tp["language"], "parallel", "cpu_ms_per_spawn")
        if engine_cpu is not None:
            table.append(("throughput: engine CPU per run (no sandbox)", _fmt(engine_cpu, "ms"), _fmt(spawn_cpu, "ms"), _fmt(_ratio(engine_cpu, spawn_cpu), "x")))
    autosave = results.get("autosave")
    if autosave:
        cap, trivial, editors = autosave["capacity"], autosave["trivial_route"], autosave["editors"]
        table.append((f"autosave capacity: {cap['clients']} clients, {_fmt(cap['seconds'])} s", _fmt(cap["requests_per_s"], "req/s"), _fmt(trivial["requests_per_s"], "req/s"), _fmt(ratio.get("autosave_over_trivial_route"), "x")))
        table.append(("autosave capacity: errors / latency p99", f"{cap['errors']} / {_fmt(cap['latency_ms']['p99'], 'ms')}", f"{trivial['errors']} / {_fmt(trivial['latency_ms']['p99'], 'ms')}", ""))
        table += _cpu_per_patch_rows(autosave)
        table.append((f"editors: {editors['editors']} x 1/{_fmt(editors['interval_s'])} s for {_fmt(editors['seconds'])} s, p50 / p99", f"{_fmt(editors['latency_ms']['median'])} / {_fmt(editors['latency_ms']['p99'])} ms", "", ""))
        table.append(("editors: answered / scheduled, errors", f"{editors['requests']} / {editors['scheduled']}, {editors['errors']}", "", ""))
        table.append(("editors: client wake lag p99 (client-side delay)", _fmt(editors["client_lag_ms"]["p99"], "ms"), "", ""))
        if "latency_from_send_ms" in editors:
            sent = editors["latency_from_send_ms"]
            table.append(("editors: p50 / p99 from the send (without the client's lag)", f"{_fmt(sent['median'])} / {_fmt(sent['p99'])} ms", "", ""))
        table += _peer_rows(autosave, ratio)
    live = results.get("backbone")
    if live and "first_chunk_ms" in live:
        first, end = live["first_chunk_ms"], live["end_to_answer_ms"]
        table.append((f"two instances, run on A, stream on B: first chunk, median / p95 ({live['runs']} runs)", f"{_fmt(first['median'])} / {_fmt(first['p95'])} ms", "", ""))
        table.append(("two instances: end to B's long-poll answer, median / p95", f"{_fmt(end['median'])} / {_fmt(end['p95'])} ms", "", ""))
    for language, figures in (results.get("diagnostics") or {}).items():
        if "latency_ms" not in figures:
            continue
        lat, bare = figures["latency_ms"], figures["bare_tool_ms"]
        table.append((
            f"{language}: POST /diagnostics, one per {_fmt(figures.get('interval_s', 0))} s, median / p95",
            f"{_fmt(lat['median'])} / {_fmt(lat['p95'])} ms",
            f"{_fmt(bare['median'])} / {_fmt(bare['p95'])} ms",
            _fmt(_ratio(lat["p95"], bare["p95"]), "x"),
        ))
        table.append((f"{language}: diagnostics failures", str(figures["failures"]), "", ""))
        if "target_p95_ms" in figures:
            met = lat["p95"] is not None and lat["p95"] < figures["target_p95_ms"]
            table.append((
                f"{language}: diagnostics p95 target (in engine median / p95; load {_fmt(figures.get('load'))})",
                f"< {figures['target_p95_ms']} ms: {'met' if met else 'NOT met'}",
                f"{_fmt(figures['in_engine_ms']['median'])} / {_fmt(figures['in_engine_ms']['p95'])} ms",
                "",
            ))
            burst, pool = figures["burst_latency_ms"], figures.get("pool") or {}
            table.append((
                f"{language}: diagnostics back to back, median / p95 (pool hits / waited / cold)",
                f"{_fmt(burst['median'])} / {_fmt(burst['p95'])} ms",
                f"{pool.get('hits')} / {pool.get('waits')} / {pool.get('misses')}",
                "",
            ))
    memory = results.get("memory")
    if memory:
        table.append(("server RSS idle (master + workers)", _fmt(memory["idle_mib"]["total"], "MiB"), "", ""))
        table.append((f"server RSS after {memory['after_sessions_mib']['sessions']} sessions", _fmt(memory["after_sessions_mib"]["total"], "MiB"), "", ""))
        flood = memory["flood"]
        table.append((f"server RSS during output flood ({flood['runs']} runs), peak", _fmt(flood["peak_total_mib"], "MiB"), "", ""))
        table.append(("output flood endings", ", ".join(f"{k}: {v}" for k, v in flood["endings"].items()), "", ""))
    graded = results.get("grading") or {}
    for language, figures in graded.items():
        if not isinstance(figures, dict) or "graded_end_to_end_ms" not in figures:
            continue
        lat = figures["graded_end_to_end_ms"]
        table.append((
            f"{language}: {figures['cases']} cases graded end to end, median / p95",
            f"{_fmt(lat['median'])} / {_fmt(lat['p95'])} ms",
            f"{_fmt(figures['target_unit_ms'], 'ms')} ({figures['target_unit']})",
            f"{_fmt(figures['x_target_unit'], 'x')} (target {figures['target_x']}x: {'met' if figures['target_met'] else 'NOT met'})",
        ))
        if figures.get("cpu_per_grade_ms"):
            table.append((
                f"{language}: CPU per grade (engine + sandbox), median",
                _fmt(figures["cpu_per_grade_ms"], "ms"),
                f"{_fmt(figures['target_unit_cpu_ms'], 'ms')} (its CPU)",
                _fmt(figures["x_target_unit_cpu"], "x"),
            ))
        table.append((
            f"{language}: {figures['cases']} bare cold spawns of the same program / failures",
            f"{_fmt(figures['bare'][str(figures['cases']) + '_spawns_ms']['median'])} ms / {len(figures['failures'])}",
            "",
            _fmt(figures["x_bare_spawns_of_every_case"], "x"),
        ))
    if "rss_at_end_mib" in results:
        table.append(("server RSS at the end of the bench", _fmt(results["rss_at_end_mib"]["total"], "MiB"), "", ""))
    return table


def _cpu_per_patch_rows(autosave: dict) -> list[tuple[str, str, str, str]]:
    """Server CPU per PATCH under the 50 clients: the engine's, plain Flask's, gunicorn alone's and the
    peer's, each from its own loop in this sitting (load-proof where requests per second are not)."""
    def cpu(*path: str) -> object:
        return _get(autosave, *path, "server_cpu_ms_per_request")

    engine, flask, bare, peer = cpu("capacity"), cpu("trivial_route"), cpu("http_server_alone"), cpu("peer", "capacity")
    if engine is None:
        return []
    return [(
        "server CPU per PATCH: engine; plain Flask (gunicorn alone) / peer",
        _fmt(engine, "ms"), f"{_fmt(flask, 'ms')} ({_fmt(bare, 'ms')}) / {_fmt(peer, 'ms')}",
        f"{_fmt(_ratio(flask, engine), 'x')} / {_fmt(_ratio(peer, engine), 'x')}",
    )]


def _peer_rows(autosave: dict, ratio: dict) -> list[tuple[str, str, str, str]]:
    """The seed-style peer beside the engine: its capacity as the floor of ours, its editors' latency."""
    peer = autosave.get("peer") or {}
    if "skipped" in peer:
        return [("autosave peer (Express + PostgreSQL)", f"skipped: {peer['skipped']}"[:120], "", "")]
    if "capacity" not in peer:
        return []
    cap, editors = peer["capacity"], peer.get("editors") or {}
    rows = [(
        "autosave capacity: engine / seed-style peer (Express + PostgreSQL)",
        _fmt(autosave["capacity"]["requests_per_s"], "req/s"), _fmt(cap["requests_per_s"], "req/s"), _fmt(ratio.get("autosave_over_peer"), "x"),
    )]
    if editors:
        mine = autosave["editors"]
        rows.append((
            "editors p50 / p99: engine / peer",
            f"{_fmt(mine['latency_ms']['median'])} / {_fmt(mine['latency_ms']['p99'])} ms",
            f"{_fmt(editors['latency_ms']['median'])} / {_fmt(editors['latency_ms']['p99'])} ms",
            f"errors {mine['errors']} / {editors['errors']}",
        ))
        if "latency_from_send_ms" in mine and "latency_from_send_ms" in editors:
            rows.append((
                "editors p99 from the send: engine / peer (target < 25 ms)",
                _fmt(mine["latency_from_send_ms"]["p99"], "ms"), _fmt(editors["latency_from_send_ms"]["p99"], "ms"), "",
            ))
    return rows


def usage_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Client and server CPU per section, so a reader can tell whether the client was in the way."""
    found: list[tuple[str, dict]] = []
    for language, figures in (results.get("hello_latency") or {}).items():
        if "usage" in figures:
            found.append((f"latency ({language})", figures["usage"]))
    if results.get("throughput"):
        found.append(("throughput", results["throughput"]["usage"]))
    for name in ("capacity", "trivial_route", "http_server_alone", "editors"):
        usage = _get(results, "autosave", name, "usage")
        if usage:
            found.append((f"autosave {name}", usage))
    for name in ("capacity", "editors"):
        usage = _get(results, "autosave", "peer", name, "usage")
        if usage:
            found.append((f"autosave peer {name}", usage))
    return [
        (f"cpu: {name}", f"client {_fmt(u['client_cpu_s'])} s ({_fmt(u['client_cores'])} cores)", f"server {_fmt(u['server_cpu_s'])} s ({_fmt(u['server_cores'])} cores)", f"{_fmt(u['wall_s'])} s")
        for name, u in found
    ]


def print_table(results: dict) -> None:
    m = results["machine"]
    print(f"\nLive Code Execution Engine bench, {results['date']}")
    print(f"{m['logical_cores']} cores ({m['cpu_model']}), {m['ram_gib']} GiB, {m['kernel']}, Python {m['python']}, load {m['load_average_at_start']}")
    # a section that failed has only its error: it gets one row saying so, not a table crash
    failed = {name: value["error"] for name, value in results.items() if isinstance(value, dict) and set(value) == {"error"}}
    shown = {name: value for name, value in results.items() if name not in failed}
    errors = [(f"{name}: FAILED", error[:120], "", "") for name, error in failed.items()]
    table = [("figure", "value", "floor", "ratio"), *rows(shown), *interactive.rows(shown), *usage_rows(shown), *errors]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for index, row in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def write(results: dict, path: Path | None = None) -> Path:
    path = path or RESULTS_DIR / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
