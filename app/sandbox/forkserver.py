"""Fork servers: one started interpreter per slot that forks each run into fresh namespaces.

A `ForkServer` is one bubblewrap launch (the cold start's read-only system, uid, rlimits and cgroup)
running forkserver_program.SOURCE, which has never run learner code and serves the slot's runs one
at a time. Each run gets its stdin, the write ends of its output pipes and a memfd with the program
over the control socket; the engine reads the output itself and drives the run with process.drive(),
the same driver as a cold run (clocks, caps, stdin streaming, stop, the stdin probe). Never imports
Flask or the database. The argument for why this is as safe as a cold start: docs/security.md.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .cgroups import SlotGroup
from .forkserver_program import SOURCE as SERVER_SOURCE
from .host_processes import children_of, pids_of_user
from .isolation import WORKDIR, Step, program_env
from .languages import Language
from .limits import Limits
from .run_bundle import bundle_of, memfd, read_byte, rlimits, server_key
from .spawn import (
    STOP_GRACE_SECONDS,
    Running,
    SandboxError,
    readable,
    readable_any,
    spawn,
)

if TYPE_CHECKING:
    from . import Sandbox

log = logging.getLogger(__name__)

# the cold run's interpreter and flags (languages/scripting.py): sys.flags are the same in a fork;
# the server's text comes in a memfd (argv[1]), so a run's /proc/<pid>/cmdline stays this short
SERVER_LOADER = 'import sys; exec(open(int(sys.argv[1]), "rb").read())'
SERVER_ARGV = ("/usr/bin/python3", "-E", "-s", "-u", "-B", "-c", SERVER_LOADER)
# languages whose runtime can fork after start-up: the run is a fork of the started interpreter.
# Node (libuv's threads) and the JVM (its threads, GC and JIT) cannot fork safely once started
FORKABLE = frozenset({"python"})
START_TIMEOUT_SECONDS = 10.0
# past a stop, how long the server may take to report the run's end before it is ended itself
REPORT_GRACE_SECONDS = STOP_GRACE_SECONDS
# how long a run's namespaces may take to be torn down (its init reaped) and the next run to be
# prepared, after its result (the server gives a preparation 5 s)
EMPTIED_TIMEOUT_SECONDS = 6.0
# a prepared run is its init (PID 1 of its namespaces) and its program's process (PID 2)
PREPARED_PROCESSES = 2
# what a served run has in its slot beside a cold start's processes (bubblewrap's two and the
# program): the server itself and the run's init. The slot's pids cap (or, without cgroups, the
# run's RLIMIT_NPROC) and the server sandbox's RLIMIT_NPROC (its user namespace's ceiling) are
# raised by exactly this many, so the learner's program may start exactly as many processes as
# after a cold start. (A server under another uid would not change the pids cgroup, which counts
# every process in it, nor a run's uid, which must be the slot's.)
SERVER_PROCESSES = 2


def served_limits(limits: Limits) -> Limits:
    """The process limits of a served run's slot: limits.processes for the program, plus the server's own."""
    return replace(limits, processes=limits.processes + SERVER_PROCESSES)


@dataclass
class ForkedProcess:
    """The part of subprocess.Popen that process.drive() uses, for a run forked by a server."""

    server: ForkServer
    stdin: object
    stdout: object
    stderr: object
    # where the stdin probe starts looking (the server's tree, the run's processes included)
    pid: int
    # read end of the run's status pipe: its init writes the program's exit code there (one byte);
    # -1 once read or closed (the init ended without a byte: the server's report says how)
    status: int = -1
    returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._report(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and not self._report(timeout):
            raise subprocess.TimeoutExpired("fork server run", timeout or 0.0)
        return self.returncode

    def _report(self, timeout: float | None) -> bool:
        """True once the run's end is known: the init's byte, or else the server's report."""
        ready = self.server.await_end(self.status, timeout)
        if ready is None:
            return False
        if ready == "status":
            said = read_byte(self.status)
            self._close_status()
            if said is not None:
                self.returncode = said
                return True
            # the init ended without telling (killed): the server's report says how
            if not self.server.await_report(timeout):
                return False
        self._close_status()
        self.returncode = self.server.take_returncode()
        return True

    def _close_status(self) -> None:
        if self.status >= 0:
            fd, self.status = self.status, -1
            os.close(fd)


@dataclass
class ForkedRun(Running):
    """A run forked by a server: stopped by the server (its PID namespace killed), nothing to reap."""

    process: ForkedProcess = field(default=None)  # type: ignore[assignment]

    def stop(self) -> None:
        if self.process.returncode is not None:
            return
        self.process.server.kill_run()
        try:
            self.process.wait(REPORT_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            # the server did not answer: it goes, and its whole sandbox with the run
            self.process.server.broken = "no report after a stop"
            self.process.server.close()
            self.process._close_status()
            self.process.returncode = -9

    def reap(self) -> None:
        return None


class ForkServer:
    """One slot's server: started with a run's limits, serving runs with exactly those limits."""

    def __init__(self, sandbox: Sandbox, language: Language, limits: Limits, slot: int) -> None:
        self.sandbox = sandbox
        self.language = language
        self.limits = limits
        self.slot = slot
        self.group: SlotGroup | None = sandbox.slot_group(slot)
        self.runs = 0
        # the slot's memory and process caps as its runs last set them: while the server lives,
        # only its runs use the slot (any other use ends it first), so they stay set
        self.caps_applied: tuple[int, int] | None = None
        # why the server must not fork again (a doubt), or None while it may
        self.broken: str | None = None
        self._resources = contextlib.ExitStack()
        self._running: Running | None = None
        self._control: socket.socket | None = None
        self._own_pids: frozenset[int] = frozenset()
        # the server's word that every process of the last run is gone: awaited before the next run
        self._awaiting_emptied = False
        # that word, once received (its returncode is the run's when the init told none)
        self._end_report: dict[str, object] | None = None
        # read end of the prepared run's status pipe, from the server's last report
        self._status: int = -1
        self._start()

    def _start(self) -> None:
        sandbox = self.sandbox
        sandbox.clear_slot(self.slot)
        served = served_limits(self.limits)
        if self.group:
            self.group.apply(served.memory_bytes, served.processes)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        syscall_filter = getattr(sandbox.isolation, "syscall_filter", None)
        filter_fd = memfd("seccomp", syscall_filter) if syscall_filter is not None else -1
        source_fd = memfd("fork-server", SERVER_SOURCE.encode())
        try:
            command = (*SERVER_ARGV, str(source_fd), str(theirs.fileno()), str(filter_fd), str(self.limits.disk_bytes))
            fds = (source_fd, theirs.fileno(), *((filter_fd,) if filter_fd >= 0 else ()))
            step = Step(command=command, extra_fds=fds, fork_server=True)
            launch = self._resources.enter_context(
                sandbox.isolation.launch(self.language, b"", served, sandbox.slot_user(self.slot), self.group, step)
            )
            self._running = spawn(launch)
        except BaseException:
            ours.close()
            self._resources.close()
            raise
        finally:
            theirs.close()
            os.close(source_fd)
            if filter_fd >= 0:
                os.close(filter_fd)
        self._control = ours
        self._running.process.stdin.close()
        ready = self.receive(START_TIMEOUT_SECONDS)
        if ready is None or not ready.get("ready"):
            said = self._stderr() or (ready or {}).get("error")
            self.close()
            raise SandboxError(f"the fork server did not start; it said: {said or 'nothing'}")
        process = self._running.process
        inner = self._running.inner_pid
        self._own_pids = frozenset({process.pid, *((inner,) if inner else ()), *children_of(inner)})
        self._server_pid = next(iter(children_of(inner)), None)

    @property
    def running(self) -> Running | None:
        """The server's sandbox (bubblewrap's process and its init), until closed."""
        return self._running

    @property
    def alive(self) -> bool:
        return self._control is not None and self._running is not None and self._running.process.poll() is None

    def usable_for(self, limits: Limits) -> bool:
        return self.broken is None and self.alive and server_key(limits) == server_key(self.limits)

    def settle(self) -> None:
        """Before the slot's next fork: the last run's processes are all gone (the server says so, and
        the slot's cgroup or uid agrees), and the next run is prepared and nothing else; else broken."""
        if self.broken is None and self._awaiting_emptied and self._end_report is None:
            if not self.await_report(EMPTIED_TIMEOUT_SECONDS):
                self.broken = "the last run's processes were not gone in time"
        report, self._end_report = self._end_report, None
        self._awaiting_emptied = False
        if self.broken is None and report is not None and not report.get("emptied"):
            self.broken = f"an unexpected report: {report}"
        if self.broken is None and self._status < 0:
            self.broken = "no prepared run"
        if self.broken is None:
            self._check_processes()

    def await_end(self, status: int, timeout: float | None) -> str | None:
        """Wait for the run's end: "status" when its init wrote (or closed) the status pipe, "report"
        when the server's report came first (it always comes: the init was killed, a doubt, the server
        gone), None after timeout."""
        if self._end_report is not None or self._control is None:
            return "report"
        fds = [*((status,) if status >= 0 else ()), self._control.fileno()]
        ready = readable_any(fds, timeout)
        if ready is None:
            return None
        if ready == self._control.fileno():
            return "report" if self.await_report(0.0) else None
        return "status"

    def await_report(self, timeout: float | None) -> bool:
        """Receive the server's end-of-run report (and the next prepared run's status pipe); True once it is here."""
        if self._end_report is not None:
            return True
        report = self.receive(timeout)
        if report is None:
            return False
        if "returncode" not in report:
            self.broken = self.broken or f"an unexpected report: {report}"
            report = {**report, "returncode": -9}
        self._end_report = report
        return True

    def take_returncode(self) -> int:
        """The run's returncode from the server's report (the init's exit status)."""
        return int(self._end_report["returncode"]) if self._end_report is not None else -9

    def start_run(
        self, source: bytes, files: tuple[tuple[str, bytes], ...], args: tuple[str, ...], interactive: bool
    ) -> ForkedRun:
        """Hand one run to the server: the returned run is driven by process.drive()."""
        language, limits = self.language, self.limits
        step = Step(files=files, args=args, interactive=interactive)
        header = {
            "mode": "python" if language.name == "python" else "exec",
            "argv": language.run_argv("/build", limits.memory_bytes),
            # bubblewrap's --chdir sets PWD for a cold start
            "env": {**program_env(language, WORKDIR, step), "PWD": WORKDIR},
            "source_file": language.source_file,
            "disk_bytes": limits.disk_bytes,
            # with a pids cgroup, RLIMIT_NPROC is a backstop with slack above it (isolation.NPROC_SLACK,
            # wider than the server's two): the cold run's value; without one it is the limit and
            # counts the server and the run's init too
            "rlimits": rlimits(limits if self.group is not None else served_limits(limits), self.group is not None, language.address_space_limit),
        }
        bundle = bundle_of(source, files, args)
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        theirs = (stdin_read, stdout_write, stderr_write, bundle)
        try:
            socket.send_fds(self._control, [json.dumps(header).encode()], list(theirs))
        except OSError as error:
            for fd in (stdin_write, stdout_read, stderr_read):
                os.close(fd)
            self.broken = f"the server did not take a run: {error}"
            raise SandboxError(self.broken) from error
        finally:
            for fd in theirs:
                os.close(fd)
        self.runs += 1
        self._awaiting_emptied = True
        status, self._status = self._status, -1
        process = ForkedProcess(
            self,
            stdin=open(stdin_write, "wb", buffering=0),
            stdout=open(stdout_read, "rb", buffering=0),
            stderr=open(stderr_read, "rb", buffering=0),
            pid=self._running.inner_pid or self._running.process.pid,
            status=status,
        )
        return ForkedRun(process=process)

    def kill_run(self) -> None:
        try:
            self._control.send(b'{"kill": true}')
        except (OSError, AttributeError):
            pass

    def receive(self, timeout: float | None) -> dict[str, object] | None:
        """The server's next report, or None if none came within timeout. A lost server reports a kill."""
        control = self._control
        if control is None:
            return {"returncode": -9, "doubt": "the server is gone"}
        if not readable(control.fileno(), timeout):
            return None
        try:
            message, fds, _, _ = socket.recv_fds(control, 65536, 1)
        except OSError:
            message, fds = b"", []
        for fd in fds:
            # the next prepared run's status pipe
            self._close_status()
            self._status = fd
        if not message:
            self.broken = "the server went away"
            return {"returncode": -9, "doubt": self.broken}
        report = json.loads(message)
        if report.get("doubt"):
            self.broken = str(report["doubt"])
        return report

    def _check_processes(self) -> None:
        # the server's own processes and the prepared run (its init and program): nothing else
        prepared = [pid for child in children_of(self._server_pid) for pid in (child, *children_of(child))]
        if len(prepared) > PREPARED_PROCESSES:
            self.broken = f"the prepared run has {len(prepared)} processes"
            return
        allowed = self._own_pids | set(prepared)
        if self.group is not None:
            left = set(self.group.pids()) - allowed
        else:
            user = self.sandbox.slot_user(self.slot)
            left = set(pids_of_user(user)) - allowed if user is not None else set()
        if left:
            self.broken = f"processes left after a run: {sorted(left)}"

    def close(self) -> None:
        """End the server and its sandbox."""
        if self._control is not None:
            self._control.close()
            self._control = None
        self._close_status()
        running, self._running = self._running, None
        if running is not None:
            running.end()
        self._resources.close()

    def _close_status(self) -> None:
        if self._status >= 0:
            fd, self._status = self._status, -1
            os.close(fd)

    def _stderr(self) -> str:
        process = self._running.process if self._running else None
        if process is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            if process.poll() is not None or readable(process.stderr.fileno(), 0.2):
                return process.stderr.read1(4096).decode(errors="replace").strip()
        return ""
