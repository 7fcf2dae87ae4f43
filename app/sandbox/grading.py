"""Test cases of a graded run, all inside one sandbox start: the engine's side of the test supervisor.

One `Supervisor` is one bubblewrap launch (the same launch path as every run, with the run's limits
and cgroup) running supervisor_program.SOURCE. Each case gets its stdin (a memfd) and the write ends
of its output pipes over the control socket; the engine reads the output itself, under the cap, and
the exit status, times and max RSS come back on that socket, which only the supervisor holds.
Never imports Flask or the database.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .cgroups import OomCounter
from .isolation import BUILD_DIR, Step
from .languages import Language
from .limits import Limits
from .run_bundle import memfd
from .run_io import READ_CHUNK
from .spawn import Running, SandboxError, spawn
from .supervisor_program import BLOB as SUPERVISOR_BLOB
from .supervisor_program import LOADER as SUPERVISOR_LOADER

if TYPE_CHECKING:
    from . import Sandbox

log = logging.getLogger(__name__)

# the supervisor's interpreter: the one a cold Python run gets, isolated (-I): its sys.path has no
# folder a program can write, and each Python case puts its own folder first, as a cold run has it
# its text comes compiled, in a memfd (supervisor_program.LOADER, BLOB)
SUPERVISOR_ARGV = ("/usr/bin/python3", "-I", "-u", "-B", "-c", SUPERVISOR_LOADER)
# processes of the sandbox beside a cold run's: the supervisor, and for Python the zygote its
# cases are forked from (supervisor_program.py)
SUPERVISOR_PROCESSES = 1
ZYGOTE_PROCESSES = 1
# between the fields of one argument of the supervisor's
FIELD_SEPARATOR = "\x1f"
# how long the supervisor may take to start before the sandbox counts as broken
START_TIMEOUT_SECONDS = 10.0
# past a case's own wall limit, how long the engine waits for the supervisor's report before it
# ends the whole sandbox itself (a stopped or stuck supervisor)
REPORT_GRACE_SECONDS = 1.0
# after the report, how long output still in the pipes may take to arrive
DRAIN_SECONDS = 0.5


@dataclass(frozen=True)
class CaseOutcome:
    """What one case did, before anyone judges it."""

    exit_code: int | None
    # the signal that ended it, if one did
    signal: int | None
    stdout: bytes
    stderr: bytes
    wall_ms: int
    cpu_ms: int
    max_rss_bytes: int
    timed_out: bool = False
    output_exceeded: bool = False
    # the cgroup's OOM killer struck during this case
    oom_killed: bool = False
    # the supervisor died during this case (the program killed it, or the sandbox broke)
    supervisor_lost: bool = False


class SupervisorLost(Exception):
    """The supervisor went away: its sandbox is over, the remaining cases need a fresh one."""


@dataclass
class SentCase:
    """A case handed to the supervisor, not yet collected: the engine's ends of its output pipes."""

    out_read: int
    err_read: int
    timeout_seconds: float
    output_bytes: int
    begun: float
    sending: float = 0.0

    def close(self) -> None:
        for fd in (self.out_read, self.err_read):
            if fd >= 0:
                os.close(fd)
        self.out_read = self.err_read = -1


class Supervisor:
    """One sandbox start that runs test cases one after another until closed."""

    def __init__(
        self, sandbox: Sandbox, language: Language, limits: Limits, slot: int, source: bytes, build_dir: Path | None
    ) -> None:
        self.sandbox = sandbox
        self.language = language
        # the slot's process limit counts the supervisor (and, for Python, the zygote) beside the
        # case: raised by them, so the learner's program may start as many as after a cold start
        own = SUPERVISOR_PROCESSES + (ZYGOTE_PROCESSES if language.name == "python" else 0)
        self.limits = replace(limits, processes=limits.processes + own)
        self.slot = slot
        self.group = sandbox.slot_group(slot)
        self._resources = contextlib.ExitStack()
        self._running: Running | None = None
        self._control: socket.socket | None = None
        self._reported_at = 0.0
        # CLOCK_MONOTONIC marks of the last case, the engine's and the supervisor's (one clock):
        # where a case's time goes (bench/grading_profile.py)
        self.last_marks: dict[str, float] = {}
        self.start_marks: dict[str, float] = {}
        self.started_at = time.monotonic()
        self._oom = OomCounter(None)
        self._start(source, build_dir)
        self._oom = self.group.oom_counter() if self.group else OomCounter(None)
        self._oom_kills = self._oom.read()
        self.ready_at = time.monotonic()

    def _start(self, source: bytes, build_dir: Path | None) -> None:
        sandbox = self.sandbox
        sandbox.clear_slot(self.slot)
        if self.group:
            self.group.apply(self.limits.memory_bytes, self.limits.processes)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        program = memfd("supervisor", SUPERVISOR_BLOB)
        self.start_marks["slot_ready"] = time.monotonic()
        try:
            mode = "python" if self.language.name == "python" else "exec"
            confined = sandbox.isolation.name == "bubblewrap"
            build = BUILD_DIR if confined else str(build_dir or ".")
            run_argv = self.language.graded_run_argv(build, self.limits.memory_bytes, cgroup=self.group is not None)
            # emptied after every case: the sandbox's own tmpfs mounts (never the host's /tmp)
            scratch = ["/tmp", "/dev/shm"] if confined else []
            # fields joined by US (\x1f): the supervisor parses no JSON (it would import re at every start)
            command = (
                *SUPERVISOR_ARGV, str(theirs.fileno()), mode, FIELD_SEPARATOR.join(run_argv), self.language.source_file,
                FIELD_SEPARATOR.join(scratch), "1" if confined else "0", str(program),
            )
            step = Step(build_dir=build_dir, command=command, extra_fds=(theirs.fileno(), program))
            launch = self._resources.enter_context(
                sandbox.isolation.launch(self.language, source, self.limits, sandbox.slot_user(self.slot), self.group, step)
            )
            self._running = spawn(launch)
            self.start_marks["spawned"] = time.monotonic()
        except BaseException:
            ours.close()
            self._resources.close()
            raise
        finally:
            theirs.close()
            os.close(program)
        self._control = ours
        self._running.process.stdin.close()
        try:
            ready = self._receive(time.monotonic() + START_TIMEOUT_SECONDS)
        except SupervisorLost:
            said = self._supervisor_stderr()
            self.close()
            raise SandboxError(f"the test supervisor did not start: {said or 'it said nothing'}") from None
        self.start_marks.update(ready.get("marks") or {})
        if not ready.get("ready"):
            self.close()
            raise SandboxError("the test supervisor did not start")

    def run_case(self, index: int, stdin: bytes, timeout_seconds: float, cpu_seconds: int, output_bytes: int) -> CaseOutcome:
        """Run the program once on stdin; SupervisorLost if the sandbox ended under it."""
        return self.collect(self.send(index, stdin, timeout_seconds, cpu_seconds, output_bytes))

    def send(self, index: int, stdin: bytes, timeout_seconds: float, cpu_seconds: int, output_bytes: int) -> SentCase:
        """Hand the supervisor one case (it starts at once); collect() waits for its end. Only one
        case at a time: the case before must have been collected (its end read, so it is swept away
        before this case's input enters the sandbox). SupervisorLost if the sandbox is gone."""
        if self._control is None:
            raise SupervisorLost()
        begun = time.monotonic()
        stdin_fd = os.memfd_create("stdin", 0)
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        sent = SentCase(out_read, err_read, timeout_seconds, output_bytes, begun)
        try:
            view = memoryview(stdin)
            while view:
                view = view[os.write(stdin_fd, view) :]
            os.lseek(stdin_fd, 0, os.SEEK_SET)
            header = f"case {int(index)} {float(timeout_seconds)!r} {max(1, int(cpu_seconds))}"
            sent.sending = time.monotonic()
            try:
                socket.send_fds(self._control, [header.encode()], [stdin_fd, out_write, err_write])
            except OSError:
                # gone between cases: its sandbox ends here, so a retry starts a fresh one
                self.close()
                raise SupervisorLost() from None
        except BaseException:
            sent.close()
            raise
        finally:
            for fd in (stdin_fd, out_write, err_write):
                os.close(fd)
        return sent

    def collect(self, sent: SentCase) -> CaseOutcome:
        """Wait for the end of the case sent: its output, its report, the cgroup's word on memory."""
        # the counter as the case before left it: nothing else runs in this sandbox in between
        before = self._oom_kills
        try:
            report, stdout, stderr, exceeded, overdue = self._collect(
                sent.out_read, sent.err_read, sent.timeout_seconds, sent.output_bytes
            )
        finally:
            sent.close()
        collected = time.monotonic()
        after = self._oom_kills = self._oom.read()
        oom = after > before
        timeout_seconds = sent.timeout_seconds
        self.last_marks = {
            "begun": sent.begun, "sending": sent.sending, **((report or {}).get("marks") or {}), "collected": collected,
            "reported": self._reported_at, "done": time.monotonic(),
        }
        if report is None:
            # overdue: the case outlived its limit with the supervisor unable to end it (stopped?)
            return CaseOutcome(
                None, signal.SIGKILL, stdout, stderr, int(timeout_seconds * 1000), 0, 0,
                timed_out=overdue, output_exceeded=exceeded, oom_killed=oom, supervisor_lost=not overdue,
            )
        return CaseOutcome(
            exit_code=report["exit_code"],
            signal=report["signal"],
            stdout=stdout,
            stderr=stderr,
            wall_ms=int(report["wall_ms"]),
            cpu_ms=int(report["cpu_ms"]),
            max_rss_bytes=int(report["max_rss_bytes"]),
            timed_out=bool(report["timed_out"]),
            output_exceeded=exceeded,
            oom_killed=oom,
        )

    def _collect(
        self, out_read: int, err_read: int, timeout_seconds: float, output_bytes: int
    ) -> tuple[dict | None, bytes, bytes, bool, bool]:
        """Read the case's output under the cap until its report comes: (report, stdout, stderr, output
        exceeded, overdue); the report is None if the supervisor died, or missed the deadline (overdue)."""
        buffers = {out_read: bytearray(), err_read: bytearray()}
        exceeded = overdue = False
        report: dict | None = None
        deadline = time.monotonic() + timeout_seconds + REPORT_GRACE_SECONDS
        control = self._control
        with selectors.DefaultSelector() as selector:
            for fd in buffers:
                os.set_blocking(fd, False)
                selector.register(fd, selectors.EVENT_READ)
            selector.register(control, selectors.EVENT_READ)
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if report is None:
                        # the supervisor missed its own deadline: the engine's backstop ends the sandbox
                        log.warning("a test supervisor missed its deadline; ending its sandbox")
                        overdue = True
                        self.close()
                    break
                for key, _ in selector.select(remaining):
                    if key.fileobj is control:
                        try:
                            message = control.recv(65536)
                        except OSError:
                            # a supervisor killed mid-send can reset the socket: the same as its end
                            message = b""
                        selector.unregister(control)
                        if not message:
                            self.close()
                            deadline = min(deadline, time.monotonic() + DRAIN_SECONDS)
                            continue
                        report = json.loads(message)
                        self._reported_at = time.monotonic()
                        deadline = min(deadline, time.monotonic() + DRAIN_SECONDS)
                        continue
                    chunk = os.read(key.fd, READ_CHUNK)
                    if not chunk:
                        selector.unregister(key.fd)
                        continue
                    data = buffers[key.fd]
                    room = output_bytes - len(data)
                    data += chunk[: max(0, room)]
                    if len(chunk) > room and not exceeded:
                        exceeded = True
                        self._send_kill()
        return report, bytes(buffers[out_read]), bytes(buffers[err_read]), exceeded, overdue

    def _send_kill(self) -> None:
        try:
            if self._control is not None:
                self._control.send(b"kill")
        except OSError:
            pass

    def _receive(self, deadline: float) -> dict:
        control = self._control
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SupervisorLost()
            control.settimeout(remaining)
            try:
                message = control.recv(65536)
            except TimeoutError:
                raise SupervisorLost() from None
            except OSError:
                raise SupervisorLost() from None
            if not message:
                raise SupervisorLost()
            return json.loads(message)

    def _supervisor_stderr(self) -> str:
        if self._running is None:
            return ""
        stream = self._running.process.stderr
        try:
            os.set_blocking(stream.fileno(), False)
            return (stream.read(4096) or b"").decode(errors="replace").strip()[-500:]
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        """End the sandbox's processes now, from any thread: the case under way ends as lost, and
        the thread running it closes the rest (close())."""
        running = self._running
        if running is not None:
            running.stop()

    @property
    def alive(self) -> bool:
        return self._control is not None

    def close(self) -> None:
        """End the sandbox and everything in it, and empty the slot."""
        self._oom.close()
        if self._control is not None:
            self._control.close()
            self._control = None
        running, self._running = self._running, None
        if running is not None:
            running.end()
        self._resources.close()
        self.sandbox.clear_slot(self.slot)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
