"""Coalesces a run's output chunks into events of bounded rate and size before they reach the hub.

A program that prints in a tight loop hands the engine thousands of tiny chunks (one per write);
sent as they come, each is an SSE event the page must parse and render. Here the chunks of one run
are held and published together: an event goes out at most FLUSH_AFTER seconds after the first
byte it holds (live output stays live), or sooner once it holds MAX_CHARS, or when the other stream
writes (the interleaving of stdout and stderr is kept). One flusher thread per process serves every
run's deadline, so a program that writes a byte and then sleeps still has it shown on time.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

Publish = Callable[[str, object], None]

log = logging.getLogger(__name__)


class OutputBatcher:
    """One run's pending output: add() chunks as they are read, close() before the run's final event."""

    def __init__(self, publish: Publish, flusher: Flusher, flush_after: float, max_chars: int) -> None:
        self._publish = publish
        self._flusher = flusher
        self._flush_after = flush_after
        self._max_chars = max(1, max_chars)
        # held under the lock: publishing happens under it too, so a timed flush and an inline
        # one can never swap two events of the same run
        self._lock = threading.Lock()
        self._stream: str | None = None
        self._pieces: list[str] = []
        self._chars = 0
        # which pending batch the flusher's deadline is for; a flushed batch's deadline is stale
        self._batch = 0

    def add(self, stream: str, text: str) -> None:
        """Hold text written to stream, publishing what is due."""
        if not text:
            return
        schedule = None
        with self._lock:
            if self._stream is not None and stream != self._stream:
                self._flush_locked()
            while text:
                room = self._max_chars - self._chars
                piece, text = text[:room], text[room:]
                if not self._pieces:
                    self._stream = stream
                    self._batch += 1
                    schedule = self._batch
                self._pieces.append(piece)
                self._chars += len(piece)
                if self._chars >= self._max_chars:
                    self._flush_locked()
                    schedule = None
        if schedule is not None:
            self._flusher.schedule(time.monotonic() + self._flush_after, self, schedule)

    def event(self, kind: str, data: object = None) -> None:
        """Publish another kind of event of this run after the output written before it."""
        with self._lock:
            self._flush_locked()
            self._publish(kind, data)

    def close(self) -> None:
        """Publish whatever is held (call before the run's final event)."""
        with self._lock:
            self._flush_locked()

    def flush_due(self, batch: int) -> None:
        """The flusher's call: publish the batch the deadline was set for, if it is still held."""
        with self._lock:
            if batch == self._batch:
                self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pieces:
            return
        stream, text = self._stream, "".join(self._pieces)
        self._pieces, self._chars, self._stream = [], 0, None
        self._batch += 1
        self._publish(stream, text)


class Flusher:
    """One daemon thread publishing held output when its deadline comes, for every run of the process."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._due: list[tuple[float, int, OutputBatcher, int]] = []
        # ties on the deadline are ordered by arrival, never by comparing batchers
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def schedule(self, when: float, batcher: OutputBatcher, batch: int) -> None:
        with self._condition:
            if not self._closed:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._flush_forever, name="output-flusher", daemon=True)
                    self._thread.start()
                heapq.heappush(self._due, (when, next(self._order), batcher, batch))
                if self._due[0][2] is batcher and self._due[0][3] == batch:
                    self._condition.notify()
                return
        # closed (the runner is shutting down): no thread waits any more, so publish now, not never
        batcher.flush_due(batch)

    def close(self) -> None:
        """Publish what is still held, and end the thread (a runner shutting down)."""
        with self._condition:
            self._closed = True
            due, self._due = self._due, []
            self._condition.notify()
        for _, _, batcher, batch in sorted(due, key=lambda item: item[:2]):
            batcher.flush_due(batch)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _flush_forever(self) -> None:
        while True:
            with self._condition:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    self._condition.wait(self._due[0][0] - time.monotonic() if self._due else None)
                if self._closed:
                    return
                _, _, batcher, batch = heapq.heappop(self._due)
            # outside the condition: a batcher's publish may take the hub's locks
            try:
                batcher.flush_due(batch)
            except Exception:
                # one run's failure must not stop every other run's output
                log.exception("could not publish held output")
