"""Run one prepared command: feed stdin, read both streams under caps, enforce the wall clock."""
from __future__ import annotations

import ctypes
import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

READ_CHUNK = 64 * 1024
PR_SET_CHILD_SUBREAPER = 36
# how long bubblewrap gets to notice its sandbox died and exit by itself
STOP_GRACE_SECONDS = 1.0
# util-linux, like prlimit
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"

# how often a run's whole CPU time is compared with its budget (one cgroup file read each time)
CPU_CHECK_SECONDS = 0.05

# called with ("stdout" | "stderr", text) as output arrives, for live feedback
OutputListener = Callable[[str, str], None]
# polled while a run goes on; True when the run has used up its CPU budget (all its processes)
CpuWatchdog = Callable[[], bool]


class SandboxError(RuntimeError):
    """The sandbox around a program could not be set up: the program never ran."""


@dataclass
class Launch:
    """Everything needed to start a program; built by an isolation, run by execute()."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    user: int | None = None
    pass_fds: tuple[int, ...] = ()
    # runs once the process exists and before the program may start (cgroup moves, unblocking);
    # returns the host pid of the sandbox's own init when there is one
    release: Callable[[subprocess.Popen[bytes]], int | None] = lambda process: None


@dataclass
class Running:
    """A started program: the process we spawned and, inside bubblewrap, the sandbox's init."""

    process: subprocess.Popen[bytes]
    # PID 1 of the run's PID namespace, as the host sees it; killing it ends every process inside
    inner_pid: int | None = None

    def stop(self) -> None:
        """Kill the program and all it started, innermost first.

        Killing bubblewrap's outer process first would orphan the sandbox's init to the host's
        init, which reaps it late; until then the zombie counts against the next run's limits.
        """
        if self.inner_pid is not None and self.process.poll() is None:
            try:
                os.kill(self.inner_pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_GRACE_SECONDS)
                return
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                pass
        kill_group(self.process)

    def reap(self) -> None:
        """Collect the sandbox's init once bubblewrap has gone (it comes to us: see become_subreaper)."""
        if self.inner_pid is None:
            return
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while True:
            try:
                pid, _ = os.waitpid(self.inner_pid, os.WNOHANG)
            except ChildProcessError:
                # not ours (no subreaper) or already collected
                return
            if pid or time.monotonic() > deadline:
                return
            time.sleep(0.001)


def become_subreaper() -> bool:
    """Adopt orphaned descendants instead of the host's init.

    bubblewrap's outer process exits before the sandbox's init is collected; orphaned to the
    host's init, that zombie lingers for seconds and counts against the next run of the slot.
    Adopted, it is collected by Running.reap() at once.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@dataclass
class Outcome:
    """What execute() saw, before anyone interprets it."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    duration_ms: int
    timed_out: bool = False
    output_exceeded: bool = False
    # stopped because the run's processes together used up its CPU time
    cpu_exceeded: bool = False


class _Stream:
    def __init__(self, name: str, cap: int, listener: OutputListener | None) -> None:
        self.name = name
        self.cap = cap
        self.listener = listener
        self.data = bytearray()
        self.truncated = False
        # bytes of an incomplete UTF-8 sequence held back from the listener
        self.pending = b""

    def take(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if len(chunk) > room:
            chunk = chunk[:room]
            self.truncated = True
        self.data += chunk
        if self.listener and chunk:
            text, self.pending = _decode_complete(self.pending + chunk)
            if text:
                self.listener(self.name, text)


def _decode_complete(data: bytes) -> tuple[str, bytes]:
    """Decode data, holding back a trailing incomplete UTF-8 sequence for the next chunk."""
    for cut in range(len(data), max(len(data) - 4, -1), -1):
        try:
            return data[:cut].decode("utf-8"), data[cut:]
        except UnicodeDecodeError as error:
            if error.start < cut - 4 or error.reason != "unexpected end of data":
                break
    return data.decode("utf-8", errors="replace"), b""


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group the program was started in."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def as_user(argv: list[str], user: int | None) -> list[str]:
    """argv run as uid and gid `user` with no supplementary groups (unchanged when user is None).

    setpriv drops the ids in the child. Asking Popen to do it (user=, group=) would make it fork()
    instead of vfork(): a copy of the engine's page tables, ~8 ms with the GIL held, at every start.
    """
    if user is None:
        return argv
    return [SETPRIV, f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *argv]


def spawn(launch: Launch) -> Running:
    """Start launch's command with piped standard streams, in a process group of its own."""
    process = subprocess.Popen(
        as_user(launch.argv, launch.user),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=launch.cwd,
        env=launch.env,
        pass_fds=launch.pass_fds,
        close_fds=True,
        # its own group, so the whole tree can be killed with one signal
        start_new_session=True,
    )
    try:
        inner_pid = launch.release(process)
    except BaseException as error:
        kill_group(process)
        process.wait()
        said = process.stderr.read(4096).decode(errors="replace").strip()
        for pipe in (process.stdin, process.stdout, process.stderr):
            pipe.close()
        if isinstance(error, Exception):
            raise SandboxError(f"{error}; the sandbox said: {said or 'nothing'}") from error
        raise
    return Running(process, inner_pid)


def execute(
    launch: Launch,
    stdin: bytes,
    timeout_seconds: float,
    output_bytes: int,
    on_output: OutputListener | None = None,
    over_cpu: CpuWatchdog | None = None,
) -> Outcome:
    """Start launch, drive it to its end under the wall clock and output caps, and report."""
    running = spawn(launch)
    try:
        return drive(running, stdin, timeout_seconds, output_bytes, on_output, over_cpu)
    finally:
        running.reap()


def drive(
    running: Running,
    stdin: bytes,
    timeout_seconds: float,
    output_bytes: int,
    on_output: OutputListener | None = None,
    over_cpu: CpuWatchdog | None = None,
) -> Outcome:
    """Feed a started program its stdin, collect its output under caps, and end it by the clock
    (and by its whole CPU time, when over_cpu can tell)."""
    process = running.process
    streams = {
        process.stdout: _Stream("stdout", output_bytes, on_output),
        process.stderr: _Stream("stderr", output_bytes, on_output),
    }
    timed_out = output_exceeded = cpu_exceeded = False
    try:
        started = time.monotonic()
        deadline = started + timeout_seconds
        # the most one wait may last before the CPU budget is looked at again
        tick = CPU_CHECK_SECONDS if over_cpu is not None else None
        with selectors.DefaultSelector() as selector:
            for pipe in streams:
                os.set_blocking(pipe.fileno(), False)
                selector.register(pipe, selectors.EVENT_READ)
            pending_stdin = memoryview(stdin)
            if pending_stdin:
                os.set_blocking(process.stdin.fileno(), False)
                selector.register(process.stdin, selectors.EVENT_WRITE)
            else:
                process.stdin.close()
            while _reading(selector, streams):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                if over_cpu is not None and over_cpu():
                    cpu_exceeded = True
                    break
                for key, _ in selector.select(min(remaining, tick or remaining)):
                    if key.fileobj is process.stdin:
                        pending_stdin = _feed(selector, process, pending_stdin)
                        continue
                    stream = streams[key.fileobj]
                    chunk = os.read(key.fd, READ_CHUNK)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    stream.take(chunk)
                    if stream.truncated:
                        output_exceeded = True
                if output_exceeded:
                    break
        if timed_out or output_exceeded or cpu_exceeded:
            running.stop()
            returncode = process.wait()
        else:
            # both pipes closed: the program exits now, or lingers (it closed them itself) and
            # the clock and the CPU budget still rule
            returncode, timed_out, cpu_exceeded = _wait_exit(running, deadline, tick, over_cpu)
        duration_ms = int((time.monotonic() - started) * 1000)
    finally:
        running.stop()
        for pipe in (process.stdin, process.stdout, process.stderr):
            try:
                pipe.close()
            except OSError:
                pass
        # the sandbox's init is collected by the caller (Running.reap), off the result's path
        process.wait()
    out, err = streams[process.stdout], streams[process.stderr]
    return Outcome(
        returncode=returncode,
        stdout=bytes(out.data),
        stderr=bytes(err.data),
        stdout_truncated=out.truncated,
        stderr_truncated=err.truncated,
        duration_ms=duration_ms,
        timed_out=timed_out,
        output_exceeded=output_exceeded,
        cpu_exceeded=cpu_exceeded,
    )


def _wait_exit(
    running: Running, deadline: float, tick: float | None, over_cpu: CpuWatchdog | None
) -> tuple[int, bool, bool]:
    """(returncode, timed out, over its CPU) of a program whose pipes are closed."""
    process = running.process
    # a short grace covers the instant between a pipe's end and the exit it announces
    end = deadline + 0.1
    while True:
        remaining = max(0.0, end - time.monotonic())
        try:
            return process.wait(timeout=min(remaining, tick or remaining)), False, False
        except subprocess.TimeoutExpired:
            pass
        over = over_cpu is not None and over_cpu()
        if over or time.monotonic() >= end:
            running.stop()
            return process.wait(), not over, over


def _reading(selector: selectors.BaseSelector, streams: dict[object, _Stream]) -> bool:
    return any(key.fileobj in streams for key in selector.get_map().values())


def _feed(selector: selectors.BaseSelector, process: subprocess.Popen[bytes], pending: memoryview) -> memoryview:
    """Write what the pipe takes of pending stdin; close stdin once all is written or unwanted."""
    try:
        written = os.write(process.stdin.fileno(), pending[:READ_CHUNK])
        pending = pending[written:]
    except BlockingIOError:
        return pending
    except (BrokenPipeError, OSError):
        pending = memoryview(b"")
    if not pending:
        selector.unregister(process.stdin)
        process.stdin.close()
    return pending
