"""PostgreSQL LISTEN/NOTIFY between engine instances: run events, "a run ended", stdin and cancel.

Every engine process over one PostgreSQL database keeps one listening connection and one
sending connection. What the local runner publishes to the hub (status, output chunks,
test_result, stdin, stdin_wanted, final) is also sent as a NOTIFY; every other process's
listener thread feeds it to its own hub at the same seq, so an events stream or long-poll on any
instance behaves as on the instance running the program, and Last-Event-ID means the same thing
everywhere. Stop and stdin requests for a run in flight elsewhere go the same way to the process
running it. The database stays the source of truth: the watcher's slow fallback reads it when the
listening connection was lost (and on SQLite there is no backbone: the watcher's tick stays).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

CHANNEL = "engine_live"
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; a bigger event goes in parts
PAYLOAD_MAX_BYTES = 7000
# notifications sent in one round trip (one transaction keeps them in order)
SEND_BATCH = 64
# a send queue past this many events drops the oldest output (the final event still carries it all)
SEND_QUEUE_MAX = 20_000
# parts of an event wait this long for the rest before they are dropped
PARTS_TTL_SECONDS = 30.0
RECONNECT_MAX_SECONDS = 5.0
# the longest a process keeps its list of the other processes' sockets (LocalBackbone) without
# reading the directory again; it is read at once when the directory's modification time changes
PEERS_REFRESH_SECONDS = 1.0


@dataclass
class Handlers:
    """What the listener does with what other processes sent (set by create_app)."""

    # (execution_id, kind, data, seq): an event of a run that another process runs
    event: Callable[[str, str, object, int], None]
    # (execution_id): stop the run if it is in flight here
    cancel: Callable[[str], None]
    # (execution_id, seq, data, eof): hand a stdin chunk to the run if it is in flight here
    stdin: Callable[[str, int, str, bool], None]
    # a "queued" notice: wake the dispatcher (a run waits that no worker took at once), with the
    # run's lane (interactive or not; None from a sender that did not say)
    queued: Callable[[bool | None], None]
    # the listening connection is (back) up after a loss: read the database once for what was missed
    resync: Callable[[], None] = field(default=lambda: None)


def split_payloads(message: dict) -> list[str]:
    """message as one or more NOTIFY payloads under PAYLOAD_MAX_BYTES (a big "d" string goes in parts)."""
    whole = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    if len(whole.encode()) < PAYLOAD_MAX_BYTES or not isinstance(message.get("d"), str):
        return [whole]
    text: str = message["d"]
    pieces: list[str] = []
    # the worst case is 6 bytes a character (a \u escape): start there, halve a piece that is still too big
    step = max(1, (PAYLOAD_MAX_BYTES - 400) // 6)
    start = 0
    while start < len(text):
        end = min(len(text), start + step)
        pieces.append(text[start:end])
        start = end
    total = len(pieces)
    return [
        json.dumps({**message, "d": piece, "p": index, "n": total}, separators=(",", ":"), ensure_ascii=False)
        for index, piece in enumerate(pieces)
    ]


class Backbone:
    """One process's end of the live backbone: a sender thread and a listener thread."""

    # what /health calls this backbone's way between processes
    transport = "postgresql_listen_notify"
    # True: a thread sends what _post() queued, in order, on its own connection
    sends_from_thread = True

    def __init__(self, conninfo: str, origin: str, handlers: Handlers) -> None:
        self.conninfo = conninfo
        self.origin = origin
        self.handlers = handlers
        self._outbox: queue.Queue[dict | None] = queue.Queue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._parts: dict[tuple[str, str, int], tuple[float, list[str | None]]] = {}
        # for /health: times the listening connection was lost, and when it last came up
        self.losses = 0
        self._up_since: float | None = None
        listener = threading.Thread(target=self._listen_forever, name="backbone-listen", daemon=True)
        sender = threading.Thread(target=self._send_forever, name="backbone-send", daemon=True)
        self._threads = (sender, listener) if self.sends_from_thread else (listener,)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def connected(self) -> bool:
        """True while the listening connection is up: others' events and requests reach this process."""
        return self._connected.is_set()

    def wait_connected(self, seconds: float) -> bool:
        return self._connected.wait(seconds)

    def describe(self) -> dict[str, object]:
        """Its state for /health: the transport, whether it listens now, and what it has lost."""
        connected = self.connected
        up_since = self._up_since
        return {
            "transport": self.transport,
            "state": "listening" if connected else "reconnecting",
            "connected": connected,
            "listening_for_s": round(time.monotonic() - up_since, 1) if connected and up_since is not None else None,
            "connections_lost": self.losses,
            "queued_to_send": self._outbox.qsize(),
        }

    def _up(self) -> None:
        self._up_since = time.monotonic()
        self._connected.set()

    def _down(self) -> None:
        if self._connected.is_set() and not self._stop.is_set():
            self.losses += 1
        self._connected.clear()

    def close(self, seconds: float = 2.0) -> None:
        """Send what is queued, then stop its threads."""
        self._stop.set()
        self._outbox.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(seconds)

    # sending

    def event(self, execution_id: str, kind: str, data: object, seq: int) -> None:
        """Tell the other processes of an event of a run of this process (never blocks)."""
        if kind in ("stdout", "stderr") and self._outbox.qsize() > SEND_QUEUE_MAX:
            return
        self._post({"t": "e", "e": execution_id, "k": kind, "d": data, "s": seq})

    def cancel(self, execution_id: str) -> None:
        self._post({"t": "c", "e": execution_id})

    def stdin(self, execution_id: str, seq: int, data: str, eof: bool) -> None:
        self._post({"t": "i", "e": execution_id, "s": seq, "d": data, "f": eof})

    def queued(self, interactive: bool | None = None) -> None:
        self._post({"t": "q"} if interactive is None else {"t": "q", "l": int(interactive)})

    def _post(self, message: dict) -> None:
        # the sender thread sends it, in order, on its own connection
        self._outbox.put(message)

    def _send_forever(self) -> None:
        import psycopg

        connection = None
        pending: list[dict] = []
        failures = 0
        while True:
            if not pending:
                first = self._outbox.get()
                if first is None:
                    break
                pending.append(first)
                while len(pending) < SEND_BATCH:
                    try:
                        more = self._outbox.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._stop.set()
                        break
                    pending.append(more)
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(self.conninfo, autocommit=True)
                payloads = [payload for message in pending for payload in split_payloads({**message, "o": self.origin})]
                with connection.transaction(), connection.cursor() as cursor:
                    for payload in payloads:
                        cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                pending = []
                failures = 0
            except Exception:
                log.exception("backbone: could not send %d notifications; retrying", len(pending))
                connection = None
                failures += 1
                if self._stop.is_set() or failures > 5:
                    # others fall back to the database (the watcher's slow tick)
                    pending = []
                time.sleep(min(RECONNECT_MAX_SECONDS, 0.05 * 2**failures))
            if self._stop.is_set() and self._outbox.empty() and not pending:
                break
        if connection is not None:
            connection.close()

    # listening

    def _listen_forever(self) -> None:
        import psycopg

        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._up()
                    if failures:
                        # what others sent while this process was deaf is in the database
                        self.handlers.resync()
                    failures = 0
                    while not self._stop.is_set():
                        for notice in connection.notifies(timeout=0.5):
                            self._receive(notice.payload)
            except Exception:
                if self._stop.is_set():
                    break
                log.exception("backbone: listening connection lost; reconnecting")
            finally:
                self._down()
            failures += 1
            self._stop.wait(min(RECONNECT_MAX_SECONDS, 0.05 * 2**failures))

    def _receive(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message.get("o") == self.origin:
                return
            if "p" in message:
                message = self._assemble(message)
                if message is None:
                    return
            handlers = self.handlers
            kind = message["t"]
            if kind == "e":
                handlers.event(message["e"], message["k"], message.get("d"), int(message["s"]))
            elif kind == "c":
                handlers.cancel(message["e"])
            elif kind == "i":
                handlers.stdin(message["e"], int(message["s"]), message["d"], bool(message["f"]))
            elif kind == "q":
                lane = message.get("l")
                handlers.queued(None if lane is None else bool(lane))
        except Exception:
            log.exception("backbone: could not handle a notification")

    def _assemble(self, message: dict) -> dict | None:
        key = (message["o"], message["e"], int(message["s"]))
        now = time.monotonic()
        for stale in [k for k, (at, _) in self._parts.items() if now - at > PARTS_TTL_SECONDS]:
            del self._parts[stale]
        _, parts = self._parts.setdefault(key, (now, [None] * int(message["n"])))
        parts[int(message["p"])] = message["d"]
        if any(part is None for part in parts):
            return None
        del self._parts[key]
        whole = {k: v for k, v in message.items() if k not in ("p", "n")}
        whole["d"] = "".join(parts)  # type: ignore[arg-type]
        return whole


class LocalBackbone(Backbone):
    """The same backbone between the processes of one box over one SQLite file (gunicorn's workers):
    Unix datagram sockets in a directory beside the database, one per process, instead of NOTIFY.

    A datagram to a process that is gone fails (its socket is removed); one to a process too busy
    to read is dropped rather than waited for (what waits on it falls back to the database).
    """

    transport = "unix_datagram_sockets"
    # _post() sends each datagram from the publishing thread itself
    sends_from_thread = False

    def __init__(self, directory: str, origin: str, handlers: Handlers) -> None:
        super().__init__("", origin, handlers)
        self.directory = directory
        self._path = ""
        # sent from the publishing thread itself: a non-blocking datagram never waits, and a
        # sender thread woken for every event cost more than the send (profiled: a tenth of a
        # run's engine CPU one run at a time)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._peers_cache: list[str] = []
        self._peers_read_at = -PEERS_REFRESH_SECONDS
        self._peers_changed = -1

    def close(self, seconds: float = 2.0) -> None:
        super().close(seconds)
        self._socket.close()
        if self._path:
            with contextlib.suppress(OSError):
                os.unlink(self._path)

    def _refresh_peers(self) -> None:
        """Read the directory again when it changed (a socket came or went), or at least every
        PEERS_REFRESH_SECONDS (a change within the same tick of its modification time)."""
        now = time.monotonic()
        try:
            changed = os.stat(self.directory).st_mtime_ns
        except OSError:
            changed = -1
        if changed != self._peers_changed or now - self._peers_read_at > PEERS_REFRESH_SECONDS:
            self._peers_cache, self._peers_read_at, self._peers_changed = self._peers(), now, changed

    def _post(self, message: dict) -> None:
        if self._stop.is_set():
            return
        payloads = [p.encode() for p in split_payloads({**message, "o": self.origin})]
        self._refresh_peers()
        for peer in self._peers_cache:
            for payload in payloads:
                try:
                    self._socket.sendto(payload, peer)
                except BlockingIOError:
                    # a peer too busy to read: it falls back to the database
                    break
                except (ConnectionRefusedError, FileNotFoundError):
                    # a process that died without removing its socket
                    with contextlib.suppress(OSError):
                        os.unlink(peer)
                    self._peers_read_at = -PEERS_REFRESH_SECONDS
                    break
                except OSError:
                    break

    def _peers(self) -> list[str]:
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        return [os.path.join(self.directory, name) for name in names if name.endswith(".sock") and os.path.join(self.directory, name) != self._path]

    def _listen_forever(self) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self._path = os.path.join(self.directory, f"{os.getpid()}-{uuid.uuid4().hex[:8]}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            listener.bind(self._path)
            listener.settimeout(0.5)
            self._up()
            while not self._stop.is_set():
                try:
                    payload = listener.recv(PAYLOAD_MAX_BYTES * 2)
                except TimeoutError:
                    continue
                self._receive(payload.decode())
        except Exception:
            log.exception("backbone: the local socket failed; the watcher reads the database")
        finally:
            self._down()
            listener.close()
