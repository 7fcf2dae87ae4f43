"""The measurements, one function per section; each returns a JSON-ready dict."""
from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import autosave_peer, floors, overhead, server
from .load import Connection, LoopResult, Response, closed_loop, fan_out, hello_run, open_loop, run_to_end, summarize
from .server import HOST, Server

FLOOD_SOURCE = 'while True:\n    print("x" * 1000)\n'
MIB = 1024 * 1024


@dataclass(frozen=True)
class Counts:
    """How much of everything one run of the bench does (--quick shrinks it)."""

    spawns: int = 50
    spawn_warmup: int = 3
    parallel_spawns: int = 200
    hello_runs: int = 50
    # slow languages (compile, JVM) stop at these time budgets instead, with fewer samples
    spawn_budget_seconds: float = 30.0
    parallel_budget_seconds: float = 20.0
    hello_budget_seconds: float = 30.0
    # the paced series: an untimed pause before each run (and each bare spawn), as a learner
    # reads the output before running again; interpreted languages only
    pace_seconds: float = 0.1
    throughput_runs: int = 500
    throughput_budget_seconds: float = 180.0
    throughput_clients: int = 32
    capacity_clients: int = 50
    capacity_seconds: float = 10.0
    # the target: 1,000 editors saving once a second, p99 < 25 ms
    editors: int = 1000
    editor_seconds: float = 30.0
    editor_interval: float = 1.0
    memory_sessions: int = 1000
    flood_rounds: int = 3
    # graded runs of 50 cases per language, after a first one that compiles and warms
    grade_repeats: int = 5
    # POST /diagnostics one at a time, per language (and as many bare runs of the linter)
    diagnostics_checks: int = 100


QUICK = Counts(
    spawns=5, spawn_warmup=1, parallel_spawns=10, hello_runs=3, pace_seconds=0.01,
    spawn_budget_seconds=1.0, parallel_budget_seconds=1.0, hello_budget_seconds=2.0,
    throughput_runs=12, throughput_budget_seconds=10.0, throughput_clients=4, capacity_clients=4, capacity_seconds=1.0,
    editors=10, editor_seconds=2.0, memory_sessions=20, flood_rounds=1, grade_repeats=1, diagnostics_checks=5,
)


class Usage:
    """Wall time, and CPU time spent by this client process and by the server, over a section."""

    def __init__(self, engine: Server) -> None:
        self.engine = engine
        self.wall = time.perf_counter()
        self.client = time.process_time()
        self.server = engine.cpu_seconds()

    def done(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        client = time.process_time() - self.client
        served = self.engine.cpu_seconds() - self.server
        return {
            "wall_s": round(wall, 3),
            "client_cpu_s": round(client, 3),
            "server_cpu_s": round(served, 3),
            # cores kept busy on average: on a 2-core machine a client near 1.0 competes with the server
            "client_cores": round(client / wall, 3) if wall else 0.0,
            "server_cores": round(served / wall, 3) if wall else 0.0,
        }


def source_of_size(counter: int, size: int = 2048) -> str:
    """About size bytes of plausible Python, different for every counter (each save is a real change)."""
    head = f"# autosave {counter}\n"
    line = "total = sum(value * value for value in range(10)) + len(words)  # typing...\n"
    body = line * ((size - len(head)) // len(line) + 1)
    return (head + body)[:size]


def floors_section(languages: list[str], parallelism: int, counts: Counts) -> dict[str, object]:
    """Bare spawn latency and bare parallel spawn rate, per language with a known floor command."""
    results: dict[str, object] = {}
    for language in languages:
        hello = floors.HELLO.get(language)
        if hello is None or not hello.installed():
            results[language] = {"skipped": "no bare toolchain known for this language"}
            continue
        results[language] = {
            "spawn": floors.cold_spawn(hello, counts.spawns, counts.spawn_budget_seconds, counts.spawn_warmup),
            "parallel": floors.parallel_spawn(hello, counts.parallel_spawns, parallelism, counts.parallel_budget_seconds),
        }
        if not hello.compiled:
            results[language]["spawn_paced"] = floors.cold_spawn(
                hello, counts.spawns, counts.spawn_budget_seconds, counts.spawn_warmup, counts.pace_seconds
            )
        if language in overhead.HELLO:
            results[language]["sandbox_overhead"] = overhead.sandbox_overhead(language, counts.spawns)
    return results


def queue_wait(execution: dict | None) -> float | None:
    """Seconds an execution waited between queued_at and started_at, from its timestamps."""
    if not execution or not execution.get("queued_at") or not execution.get("started_at"):
        return None
    queued, started = (datetime.fromisoformat(execution[k].replace("Z", "+00:00")) for k in ("queued_at", "started_at"))
    return (started - queued).total_seconds()


async def _hello_series(conn: Connection, language: str, fresh: bool, counts: Counts, pace: float = 0.0) -> dict[str, object]:
    """Up to counts.hello_runs runs one at a time within the time budget, each timed and checked;
    with pace, an untimed pause of that many seconds before each."""
    hello = floors.HELLO[language]
    outcomes = []
    stop_at = time.perf_counter() + counts.hello_budget_seconds
    while len(outcomes) < counts.hello_runs and (not outcomes or time.perf_counter() < stop_at):
        await asyncio.sleep(pace)
        source = hello.fresh_source() if fresh else hello.source
        outcomes.append(await hello_run(conn, language, source, hello.expected))
    ok = [o for o in outcomes if o.ok]
    program_ms = [o.execution["execution_time_ms"] for o in ok if o.execution and o.execution.get("execution_time_ms") is not None]
    compile_ms = [o.execution["compile_time_ms"] for o in ok if o.execution and o.execution.get("compile_time_ms") is not None]
    waits = [w for w in (queue_wait(o.execution) for o in ok) if w is not None]
    return {
        "latency_ms": summarize([o.seconds for o in ok]),
        "failures": len(outcomes) - len(ok),
        "failure_examples": sorted({o.problem for o in outcomes if o.problem})[:3],
        # the program's own time as the engine measured it: the rest is the engine's overhead
        "execution_time_ms_median": statistics.median(program_ms) if program_ms else None,
        "compile_time_ms_median": statistics.median(compile_ms) if compile_ms else None,
        # queued -> started: waiting for a run slot (slots are machine-wide, shared with other engines)
        "queue_wait_ms": summarize(waits),
    }


async def latency_section(engine: Server, languages: list[str], counts: Counts) -> dict[str, object]:
    """Hello world end to end, one run at a time: POST /executions until the result is seen.

    Each run's source is new (a unique comment), as after an edit; for compiled languages a second
    series repeats one source, which an engine with a compile cache answers without compiling.
    """
    results: dict[str, object] = {}
    conn = Connection(HOST, engine.port)
    for language in languages:
        hello = floors.HELLO.get(language)
        if hello is None:
            results[language] = {"skipped": "no hello-world program known for this language"}
            continue
        usage = Usage(engine)
        # the first run of a language warms the path (imports, first writes, a cache entry)
        first = await hello_run(conn, language, hello.source, hello.expected)
        figures = await _hello_series(conn, language, True, counts)
        figures["first_run_ms"] = round(first.seconds * 1000, 1)
        if hello.compiled:
            figures["repeated_source"] = await _hello_series(conn, language, False, counts)
        else:
            figures["paced"] = {**await _hello_series(conn, language, True, counts, counts.pace_seconds), "pace_s": counts.pace_seconds}
        results[language] = {**figures, "usage": usage.done()}
    await conn.close()
    return results


async def throughput_section(engine: Server, language: str, counts: Counts) -> dict[str, object]:
    """Many short runs from concurrent clients: runs completed per second, every result checked."""
    hello = floors.HELLO[language]
    usage = Usage(engine)
    outcomes = await fan_out(
        counts.throughput_runs, counts.throughput_clients, HOST, engine.port,
        lambda conn, _: hello_run(conn, language, hello.fresh_source(), hello.expected),
        counts.throughput_budget_seconds,
    )
    used = usage.done()
    ok = [o for o in outcomes if o.ok]
    return {
        "language": language,
        "runs": len(outcomes),
        "runs_planned": counts.throughput_runs,
        "clients": counts.throughput_clients,
        "runs_per_s": round(len(ok) / used["wall_s"], 2),
        "failures": len(outcomes) - len(ok),
        "failure_examples": sorted({o.problem for o in outcomes if o.problem})[:3],
        "latency_ms": summarize([o.seconds for o in ok]),
        "queue_wait_ms": summarize([w for w in (queue_wait(o.execution) for o in ok) if w is not None]),
        "usage": used,
        # the engine processes' own CPU (HTTP, database, runner; not the sandboxes) per run: compare
        # with the floor's cpu_ms_per_spawn, which load does not distort as it does wall time
        "engine_cpu_ms_per_run": round(used["server_cpu_s"] * 1000 / len(ok), 2) if ok else None,
    }


async def create_sessions(engine: Server, count: int, concurrency: int = 16) -> list[str]:
    """count sessions with about 2 KiB of code each; their ids."""

    async def create(conn: Connection, i: int) -> str:
        rv = await conn.request("POST", "/code-sessions", {"language": "python", "source_code": source_of_size(i)})
        if rv.status != 201:
            raise RuntimeError(f"POST /code-sessions: {rv.status} {rv.body[:200]!r}")
        return rv.json()["session_id"]

    return [str(i) for i in await fan_out(count, concurrency, HOST, engine.port, create)]


def _loop_figures(result: LoopResult, per_second: bool) -> dict[str, object]:
    figures: dict[str, object] = {
        "requests": len(result.latencies),
        "errors": result.error_count,
        "errors_by_kind": result.errors,
        "latency_ms": summarize(result.latencies),
        "connections_opened": result.connects,
    }
    if per_second:
        figures["requests_per_s"] = round(len(result.latencies) / result.wall_seconds, 1) if result.wall_seconds else 0.0
    return figures


async def autosave_section(engine: Server, workdir: Path, counts: Counts, quick: bool = False) -> dict[str, object]:
    """Autosave capacity (closed loop) beside a trivial route's and the seed-style peer's, then autosave
    as editors feel it (open loop), the engine's and the peer's, one after the other in one sitting."""
    sessions = await create_sessions(engine, max(counts.capacity_clients, counts.editors))

    def patch_session(conn: Connection, n: int) -> Awaitable[Response]:
        return conn.request("PATCH", f"/code-sessions/{sessions[(n // 1_000_000) % len(sessions)]}", {"source_code": source_of_size(n)})

    def patch_echo(conn: Connection, n: int) -> Awaitable[Response]:
        return conn.request("PATCH", f"/echo/{n // 1_000_000}", {"source_code": source_of_size(n)})

    usage = Usage(engine)
    capacity = await closed_loop(HOST, engine.port, counts.capacity_clients, counts.capacity_seconds, patch_session)
    capacity_figures = _cpu_per_request(
        {**_loop_figures(capacity, True), "clients": counts.capacity_clients, "seconds": counts.capacity_seconds, "usage": usage.done()}
    )

    async def echo_capacity(floor: Server, route: str) -> dict[str, object]:
        """The 50 clients' loop against a floor server (stopped after), with its CPU per request."""
        try:
            usage = Usage(floor)
            loop = await closed_loop(HOST, floor.port, counts.capacity_clients, counts.capacity_seconds, patch_echo)
            return _cpu_per_request({**_loop_figures(loop, True), "route": route, "usage": usage.done()})
        finally:
            floor.stop()

    trivial_figures = await echo_capacity(server.start_floor_app(workdir), "PATCH /echo/<id> (plain Flask, JSON body)")
    # the HTTP server's own share: the same PATCH answered by a bare WSGI callable under the same gunicorn
    bare_figures = await echo_capacity(
        server.start("floor-bare", "bench.floor_app:bare", workdir, {}, health_path="/"), "PATCH /echo/<id> (bare WSGI, no framework)"
    )

    peer_figures: dict[str, object] = {}
    peer = None
    why_not = autosave_peer.unavailable(install=not quick)
    if why_not is None:
        try:
            peer = autosave_peer.start(workdir)
        except (RuntimeError, OSError, AssertionError) as error:
            why_not = f"{type(error).__name__}: {error}"[:300]
    try:
        if peer is not None:
            peer_sessions = await create_sessions(peer, max(counts.capacity_clients, counts.editors))  # type: ignore[arg-type]

            def patch_peer(conn: Connection, n: int) -> Awaitable[Response]:
                return conn.request("PATCH", f"/code-sessions/{peer_sessions[(n // 1_000_000) % len(peer_sessions)]}", {"source_code": source_of_size(n)})

            usage = Usage(peer)  # type: ignore[arg-type]
            peer_capacity = await closed_loop(HOST, peer.port, counts.capacity_clients, counts.capacity_seconds, patch_peer)
            peer_figures["capacity"] = _cpu_per_request({**_loop_figures(peer_capacity, True), "usage": usage.done()})
        else:
            peer_figures["skipped"] = why_not

        # CPU counted from the window's start, once every editor's connection is open
        usages: list[Usage] = []
        editors = await open_loop(
            HOST, engine.port, counts.editors, counts.editor_seconds, counts.editor_interval, patch_session,
            on_start=lambda: usages.append(Usage(engine)),
        )
        editor_figures = _editor_figures(editors, counts, usages[-1])
        if peer is not None:
            peer_editors = await open_loop(
                HOST, peer.port, counts.editors, counts.editor_seconds, counts.editor_interval, patch_peer,
                on_start=lambda: usages.append(Usage(peer)),  # type: ignore[arg-type]
            )
            peer_figures["editors"] = _editor_figures(peer_editors, counts, usages[-1])
    finally:
        if peer is not None:
            peer.stop()
    if peer is not None:
        peer_figures["what"] = "Express 5 + pg over PostgreSQL (bench/peer/server.js): one Node process, no history, log line or metrics"
    return {
        "capacity": capacity_figures, "trivial_route": trivial_figures, "http_server_alone": bare_figures,
        "editors": editor_figures, "peer": peer_figures,
    }


def _cpu_per_request(figures: dict[str, object]) -> dict[str, object]:
    """figures with the server's and the client's CPU per answered request, in ms (the cost of one, whatever the load)."""
    usage, answered = figures.get("usage"), figures.get("requests")
    if isinstance(usage, dict) and isinstance(answered, int) and answered:
        figures["server_cpu_ms_per_request"] = round(usage["server_cpu_s"] * 1000 / answered, 3)
        figures["client_cpu_ms_per_request"] = round(usage["client_cpu_s"] * 1000 / answered, 3)
    return figures


def _editor_figures(editors: LoopResult, counts: Counts, usage: Usage) -> dict[str, object]:
    return _cpu_per_request({
        **_loop_figures(editors, False),
        "editors": counts.editors,
        "seconds": counts.editor_seconds,
        "interval_s": counts.editor_interval,
        "scheduled": counts.editors * max(1, round(counts.editor_seconds / counts.editor_interval)),
        "achieved_per_s": round(len(editors.latencies) / counts.editor_seconds, 1),
        # how late this client woke for sends: if large, the client, not the server, is slow
        "client_lag_ms": summarize(editors.client_lag),
        # from the moment each request was written: the latency without this client's own lateness
        "latency_from_send_ms": summarize(editors.from_send),
        "usage": usage.done(),
    })


class RssSampler(threading.Thread):
    """Samples the server's total RSS every interval seconds until stopped."""

    def __init__(self, target: Server, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.interval = interval
        self.samples: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            self.samples.append(self.target.rss_bytes()["total"])

    def stop(self) -> list[int]:
        self.halt.set()
        self.join(5)
        return self.samples


def _rss_mib(engine: Server) -> dict[str, float]:
    return {name: round(value / MIB, 1) for name, value in engine.rss_bytes().items()}


async def memory_section(engine: Server, pool_size: int, counts: Counts) -> dict[str, object]:
    """Server RSS idle, after creating many sessions, and while runs flood their output."""
    idle = _rss_mib(engine)
    await create_sessions(engine, counts.memory_sessions)
    after_sessions = _rss_mib(engine)

    sampler = RssSampler(engine)
    sampler.start()
    endings: dict[str, int] = {}
    try:
        for _ in range(counts.flood_rounds):
            conns = [Connection(HOST, engine.port) for _ in range(pool_size)]
            finished = await asyncio.gather(*(run_to_end(c, "python", FLOOD_SOURCE) for c in conns), return_exceptions=True)
            for conn in conns:
                await conn.close()
            for execution in finished:
                key = type(execution).__name__ if isinstance(execution, BaseException) else f"{execution['status']}/{execution.get('error')}"
                endings[key] = endings.get(key, 0) + 1
    finally:
        samples = sampler.stop()
    return {
        "idle_mib": idle,
        "after_sessions_mib": {**after_sessions, "sessions": counts.memory_sessions},
        "flood": {
            "runs": counts.flood_rounds * pool_size,
            "concurrent": pool_size,
            "endings": endings,
            "samples": len(samples),
            "peak_total_mib": round(max(samples) / MIB, 1) if samples else None,
            "median_total_mib": round(statistics.median(samples) / MIB, 1) if samples else None,
            "after_mib": _rss_mib(engine),
        },
    }
