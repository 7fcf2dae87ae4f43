"""The sandbox: run(language, source, stdin, limits, slot) -> Result, under the strongest isolation the host allows.

Never imports Flask: usable and testable with plain function calls.
"""
from __future__ import annotations

import logging
import os
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from . import limits as reasons
from .cgroups import Cgroups, Counters, SlotGroup
from .compile_cache import Artifact, CompileCache
from .control import Control, Interactivity, StopOnly
from .fork_servers import ForkServers
from .forkserver import FORKABLE
from .host_processes import pids_of_user
from .isolation import Bubblewrap, Step, Unconfined
from .languages import BY_NAME, Language, installed
from .limits import Limits, Result
from .outcomes import cpu_watchdog, result_of
from .process import execute
from .run_io import OutputListener
from .spawn import SandboxError, become_subreaper
from .syscall_filter import build_filter
from .warm import WarmPool
from .warm_starts import discard_warm, run_warm, start_warm

__all__ = ["Sandbox", "SandboxError", "Limits", "Result", "Language", "BY_NAME", "installed", "Control", "Interactivity"]

log = logging.getLogger(__name__)

LEFTOVER_KILL_SECONDS = 2.0
SELF_TEST_ATTEMPTS = 3


@dataclass(frozen=True)
class Settings:
    # "bubblewrap" (the default, refuses to run without it) or "none" (development only)
    isolation: str = "bubblewrap"
    # worker slot N runs as uid/gid uid_base + N when the engine is root
    uid_base: int = 61000
    # the seccomp filter on every sandboxed program (seccomp_bpf.py); off only to diagnose
    syscall_filter: bool = True
    # name of the engine's cgroup tree; "" turns cgroups off
    cgroup_name: str = "live-code-engine"
    # CPU bandwidth of one run (all its processes), in cores, with a cpu cgroup; 0 for no cap
    cpu_cores: float = 1.0
    # where unconfined runs get their temporary directories
    scratch_dir: str | None = None
    # compiled artifacts, shared by every engine on the host
    # Python runs fork from a per-slot fork server (forkserver.py, docs/security.md) instead of
    # starting a fresh sandbox; off: a fresh sandbox per run (a warm one where the pool has it)
    fork_server: bool = True
    # a fork server serves this many runs, then a fresh one takes its place
    fork_server_runs: int = 500
    compile_cache_dir: str = os.path.join(tempfile.gettempdir(), "live-code-engine-cache")
    compile_cache_bytes: int = 256 * 1024 * 1024
    # the compile step's limits (languages may raise them)
    compile_limits: Limits = Limits(
        timeout_seconds=15.0, cpu_seconds=15, memory_bytes=512 * 1024 * 1024, file_size_bytes=64 * 1024 * 1024,
        disk_bytes=64 * 1024 * 1024,
    )


class Sandbox:
    """Runs untrusted programs; one instance per engine process, shared by its worker threads."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.as_root = os.geteuid() == 0
        self.cgroups = (
            Cgroups.detect(self.settings.cgroup_name, cpu_cores=self.settings.cpu_cores)
            if self.as_root and self.settings.cgroup_name
            else None
        )
        self.unavailable_reason: str | None = None
        self.isolation: Bubblewrap | Unconfined
        if self.settings.isolation == "none":
            log.warning("ISOLATION IS OFF: user code runs without namespaces. Never do this in production.")
            self.isolation = Unconfined(self.settings.scratch_dir)
        else:
            try:
                self.isolation = Bubblewrap(syscall_filter=build_filter() if self.settings.syscall_filter else None)
                become_subreaper()
            except SandboxError as error:
                self.unavailable_reason = str(error)
                self.isolation = Unconfined(self.settings.scratch_dir)
        self._groups: dict[int, SlotGroup] = {}
        self.compile_cache = CompileCache(self.settings.compile_cache_dir, self.settings.compile_cache_bytes)
        self.warm_pool: WarmPool | None = None
        # each slot's fork server, while it has one (fork_servers.py)
        self.fork_servers = ForkServers(self)

    @property
    def fork_server_starts(self) -> int:
        return self.fork_servers.starts

    def forks(self, language: Language) -> bool:
        """True when language's runs fork from the slot's fork server."""
        return self.fork_servers.forks(language)

    def start_warm_pool(self, slots: object, sizes: dict[str, int], limits_for: Callable[[Language], Limits]) -> None:
        """Keep sizes[language] warm sandboxes ready, each in a slot taken from slots (a SlotPool)."""
        # a language served by fork servers needs no warm sandboxes
        sizes = {name: size for name, size in sizes.items() if not (name in BY_NAME and self.forks(BY_NAME[name]))}
        if not self.available or not any(sizes.values()):
            return
        self.warm_pool = WarmPool(partial(start_warm, self), partial(discard_warm, self), slots, sizes, limits_for)
        self.warm_pool.start()

    def close(self) -> None:
        """Stop the warm pool and the fork servers, and end their sandboxes."""
        if self.warm_pool is not None:
            self.warm_pool.shutdown()
        self.fork_servers.close()

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None

    def self_test(self, slot: int) -> None:
        """Run a smoke program through the real path; on failure, refuse runs and say why."""
        if not self.available:
            return
        language = next(iter(installed()), None)
        if language is None:
            self.unavailable_reason = "no language toolchain is installed"
            return
        problem = ""
        for _ in range(SELF_TEST_ATTEMPTS):
            # a busy host can refuse one start (a slot still emptying): only a repeated failure counts
            try:
                result = self.run(language, language.smoke_program.encode(), b"", Limits(), slot)
            except SandboxError as error:
                problem = str(error)
            else:
                if result.exit_code == 0 and result.stdout.strip() == "OK":
                    return
                problem = result.stderr.strip()[:500]
            self.clear_slot(slot)
        self.unavailable_reason = f"the sandbox failed its self-test: {problem!r}"
        log.error("sandbox refused: %s", self.unavailable_reason)

    def describe(self) -> dict[str, object]:
        """What confines a run on this host, for /health and /languages."""
        confined = self.isolation.name == "bubblewrap"
        cpu_counted = bool(self.cgroups and self.cgroups.cpuacct_base)
        cpu_capped = bool(self.cgroups and self.cgroups.cpu_base)
        return {
            "isolation": self.isolation.name if self.available else "unavailable",
            "available": self.available,
            "reason": self.unavailable_reason,
            "namespaces": ["user", "pid", "network", "mount", "ipc", "uts"] if confined else [],
            "unprivileged_uid_per_slot": self.as_root,
            "cgroups": self.cgroups.version if self.cgroups else None,
            "memory_limit_by": "cgroup" if self.cgroups else "rlimit_as",
            "process_limit_by": "cgroup+rlimit_nproc" if self.cgroups else "rlimit_nproc",
            # the whole run's CPU time (cpuacct, all its processes) or, without it, each process's
            "cpu_time_limit_by": "cgroup+rlimit_cpu" if cpu_counted else "rlimit_cpu",
            # cores' worth of CPU one run may use at most (cgroup cpu bandwidth), or null: no cap
            "cpu_cores_per_run": self.settings.cpu_cores if cpu_capped and self.settings.cpu_cores > 0 else None,
            # "seccomp" when every program runs under the syscall filter (docs/security.md), else null
            "syscall_filter": "seccomp" if confined and self.isolation.syscall_filter is not None else None,
            "enforced": ["wall_time", "cpu_time", "memory", "processes", "output", "file_size", "open_files"]
            + (["disk"] if confined else []),
            "warning": None if confined else "isolation is off: development only",
            # how each installed language's runs start: "fork_server" (forked from the slot's
            # started interpreter), "warm" (a warm sandbox when ready, else cold) or "cold"
            "start_paths": {language.name: self._start_path(language) for language in installed()},
            # why each language starts the way it does
            "start_path_reasons": {language.name: self._start_path_reason(language) for language in installed()},
            "fork_server": self.fork_servers.describe(),
        }

    def _start_path_reason(self, language: Language) -> str:
        path = self._start_path(language)
        if path == "fork_server":
            return "forked from the slot's fork server, an interpreter started once"
        if language.name in FORKABLE:
            why = f"the fork server is off here: {self.fork_servers.reason}"
        elif language.compile:
            why = "compiled: its cached build runs in a fresh sandbox (not forked from a fork server)"
        else:
            why = "only Python runs fork from a fork server (docs/fork-server.md)"
        if path == "warm":
            return f"{why}; a warm sandbox when one is ready, else cold"
        return why

    def _start_path(self, language: Language) -> str:
        if self.forks(language):
            return "fork_server"
        if self.warm_pool is not None and language.name in self.warm_pool.sizes:
            return "warm"
        return "cold"

    def slot_user(self, slot: int) -> int | None:
        return self.settings.uid_base + slot if self.as_root else None

    def slot_group(self, slot: int) -> SlotGroup | None:
        if self.cgroups is None:
            return None
        if slot not in self._groups:
            self._groups[slot] = self.cgroups.slot(slot)
        return self._groups[slot]

    def clear_slot(self, slot: int) -> None:
        """Kill whatever a slot's runs left behind, and wait until the slot's uid owns no process.

        Waiting matters: a process killed but not yet reaped still counts against the next run's
        RLIMIT_NPROC, and a dead engine may have left a whole run behind.
        """
        # its fork server is one of those processes: the slot has none from now on
        self.fork_servers.drop(slot)
        group = self.slot_group(slot)
        user = self.slot_user(slot)
        deadline = time.monotonic() + LEFTOVER_KILL_SECONDS
        while time.monotonic() < deadline:
            leftovers = set(group.pids()) if group else set()
            if user is not None:
                leftovers.update(pids_of_user(user))
            if not leftovers:
                return
            if group:
                group.kill_all()
            for pid in leftovers:
                try:
                    os.kill(pid, signal.SIGKILL)
                    # a sandbox's init orphaned to us (the subreaper) is collected here if
                    # Running.reap() gave up on it; other processes are not ours to collect
                    os.waitpid(pid, os.WNOHANG)
                except (ProcessLookupError, PermissionError, ChildProcessError):
                    pass
            time.sleep(0.005)
        log.error("slot %s still has processes after %.0f s", slot, LEFTOVER_KILL_SECONDS)

    def run(
        self,
        language: Language,
        source: bytes,
        stdin: bytes,
        limits: Limits,
        slot: int,
        on_output: OutputListener | None = None,
        files: dict[str, bytes] | None = None,
        args: tuple[str, ...] = (),
        control: Control | None = None,
    ) -> Result:
        """Run source as language in worker slot `slot` (compiling it first if need be), and say how it ended.

        files are the program's other files (relative path -> content) beside its entry file;
        args its command-line arguments. control, when given, lets other threads stop the run
        (compile step included) and, when it is interactive, send stdin while it runs.
        """
        if not self.available:
            raise SandboxError(self.unavailable_reason)
        interactive = control is not None and control.interactive
        program = tuple(sorted((files or {}).items()))
        if self.forks(language):
            result = self.fork_servers.run(language, source, stdin, limits, slot, on_output, program, tuple(args), control)
            if result is not None:
                return result
        # a warm sandbox holds the entry file alone and runs it without arguments; an interactive
        # run may wait on a learner for minutes: it starts cold rather than hold a warm sandbox (and
        # its slot) that quick runs would otherwise take
        warm = self.warm_pool.take(language, limits) if self.warm_pool and not files and not args and not interactive else None
        if warm is not None:
            result = run_warm(self, warm, source, stdin, limits, on_output, control)
            if result is not None:
                return result
        if not language.compile:
            step = Step(files=program, args=tuple(args), interactive=interactive)
            return self._launch(language, source, stdin, limits, slot, step, on_output, control)
        artifact, compile_ms, failure = self._compiled(language, source, program, slot, control)
        if failure is not None:
            return failure
        try:
            step = Step(build_dir=artifact.path, files=program, args=tuple(args), interactive=interactive)
            result = self._launch(language, source, stdin, limits, slot, step, on_output, control)
        finally:
            # eviction may take it from now on
            artifact.release()
        return replace(result, compile_ms=compile_ms)

    def compiled(
        self,
        language: Language,
        source: bytes,
        slot: int,
        files: tuple[tuple[str, bytes], ...] = (),
        control: Control | None = None,
    ) -> tuple[Artifact | None, int, Result | None]:
        """Compile a program once through the cache (graded runs reuse it for every case); the caller
        releases the artifact when done with it. See _compiled."""
        return self._compiled(language, source, files, slot, control)

    def _compiled(
        self,
        language: Language,
        source: bytes,
        files: tuple[tuple[str, bytes], ...],
        slot: int,
        control: Control | None = None,
    ) -> tuple[Artifact | None, int, Result | None]:
        """(artifacts held for the run, compile time in ms, None), or (None, ms, the failed Result) on a compile error."""
        cache = self.compile_cache
        key = cache.key(language, source, files)
        cached = cache.acquire(key)
        if cached is not None:
            return cached, 0, None
        staging = cache.staging(self.slot_user(slot))
        for name, text in language.build_files:
            (staging / name).write_text(text)
        limits = self.settings.compile_limits.raised(language.compile_limit_overrides)
        step = Step(compile=True, build_dir=staging, files=files)
        # the compiler may be stopped, never fed: stdin sent meanwhile waits for the program
        stop_only = control.stop_only() if control is not None else None
        compiled = self._launch(language, source, b"", limits, slot, step, None, stop_only)
        if compiled.reason is None:
            return cache.publish(key, staging), compiled.duration_ms, None
        cache.discard(staging)
        if control is not None and control.cancelled:
            # stopped while compiling: the stop's reason, not a compile error
            return None, compiled.duration_ms, replace(compiled, compile_ms=compiled.duration_ms, duration_ms=0)
        # some compilers (tsc, mcs) report on stdout: a compile error's report is all in stderr
        stderr = compiled.stdout + compiled.stderr
        if compiled.reason != reasons.NONZERO_EXIT:
            stderr += f"\ncompilation stopped: {compiled.reason.replace('_', ' ')}\n"
        failed = replace(
            compiled, stdout="", stderr=stderr, reason=reasons.COMPILE_ERROR, duration_ms=0,
            compile_ms=compiled.duration_ms,
        )
        return None, compiled.duration_ms, failed

    def _launch(
        self,
        language: Language,
        source: bytes,
        stdin: bytes,
        limits: Limits,
        slot: int,
        step: Step,
        on_output: OutputListener | None,
        control: Control | StopOnly | None = None,
    ) -> Result:
        # an idle fork server (this process's, or another engine process's that used the slot
        # last) would share the cold launch's cgroups and caps: the slot is emptied first
        self.clear_slot(slot)
        group = self.slot_group(slot)
        if group:
            group.apply(limits.memory_bytes, limits.processes)
        before = group.counters() if group else Counters(0, 0)
        over_cpu = cpu_watchdog(group, limits)
        try:
            with self.isolation.launch(language, source, limits, self.slot_user(slot), group, step) as launch:
                outcome = execute(launch, stdin, limits.timeout_seconds, limits.output_bytes, on_output, over_cpu, control)
        finally:
            self.clear_slot(slot)
        return result_of(language, outcome, before, group)
