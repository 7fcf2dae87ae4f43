"""Warm sandboxes: interpreters already started inside a fresh sandbox, each waiting for one program.

A warm sandbox is started exactly as a cold run is (same bubblewrap namespaces, same unprivileged
uid, same rlimits and cgroup limits), except that the interpreter starts a tiny bootstrap that
reads the program from a pipe, writes it where a cold run would find it and runs it as __main__.
Each one serves exactly one run and is then discarded; the pool refills in the background.
"""
from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import psutil

from .host_processes import children_of
from .languages import BY_NAME, Language
from .limits import Limits
from .spawn import Running

log = logging.getLogger(__name__)

REFILL_TICK_SECONDS = 1.0
# after a failed start, wait this long before trying that language again
RETRY_AFTER_FAILURE_SECONDS = 5.0
# a finished run's result is still being written and sent for a few ms: ending its sandbox and
# starting the next one at once competes with that for the CPU and the GIL. Waits only while
# the language still has a ready sandbox, and stops waiting when a run takes the last one
# (otherwise the next run would start cold).
AFTER_RESULT_GRACE_SECONDS = 0.015


@dataclass
class Warm:
    language: Language
    limits: Limits
    slot: int
    running: Running
    # write end of the pipe the bootstrap reads the program from; -1 once closed
    control: int
    # closes the launch's file descriptors once the run is over
    resources: ExitStack

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.running.process

    def send(self, source: bytes) -> None:
        """Hand the program over; the bootstrap starts it when the pipe closes."""
        try:
            view = memoryview(source)
            while view:
                view = view[os.write(self.control, view) :]
        finally:
            self.close_control()

    def close_control(self) -> None:
        # once only: a second close could hit a number another thread has been given since
        if self.control >= 0:
            fd, self.control = self.control, -1
            os.close(fd)


class WarmPool:
    """Per-language queues of warm sandboxes, refilled by one background thread."""

    def __init__(
        self,
        start: Callable[[Language, Limits, int], Warm],
        discard: Callable[[Warm], None],
        slots: object,
        sizes: dict[str, int],
        limits_for: Callable[[Language], Limits],
    ) -> None:
        self._start = start
        self._discard = discard
        self.slots = slots
        self.sizes = {
            name: size
            for name, size in sizes.items()
            if size > 0 and name in BY_NAME and BY_NAME[name].warm and BY_NAME[name].is_installed()
        }
        self._limits_for = limits_for
        self._ready: dict[str, deque[Warm]] = {name: deque() for name in self.sizes}
        self._used: deque[Warm] = deque()
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        # set when a take leaves its language with no ready sandbox: the refill waits no grace
        self._hurry = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._refill_forever, name="warm-pool", daemon=True)
        self.hits = 0
        self.misses = 0

    def start(self) -> None:
        self._thread.start()

    def take(self, language: Language, limits: Limits) -> Warm | None:
        """A ready warm sandbox for language started with exactly these limits, or None."""
        with self._lock:
            queue = self._ready.get(language.name)
            died = False
            while queue and queue[0].process.poll() is not None:
                # died waiting: the refill thread ends it and starts another, off this request's path
                self._used.append(queue.popleft())
                died = True
            # every sandbox of a language is started with its default limits: a run that asks for
            # others (its own limits) starts cold and leaves them for the runs that fit
            if queue and queue[0].limits == limits:
                warm = queue.popleft()
                # no refill yet: starting a sandbox now would take CPU from this very run;
                # finished() asks for one once the result is out
                self.hits += 1
                if not queue:
                    self._hurry.set()
                return warm
            if language.name in self.sizes:
                self.misses += 1
        if died:
            self._wanted.set()
        return None

    def finished(self, warm: Warm) -> None:
        """Hand a used warm sandbox back: the refill thread ends it and starts a replacement,
        off the path of the run's result."""
        with self._lock:
            self._used.append(warm)
        self._wanted.set()

    def shutdown(self) -> None:
        self._stopping.set()
        self._hurry.set()
        self._wanted.set()
        if self._thread.is_alive():
            self._thread.join(10)
        with self._lock:
            leftovers = [*self._used, *(warm for queue in self._ready.values() for warm in queue)]
            self._used.clear()
            for queue in self._ready.values():
                queue.clear()
        for warm in leftovers:
            self._retire(warm)
        self.slots.close()

    def describe(self, rss: bool = True) -> dict[str, object]:
        """Sizes, ready counts, hits and misses; with rss, the ready sandboxes' memory too (None without:
        finding their processes reads every process of the machine, too dear for the metrics' 1 s sync)."""
        with self._lock:
            ready = {name: len(queue) for name, queue in self._ready.items()}
            processes = [warm.process.pid for queue in self._ready.values() for warm in queue]
        return {
            "sizes": self.sizes,
            "ready": ready,
            "idle_rss_bytes": _tree_rss(processes) if rss else None,
            "hits": self.hits,
            "misses": self.misses,
        }

    def _retire(self, warm: Warm) -> None:
        try:
            self._discard(warm)
        finally:
            self.slots.release(warm.slot)

    def _refill_forever(self) -> None:
        failed_at: dict[str, float] = {}
        while not self._stopping.is_set():
            if self._result_may_be_on_its_way():
                self._hurry.wait(AFTER_RESULT_GRACE_SECONDS)
            self._hurry.clear()
            self._retire_used()
            for name, size in self.sizes.items():
                if self._stopping.is_set():
                    break
                self._refill(name, size, failed_at)
            self._wanted.wait(REFILL_TICK_SECONDS)
            self._wanted.clear()

    def _result_may_be_on_its_way(self) -> bool:
        with self._lock:
            used = {warm.language.name for warm in self._used}
            return bool(used) and all(self._ready.get(name) for name in used)

    def _retire_used(self) -> None:
        while True:
            with self._lock:
                if not self._used:
                    return
                warm = self._used.popleft()
            self._retire(warm)

    def _refill(self, name: str, size: int, failed_at: dict[str, float]) -> None:
        language = BY_NAME[name]
        if time.monotonic() - failed_at.get(name, -1e9) < RETRY_AFTER_FAILURE_SECONDS:
            return
        while not self._stopping.is_set():
            with self._lock:
                if len(self._ready[name]) >= size:
                    return
            slot = self.slots.acquire()
            if slot is None:
                return
            try:
                warm = self._start(language, self._limits_for(language), slot)
            except Exception:
                self.slots.release(slot)
                log.exception("could not start a warm %s sandbox; cold starts meanwhile", name)
                failed_at[name] = time.monotonic()
                return
            with self._lock:
                self._ready[name].append(warm)


def _tree_rss(pids: list[int]) -> int:
    """Resident memory of the processes and all their descendants: each tree walked through
    /proc/<pid>/task/*/children, not by reading every process of the host (the metrics ask each second)."""
    total = 0
    for pid in pids:
        tree = [pid]
        while tree:
            current = tree.pop()
            try:
                total += psutil.Process(current).memory_info().rss
            except psutil.Error:
                continue
            tree.extend(children_of(current))
    return total
