"""In-process publish/subscribe of an execution's events, with a log of each run so a stream can resume."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# a safety net above the sandbox's own output caps (which already bound a run's chunks):
# chunks past this many characters stay out of the log, and the final event still has them
LOG_MAX_CHARS = 4 * 1024 * 1024
# a log nobody listens to whose run never published "final" here (another engine recorded its
# end, say) is dropped once it has been quiet this long
STALE_LOG_SECONDS = 600.0


@dataclass(frozen=True)
class Event:
    kind: str  # "status", "stdout", "stderr", "stdin", "stdin_wanted" or "final"
    data: object
    # position in the execution's log in this process, from 1: the events stream's ids
    seq: int = 0


class _Channel:
    """One execution's events in this process: its log since the run was claimed here, and its listeners."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.events: list[Event] = []
        self.chars = 0
        self.finished = False
        self.listeners = 0
        self.touched = time.monotonic()


class Subscription:
    """A cursor in one execution's log: take() returns what was published past it."""

    def __init__(self, execution_id: str, channel: _Channel, cursor: int) -> None:
        self.execution_id = execution_id
        self._channel = channel
        self._cursor = cursor

    @property
    def cursor(self) -> int:
        """The seq of the last event taken (or skipped by the subscriber's starting point)."""
        return self._cursor

    def take(self, timeout: float) -> list[Event]:
        """Events past the cursor, waiting up to timeout seconds for the first."""
        channel = self._channel
        with channel.condition:
            if len(channel.events) <= self._cursor and timeout > 0:
                channel.condition.wait(timeout)
            events = channel.events[self._cursor :]
            self._cursor = max(self._cursor, len(channel.events))
            return events


class Hub:
    """Fan-out of execution events to the requests that wait on them in this process.

    Every run claimed here gets a log from its first event: a stream that connects late, or
    reconnects with Last-Event-ID, replays it. The log lives while the run does (bounded by the
    sandbox's output caps) and is dropped at the final event once nobody listens.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}
        # (execution_id, kind, data, seq) of every event published here: the backbone (app/live/backbone.py)
        # sends them to the other engine processes, whose hubs mirror() them at the same seq
        self.forward: Callable[[str, str, object, int], None] | None = None

    @contextmanager
    def subscribe(self, execution_id: str, after: int | None = None) -> Iterator[Subscription]:
        """Listen to an execution: events published from now on, or with after=N every logged event past seq N."""
        with self._lock:
            channel = self._channels.get(execution_id)
            if channel is None:
                channel = self._channels[execution_id] = _Channel()
            channel.listeners += 1
        with channel.condition:
            cursor = len(channel.events) if after is None else max(0, after)
        try:
            yield Subscription(execution_id, channel, cursor)
        finally:
            with self._lock:
                channel.listeners -= 1
                if channel.listeners == 0 and (channel.finished or not channel.events):
                    if self._channels.get(execution_id) is channel:
                        del self._channels[execution_id]

    def publish(self, execution_id: str, kind: str, data: object = None) -> None:
        seq = self._append(execution_id, kind, data, None)
        forward = self.forward
        if seq and forward is not None:
            forward(execution_id, kind, data, seq)

    def mirror(self, execution_id: str, kind: str, data: object, seq: int) -> None:
        """An event another process published at seq: logged here at the same seq (once), so
        Last-Event-ID means the same on every instance; a gap (events missed) is padded."""
        self._append(execution_id, kind, data, seq)

    def _append(self, execution_id: str, kind: str, data: object, seq: int | None) -> int:
        with self._lock:
            channel = self._channels.get(execution_id)
            if channel is None:
                self._drop_stale()
                channel = self._channels[execution_id] = _Channel()
            elif seq is not None and channel.finished:
                return 0
            if kind == "final":
                channel.finished = True
                if channel.listeners == 0:
                    del self._channels[execution_id]
        with channel.condition:
            if seq is not None and kind != "final" and seq <= len(channel.events):
                return 0
            if kind in ("stdout", "stderr") and isinstance(data, str):
                if channel.chars + len(data) > LOG_MAX_CHARS:
                    return 0
                channel.chars += len(data)
            while seq is not None and len(channel.events) < seq - 1:
                # events this process never received: placeholders keep the seqs aligned
                channel.events.append(Event("gap", None, len(channel.events) + 1))
            channel.events.append(Event(kind, data, len(channel.events) + 1))
            channel.touched = time.monotonic()
            channel.condition.notify_all()
            return len(channel.events)

    def _drop_stale(self) -> None:
        # called with self._lock held, once per new run: the scan is over the runs in progress
        quiet_since = time.monotonic() - STALE_LOG_SECONDS
        for execution_id, channel in list(self._channels.items()):
            if channel.listeners == 0 and channel.touched < quiet_since:
                del self._channels[execution_id]

    def has_subscribers(self, execution_id: str) -> bool:
        with self._lock:
            channel = self._channels.get(execution_id)
            return channel is not None and channel.listeners > 0

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return sum(channel.listeners for channel in self._channels.values())

    @property
    def log_count(self) -> int:
        """Executions whose events this process keeps (runs in progress here, or listened to)."""
        with self._lock:
            return len(self._channels)
