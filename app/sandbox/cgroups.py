"""Per-slot control groups (v1 or v2) that cap a run's memory and processes, when the host allows."""
from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Counters:
    """Monotonic event counts of a slot's groups; a run compares them before and after."""

    oom_kills: int
    pids_max_hits: int


def _read_key(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return 0


def _write(path: Path, value: str | int) -> None:
    path.write_text(str(value))


class SlotGroup:
    """The memory and pids groups of one worker slot."""

    def __init__(self, version: str, memory_dir: Path, pids_dir: Path) -> None:
        self.version = version
        self.memory_dir = memory_dir
        self.pids_dir = pids_dir

    def apply(self, memory_bytes: int, processes: int) -> None:
        """Set this slot's memory and process caps for the next run."""
        if self.version == "v1":
            limit_file = self.memory_dir / "memory.limit_in_bytes"
            swap_file = self.memory_dir / "memory.memsw.limit_in_bytes"
            # memory+swap equal to memory: the run cannot spill to swap; the kernel wants
            # memory <= memory+swap at every step, so the order depends on the direction
            order = [limit_file, swap_file] if memory_bytes <= _read_int(limit_file) else [swap_file, limit_file]
            for path in order:
                if path.exists():
                    _write(path, memory_bytes)
        else:
            _write(self.memory_dir / "memory.max", memory_bytes)
            swap_file = self.memory_dir / "memory.swap.max"
            if swap_file.exists():
                _write(swap_file, 0)
            oom_group = self.memory_dir / "memory.oom.group"
            if oom_group.exists():
                # one OOM kill takes the whole run down instead of leaving a cripple
                _write(oom_group, 1)
        _write(self.pids_dir / "pids.max", processes)

    def add(self, pid: int) -> None:
        """Move a process into this slot's groups (its future children follow)."""
        for directory in {self.memory_dir, self.pids_dir}:
            _write(directory / "cgroup.procs", pid)

    def counters(self) -> Counters:
        events = "memory.oom_control" if self.version == "v1" else "memory.events"
        return Counters(
            oom_kills=_read_key(self.memory_dir / events, "oom_kill"),
            pids_max_hits=_read_key(self.pids_dir / "pids.events", "max"),
        )

    def pids(self) -> list[int]:
        try:
            return [int(line) for line in (self.pids_dir / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self) -> None:
        """SIGKILL every process left in the slot; the caller checks pids() afterwards."""
        kill_file = self.pids_dir / "cgroup.kill"
        if self.version == "v2" and kill_file.exists():
            try:
                _write(kill_file, 1)
                return
            except OSError:
                pass
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Cgroups:
    """The engine's cgroup tree: one SlotGroup per worker slot."""

    def __init__(self, version: str, memory_base: Path, pids_base: Path) -> None:
        self.version = version
        self.memory_base = memory_base
        self.pids_base = pids_base

    def slot(self, index: int) -> SlotGroup:
        return self.group(f"slot-{index}")

    def group(self, name: str) -> SlotGroup:
        memory_dir, pids_dir = self.memory_base / name, self.pids_base / name
        memory_dir.mkdir(exist_ok=True)
        pids_dir.mkdir(exist_ok=True)
        return SlotGroup(self.version, memory_dir, pids_dir)

    @classmethod
    def detect(cls, name: str, root: Path = CGROUP_ROOT) -> Cgroups | None:
        """The engine's cgroup tree under name, or None when this host does not let us make one."""
        try:
            found = cls._v1(name, root) or cls._v2(name, root)
            if found:
                # prove it works end to end before trusting it with a run, in a group of its
                # own: a slot's group may be holding a run of another engine right now
                probe = found.group("probe")
                probe.apply(64 * 1024 * 1024, 16)
                probe.counters()
            return found
        except OSError as error:
            log.warning("cgroups unavailable (%s): memory and process caps fall back to rlimits", error)
            return None

    @classmethod
    def _v1(cls, name: str, root: Path) -> Cgroups | None:
        memory, pids = root / "memory", root / "pids"
        if not (memory / "memory.limit_in_bytes").exists() or not (pids / "cgroup.procs").exists():
            return None
        (memory / name).mkdir(exist_ok=True)
        (pids / name).mkdir(exist_ok=True)
        return cls("v1", memory / name, pids / name)

    @classmethod
    def _v2(cls, name: str, root: Path) -> Cgroups | None:
        controllers = root / "cgroup.controllers"
        if not controllers.exists() or not {"memory", "pids"} <= set(controllers.read_text().split()):
            return None
        _write(root / "cgroup.subtree_control", "+memory +pids")
        base = root / name
        base.mkdir(exist_ok=True)
        _write(base / "cgroup.subtree_control", "+memory +pids")
        return cls("v2", base, base)
