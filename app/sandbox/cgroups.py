"""Per-slot control groups (v1 or v2) that cap a run's memory, processes and CPU, when the host allows."""
from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
# the CFS bandwidth period; a run's quota is its share of cores times this
CPU_PERIOD_MICROSECONDS = 100_000
# equal weights: every slot gets the same share of a contended CPU (the kernel's default, made sure)
CPU_SHARES_V1 = 1024
CPU_WEIGHT_V2 = 100


@dataclass(frozen=True)
class Counters:
    """Monotonic event counts of a slot's groups; a run compares them before and after."""

    oom_kills: int
    pids_max_hits: int


def _value_of(text: str, key: str) -> int:
    """key's value in a cgroup file of "key value" lines; 0 if it has none."""
    try:
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except ValueError:
        pass
    return 0


def _read_key(path: Path, key: str) -> int:
    try:
        return _value_of(path.read_text(), key)
    except OSError:
        return 0


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return 0


def _write(path: Path, value: str | int) -> None:
    path.write_text(str(value))


class SlotGroup:
    """The memory, pids and (when the host has them) cpu and cpuacct groups of one worker slot."""

    def __init__(
        self,
        version: str,
        memory_dir: Path,
        pids_dir: Path,
        cpu_dir: Path | None = None,
        cpuacct_dir: Path | None = None,
    ) -> None:
        self.version = version
        self.memory_dir = memory_dir
        self.pids_dir = pids_dir
        # v1 mounts cpu (bandwidth, shares) and cpuacct (usage) apart on some hosts; v2 has one dir
        self.cpu_dir = cpu_dir
        self.cpuacct_dir = cpuacct_dir

    @property
    def directories(self) -> list[Path]:
        found = [self.memory_dir, self.pids_dir, self.cpu_dir, self.cpuacct_dir]
        unique: list[Path] = []
        for directory in found:
            if directory is not None and directory not in unique:
                unique.append(directory)
        return unique

    def limit_cpu(self, cores: float) -> None:
        """Cap the slot at `cores` cores' worth of CPU time (0: no cap) with an equal weight."""
        if self.cpu_dir is None:
            return
        quota = int(cores * CPU_PERIOD_MICROSECONDS) if cores > 0 else -1
        if self.version == "v1":
            _write(self.cpu_dir / "cpu.cfs_period_us", CPU_PERIOD_MICROSECONDS)
            _write(self.cpu_dir / "cpu.cfs_quota_us", quota)
            _write(self.cpu_dir / "cpu.shares", CPU_SHARES_V1)
        else:
            _write(self.cpu_dir / "cpu.max", f"{quota if quota > 0 else 'max'} {CPU_PERIOD_MICROSECONDS}")
            _write(self.cpu_dir / "cpu.weight", CPU_WEIGHT_V2)

    @property
    def counts_cpu(self) -> bool:
        return self.cpuacct_dir is not None

    def cpu_used_ns(self) -> int | None:
        """CPU time used by every process ever in the slot, in ns (monotonic: compare two readings);
        None when it cannot be read."""
        if self.cpuacct_dir is None:
            return None
        try:
            if self.version == "v1":
                return int((self.cpuacct_dir / "cpuacct.usage").read_text())
            for line in (self.cpuacct_dir / "cpu.stat").read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == "usage_usec":
                    return int(value) * 1000
        except (OSError, ValueError):
            pass
        return None

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
        for directory in self.directories:
            _write(directory / "cgroup.procs", pid)

    @property
    def memory_events(self) -> Path:
        """The memory group's file that counts OOM kills (key "oom_kill")."""
        return self.memory_dir / ("memory.oom_control" if self.version == "v1" else "memory.events")

    def counters(self) -> Counters:
        return Counters(
            oom_kills=_read_key(self.memory_events, "oom_kill"),
            pids_max_hits=_read_key(self.pids_dir / "pids.events", "max"),
        )

    def oom_counter(self) -> OomCounter:
        return OomCounter(self.memory_events)

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

    def __init__(
        self,
        version: str,
        memory_base: Path,
        pids_base: Path,
        cpu_base: Path | None = None,
        cpuacct_base: Path | None = None,
        cpu_cores: float = 1.0,
    ) -> None:
        self.version = version
        self.memory_base = memory_base
        self.pids_base = pids_base
        # None when the host has no usable cpu (bandwidth) or cpuacct (usage) controller
        self.cpu_base = cpu_base
        self.cpuacct_base = cpuacct_base
        self.cpu_cores = cpu_cores

    def slot(self, index: int) -> SlotGroup:
        return self.group(f"slot-{index}")

    def group(self, name: str) -> SlotGroup:
        def make(base: Path | None) -> Path | None:
            if base is None:
                return None
            (base / name).mkdir(exist_ok=True)
            return base / name

        group = SlotGroup(
            self.version, make(self.memory_base), make(self.pids_base), make(self.cpu_base), make(self.cpuacct_base)
        )
        # the same for every run of the slot: set once, when the engine first uses the slot
        group.limit_cpu(self.cpu_cores)
        return group

    @classmethod
    def detect(cls, name: str, root: Path = CGROUP_ROOT, cpu_cores: float = 1.0) -> Cgroups | None:
        """The engine's cgroup tree under name, or None when this host does not let us make one."""
        try:
            found = cls._v1(name, root) or cls._v2(name, root)
            if found:
                found.cpu_cores = cpu_cores
                # prove it works end to end before trusting it with a run, in a group of its
                # own: a slot's group may be holding a run of another engine right now
                try:
                    probe = found.group("probe")
                except OSError as error:
                    if found.cpu_base is None:
                        raise
                    # a CPU cap the kernel refuses (a parent's smaller quota, ...) costs the cap only
                    log.warning("cgroup CPU cap refused (%s): no CPU cap per run", error)
                    found.cpu_base = None
                    probe = found.group("probe")
                probe.apply(64 * 1024 * 1024, 16)
                probe.counters()
                if found.cpuacct_base is not None and probe.cpu_used_ns() is None:
                    log.warning("cgroup CPU usage unreadable: RUN_CPU_SECONDS falls back to RLIMIT_CPU per process")
                    found.cpuacct_base = None
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
        cpu, cpuacct = root / "cpu", root / "cpuacct"
        cpu_base = cpuacct_base = None
        if (cpu / "cpu.cfs_quota_us").exists():
            (cpu / name).mkdir(exist_ok=True)
            cpu_base = cpu / name
        if (cpuacct / "cpuacct.usage").exists():
            (cpuacct / name).mkdir(exist_ok=True)
            cpuacct_base = cpuacct / name
        return cls("v1", memory / name, pids / name, cpu_base, cpuacct_base)

    @classmethod
    def _v2(cls, name: str, root: Path) -> Cgroups | None:
        controllers = root / "cgroup.controllers"
        available = set(controllers.read_text().split()) if controllers.exists() else set()
        if not {"memory", "pids"} <= available:
            return None
        base = root / name
        cpu = "cpu" in available
        try:
            cls._delegate(root, base, "+memory +pids +cpu" if cpu else "+memory +pids")
        except OSError as error:
            if not cpu:
                raise
            # the kernel refuses the cpu controller in some setups (realtime processes outside the
            # root group): keep memory and pids, count CPU time without capping it
            log.warning("cgroup v2 cpu controller refused (%s): no CPU cap per run", error)
            cls._delegate(root, base, "+memory +pids")
            cpu = False
        # cpu.stat (usage) is in every v2 group; cpu.max and cpu.weight need the cpu controller
        return cls("v2", base, base, base if cpu else None, base)

    @staticmethod
    def _delegate(root: Path, base: Path, controllers: str) -> None:
        _write(root / "cgroup.subtree_control", controllers)
        base.mkdir(exist_ok=True)
        _write(base / "cgroup.subtree_control", controllers)


class OomCounter:
    """A slot's count of OOM kills, read again and again (after every case of a graded run): its
    cgroup file kept open and read from its start (a cgroup file is generated afresh at each read
    from offset 0), not opened, read and closed at each look as counters() does once per run."""

    def __init__(self, path: Path | None) -> None:
        self._fd = -1
        if path is not None:
            try:
                self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                pass

    def read(self) -> int:
        if self._fd < 0:
            return 0
        try:
            return _value_of(os.pread(self._fd, 4096, 0).decode(), "oom_kill")
        except OSError:
            return 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
