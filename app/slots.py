"""Machine-wide worker slots: file locks that cap concurrent runs across every engine process.

A slot owns a uid and a cgroup, which are machine-wide, so two processes must never hold the same
slot. flock() gives exactly that, and the kernel drops the lock of a process that dies.
"""
from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
from pathlib import Path

# each pool of slots takes a range of its own (a slot owns uid SANDBOX_UID_BASE + slot and the
# cgroup slot-N, so two pools must never share one): runs from 0, then these; a count that would
# run into the next range is refused at start (check_ranges)
INTERACTIVE_SLOT_FIRST = 500
WARM_SLOT_FIRST = 1000
DIAGNOSTICS_SLOT_FIRST = 2000
# the width every range must fit in, past the last one too (a bench engine's private uid buckets)
RANGE_END = 2048
# what a release writes at the start of a slot's lock file: the releasing process and when
# (CLOCK_MONOTONIC, the same for every process of the host)
LAST_USE = struct.Struct("<qq")


def check_ranges(runs: int, interactive: int, warm: int, diagnostics: int) -> None:
    """Refuse slot counts that would make two pools share slots (and so uids and cgroups)."""
    ranges = (("RUN_SLOTS", 0, runs), ("INTERACTIVE_RUN_SLOTS", INTERACTIVE_SLOT_FIRST, interactive),
              ("WARM_SLOTS", WARM_SLOT_FIRST, warm), ("DIAGNOSTICS_SLOTS", DIAGNOSTICS_SLOT_FIRST, diagnostics))
    for (name, first, count), (_, next_first, _) in zip(ranges, [*ranges[1:], ("", RANGE_END, 0)]):
        if not 0 <= count <= next_first - first:
            raise ValueError(f"{name}={count} does not fit its slot range ({first} to {next_first - 1})")


class SlotPool:
    """Slots [first, first + count) of a lock directory.

    keep_seconds > 0: a process tries the slots it released last first, and a slot another live
    process released less than keep_seconds ago is left to it (acquire() passes it by). A Python
    run's slot holds that process's fork server, which a run of another process there would end
    (a new server, about a cold start). The run that found no slot stays queued for the other
    processes' dispatchers. Off by default (RUN_SLOT_KEEP_SECONDS = 0): on a host whose slots other
    engines also use, one process can then take every run for a while (see docs/fork-server.md).
    """

    def __init__(self, directory: str | Path, count: int, first: int = 0, keep_seconds: float = 0.0) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = count
        # pools for different purposes share a directory by using disjoint ranges
        self.first = first
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}
        self._files: dict[int, int] = {}
        # with keep_seconds: the slots this process let go of, the latest last, tried first, so
        # that each process keeps to the slots it used
        self._recent: list[int] = []
        self.keep_seconds = keep_seconds

    def acquire(self) -> int | None:
        """A free slot's index, now held by this process, or None when all are taken."""
        with self._lock:
            ordered = range(self.first, self.first + self.count)
            if self.keep_seconds > 0:
                ordered = [*reversed(self._recent), *(i for i in ordered if i not in self._recent)]
            for index in ordered:
                if index in self._held:
                    continue
                fd = self._file(index)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                if self.keep_seconds > 0 and self._kept_by_another(fd):
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    continue
                self._held[index] = fd
                return index
            return None

    def _kept_by_another(self, fd: int) -> bool:
        """True when another live process released this slot less than keep_seconds ago."""
        try:
            pid, released_ns = LAST_USE.unpack(os.pread(fd, LAST_USE.size, 0))
        except (OSError, struct.error):
            return False
        if pid == os.getpid() or time.monotonic_ns() - released_ns > self.keep_seconds * 1e9:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def release(self, index: int, used: bool = True) -> None:
        """Let go of the slot; used=False for a slot taken and given back with no run in it (it
        does not count as this process's recent use)."""
        # all under the lock, the unlock before the slot leaves _held: a thread of this process that
        # took it between the two (same file, so its flock succeeds) would hold a slot whose lock
        # this thread then drops, and another process could take it while a run is in it
        with self._lock:
            fd = self._held[index]
            if self.keep_seconds > 0 and used:
                try:
                    os.pwrite(fd, LAST_USE.pack(os.getpid(), time.monotonic_ns()), 0)
                except OSError:
                    pass
            fcntl.flock(fd, fcntl.LOCK_UN)
            del self._held[index]
            if not used:
                return
            if index in self._recent:
                self._recent.remove(index)
            self._recent.append(index)

    def close(self) -> None:
        """Let go of every lock file (and so of any slot still held): for a pool no longer used."""
        with self._lock:
            for fd in self._files.values():
                os.close(fd)
            self._files.clear()
            self._held.clear()

    def _file(self, index: int) -> int:
        # opened once and kept: a run start costs one flock(), not an open() and a close() per slot tried
        if index not in self._files:
            self._files[index] = os.open(self.directory / f"slot-{index}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        return self._files[index]

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._held)
