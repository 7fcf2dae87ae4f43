"""Clients: a small asyncio HTTP/1.1 keep-alive connection, and closed- and open-loop load patterns."""
from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

TERMINAL = {"COMPLETED", "FAILED", "TIMEOUT"}
# a request that gets no answer in this long counts as an error (long-polls get their wait on top)
REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class Connection:
    """One keep-alive HTTP/1.1 connection; reopens itself when the server has closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.connects = 0

    async def request(
        self,
        method: str,
        path: str,
        body: dict | bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> Response:
        """Send one request and read its response, within timeout seconds."""
        data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(data)}"]
        if data:
            head.append("Content-Type: application/json")
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + data
        return await asyncio.wait_for(self._exchange(raw), timeout)

    async def _exchange(self, raw: bytes) -> Response:
        reused = self.writer is not None
        try:
            return await self._send_and_read(raw)
        except (ConnectionError, asyncio.IncompleteReadError):
            await self.close()
            # a kept-alive connection the server closed meanwhile: retry once on a fresh one
            if not reused:
                raise
            return await self._send_and_read(raw)

    async def connect(self) -> None:
        """Open the connection now (else the first request does)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.connects += 1

    async def _send_and_read(self, raw: bytes) -> Response:
        await self.connect()
        assert self.reader is not None
        self.writer.write(raw)
        await self.writer.drain()
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self._read_body(headers)
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, headers, body)

    async def _read_body(self, headers: dict[str, str]) -> bytes:
        assert self.reader is not None
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            await self.reader.readuntil(b"\r\n")
            return b"".join(chunks)
        body = await self.reader.read()
        await self.close()
        return body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None


def summarize(values: list[float], scale: float = 1000.0) -> dict[str, float | int | None]:
    """Median, p95, p99, mean and max of values (seconds), scaled (to ms by default)."""
    if not values:
        return {"n": 0, "median": None, "p95": None, "p99": None, "mean": None, "max": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * scale

    return {
        "n": len(ordered),
        "median": round(rank(50), 3),
        "p95": round(rank(95), 3),
        "p99": round(rank(99), 3),
        "mean": round(sum(ordered) / len(ordered) * scale, 3),
        "max": round(ordered[-1] * scale, 3),
    }


@dataclass
class RunOutcome:
    ok: bool
    seconds: float
    execution: dict | None = None
    problem: str | None = None


async def run_to_end(conn: Connection, language: str, source: str, deadline_seconds: float = 60.0) -> dict:
    """POST a one-shot run and long-poll it until it is terminal; returns the execution."""
    rv = await conn.request("POST", "/executions", {"language": language, "source_code": source})
    if rv.status != 202:
        raise RuntimeError(f"POST /executions: {rv.status} {rv.body[:200]!r}")
    execution = rv.json()
    deadline = time.monotonic() + deadline_seconds
    while execution["status"] not in TERMINAL:
        if time.monotonic() > deadline:
            raise RuntimeError(f"execution {execution['execution_id']} not terminal after {deadline_seconds} s")
        rv = await conn.request("GET", f"/executions/{execution['execution_id']}?wait=30", timeout=45)
        if rv.status != 200:
            raise RuntimeError(f"GET /executions/{{id}}: {rv.status} {rv.body[:200]!r}")
        execution = rv.json()
    return execution


async def hello_run(conn: Connection, language: str, source: str, expected: str) -> RunOutcome:
    """One hello-world run end to end, timed from POST to the terminal result, with its stdout checked."""
    started = time.perf_counter()
    try:
        execution = await run_to_end(conn, language, source)
    except (RuntimeError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
        return RunOutcome(False, time.perf_counter() - started, None, f"{type(error).__name__}: {error}"[:200])
    seconds = time.perf_counter() - started
    if execution["status"] != "COMPLETED" or execution["stdout"] != expected:
        problem = (
            f"{execution['status']} error={execution.get('error')} exit={execution.get('exit_code')} "
            f"stdout={execution.get('stdout')!r:.60} stderr={execution.get('stderr')!r:.120}"
        )
        return RunOutcome(False, seconds, execution, problem)
    return RunOutcome(True, seconds, execution)


@dataclass
class LoopResult:
    """What a load loop saw: latencies of answered requests, errors by kind, and its wall time."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    connects: int = 0
    # open loop only: how late the client itself woke for a send it was free to make
    client_lag: list[float] = field(default_factory=list)
    # open loop only: each answered request's latency from the moment it was sent (not scheduled)
    from_send: list[float] = field(default_factory=list)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


Request = Callable[[Connection, int], Awaitable[Response]]


async def _timed(conn: Connection, send: Request, counter: int, expect: int, result: LoopResult) -> float | None:
    started = time.perf_counter()
    try:
        rv = await send(conn, counter)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
        result.error(type(error).__name__)
        await conn.close()
        return None
    if rv.status != expect:
        result.error(f"http_{rv.status}")
        return None
    return time.perf_counter() - started


async def closed_loop(host: str, port: int, clients: int, seconds: float, send: Request, expect: int = 200) -> LoopResult:
    """clients connections, each sending its next request as soon as the last is answered, for seconds."""
    result = LoopResult()
    stop_at = time.perf_counter() + seconds

    async def client(index: int) -> None:
        conn = Connection(host, port)
        counter = 0
        while time.perf_counter() < stop_at:
            counter += 1
            latency = await _timed(conn, send, index * 1_000_000 + counter, expect, result)
            if latency is not None:
                result.latencies.append(latency)
        result.connects += conn.connects
        await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    result.wall_seconds = time.perf_counter() - started
    return result


async def open_loop(
    host: str, port: int, senders: int, seconds: float, interval: float, send: Request, expect: int = 200,
    on_start: Callable[[], object] | None = None,
) -> LoopResult:
    """senders each send one request every interval seconds by the clock, for seconds.

    Sends are scheduled, not triggered by answers: a sender whose previous request is still out
    sends late, and its latency counts from the scheduled time (no coordinated omission). Every
    sender's connection is opened and used once before the window (an editor's browser holds one;
    1,000 handshakes in the first second are not an autosave's cost), and the senders are spread evenly
    over one interval. Beside the latency from the schedule, the loop keeps the latency from the
    moment each request was written and how late this client itself woke for each send: when the
    two latencies differ, the difference is this one-process client's, not the server's.
    on_start is called once the connections are ready, as the window opens (to start measuring CPU).
    """
    result = LoopResult()
    loop = asyncio.get_running_loop()
    connections = [Connection(host, port) for _ in range(senders)]
    await _warm_all(connections, send, result)
    if on_start is not None:
        on_start()
    start = loop.time() + 0.2
    sends_each = max(1, round(seconds / interval))
    # a sender that falls this far behind its schedule gives up its remaining sends (errors)
    give_up_at = start + seconds + REQUEST_TIMEOUT_SECONDS

    async def sender(index: int) -> None:
        conn = connections[index]
        # spread the senders evenly over one interval
        offset = interval * index / senders
        for n in range(sends_each):
            scheduled = start + offset + n * interval
            free_at = loop.time()
            if free_at > give_up_at:
                result.errors["not_sent"] = result.errors.get("not_sent", 0) + sends_each - n
                break
            if scheduled > free_at:
                await asyncio.sleep(scheduled - free_at)
            woke = loop.time()
            result.client_lag.append(max(0.0, woke - max(scheduled, free_at)))
            try:
                rv = await send(conn, index * 1_000_000 + n)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
                result.error(type(error).__name__)
                await conn.close()
                continue
            if rv.status != expect:
                result.error(f"http_{rv.status}")
                continue
            answered = loop.time()
            result.latencies.append(answered - scheduled)
            result.from_send.append(answered - woke)
        await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(sender(i) for i in range(senders)))
    result.wall_seconds = time.perf_counter() - started
    result.connects += sum(conn.connects for conn in connections)
    return result


async def _warm_all(connections: list[Connection], send: Request, result: LoopResult, at_once: int = 64) -> None:
    """One request on every connection, at most at_once at a time: each connection is then open and
    kept alive by the server, as an editor's is once it has loaded its session (a connection that
    is open but silent would hold one of gunicorn's threads until it speaks)."""
    gate = asyncio.Semaphore(at_once)

    async def warm(index: int, conn: Connection) -> None:
        async with gate:
            try:
                await send(conn, index * 1_000_000 + 999_999)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
                # its first send connects again, inside the window
                result.error(f"warm_up_{type(error).__name__}")
                await conn.close()

    await asyncio.gather(*(warm(index, conn) for index, conn in enumerate(connections)))


async def fan_out(
    count: int, concurrency: int, host: str, port: int, job: Callable[[Connection, int], Awaitable[object]],
    budget_seconds: float | None = None,
) -> list[object]:
    """Run job(conn, i) for i in range(count) on concurrency connections; results in index order.

    Past budget_seconds no new job starts; the jobs never started are left out of the results.
    """
    results: list[object] = [None] * count
    queue = iter(range(count))
    stop_at = time.perf_counter() + budget_seconds if budget_seconds else None

    async def worker() -> None:
        conn = Connection(host, port)
        for i in queue:
            if stop_at is not None and time.perf_counter() > stop_at:
                break
            results[i] = await job(conn, i)
        await conn.close()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return [r for r in results if r is not None]
