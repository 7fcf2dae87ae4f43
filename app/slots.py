"""Machine-wide worker slots: file locks that cap concurrent runs across every engine process.

A slot owns a uid and a cgroup, which are machine-wide, so two processes must never hold the same
slot. flock() gives exactly that, and the kernel drops the lock of a process that dies.
"""
from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path


# each pool of slots takes a range of its own (a slot owns uid SANDBOX_UID_BASE + slot and the
# cgroup slot-N, so two pools must never share one): runs from 0, then these; a count that would
# run into the next range is refused at start (check_ranges)
INTERACTIVE_SLOT_FIRST = 500
WARM_SLOT_FIRST = 1000
DIAGNOSTICS_SLOT_FIRST = 2000
# the width every range must fit in, past the last one too (a bench engine's private uid buckets)
RANGE_END = 2048


def check_ranges(runs: int, interactive: int, warm: int, diagnostics: int) -> None:
    """Refuse slot counts that would make two pools share slots (and so uids and cgroups)."""
    ranges = (("RUN_SLOTS", 0, runs), ("INTERACTIVE_RUN_SLOTS", INTERACTIVE_SLOT_FIRST, interactive),
              ("WARM_SLOTS", WARM_SLOT_FIRST, warm), ("DIAGNOSTICS_SLOTS", DIAGNOSTICS_SLOT_FIRST, diagnostics))
    for (name, first, count), (_, next_first, _) in zip(ranges, [*ranges[1:], ("", RANGE_END, 0)]):
        if not 0 <= count <= next_first - first:
            raise ValueError(f"{name}={count} does not fit its slot range ({first} to {next_first - 1})")


class SlotPool:
    def __init__(self, directory: str | Path, count: int, first: int = 0) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = count
        # pools for different purposes share a directory by using disjoint ranges
        self.first = first
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}
        self._files: dict[int, int] = {}

    def acquire(self) -> int | None:
        """A free slot's index, now held by this process, or None when all are taken."""
        with self._lock:
            for index in range(self.first, self.first + self.count):
                if index in self._held:
                    continue
                fd = self._file(index)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                self._held[index] = fd
                return index
            return None

    def release(self, index: int) -> None:
        with self._lock:
            fd = self._held.pop(index)
        fcntl.flock(fd, fcntl.LOCK_UN)

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
