"""Run one prepared command: feed stdin, read both streams under caps, enforce the wall clock."""
from __future__ import annotations

import contextlib
import ctypes
import os
import select
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import limits as reasons
from .control import Control, Interactivity, StopOnly
from .stdin_probe import waiting_for_stdin

READ_CHUNK = 64 * 1024
# the prompt a stdin_wanted event carries
PROMPT_MAX_BYTES = 200
PR_SET_CHILD_SUBREAPER = 36
# how long bubblewrap gets to notice its sandbox died and exit by itself
STOP_GRACE_SECONDS = 1.0
# while an interactive program may be waiting for input, how soon after it last did something
# the engine first looks (a few /proc reads), and the longest it then goes between looks
PROBE_FIRST_SECONDS = 0.005
PROBE_MAX_SECONDS = 0.25
# util-linux, like prlimit
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"

# how often a run's whole CPU time is compared with its budget (one cgroup file read each time)
CPU_CHECK_SECONDS = 0.05

# called with ("stdout" | "stderr", text) as output arrives, for live feedback; in a run with a
# control also ("stdin", text) as input reaches the program and ("stdin_wanted", the unfinished
# last line of stdout, its prompt) when the program starts waiting for input
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

    def end(self) -> None:
        """Stop the sandbox, close its standard streams, and collect its processes."""
        self.stop()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            with contextlib.suppress(OSError):
                pipe.close()
        self.process.wait()
        self.reap()

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


def readable(fd: int, timeout: float | None) -> bool:
    """True once fd has something to read (or its end), False after timeout seconds (None: no limit).

    poll(), not select(): select() refuses descriptor numbers past 1023, which a busy engine
    process (or a test run of hundreds of engines) reaches.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        try:
            return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))
        except InterruptedError:
            continue


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
    # cancelled, input_idle_limit or interactive_time_limit: the engine stopped it for that
    stopped_by: str | None = None


class _Stream:
    def __init__(self, name: str, cap: int, listener: OutputListener | None) -> None:
        self.name = name
        self.cap = cap
        self.listener = listener
        self.data = bytearray()
        self.truncated = False
        # bytes of an incomplete UTF-8 sequence held back from the listener
        self.pending = b""

    def unfinished_line(self) -> str:
        """The end of the output after its last newline (a prompt waiting for its answer), at most 200 bytes."""
        tail = bytes(self.data[-PROMPT_MAX_BYTES:])
        return tail.rpartition(b"\n")[2].decode("utf-8", errors="replace")

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
    control: Control | StopOnly | None = None,
) -> Outcome:
    """Start launch, drive it to its end under the wall clock and output caps, and report."""
    running = spawn(launch)
    try:
        return drive(running, stdin, timeout_seconds, output_bytes, on_output, over_cpu, control)
    finally:
        running.reap()


def drive(
    running: Running,
    stdin: bytes,
    timeout_seconds: float,
    output_bytes: int,
    on_output: OutputListener | None = None,
    over_cpu: CpuWatchdog | None = None,
    control: Control | StopOnly | None = None,
) -> Outcome:
    """Feed a started program its stdin, collect its output under caps, and end it by the clock
    (and by its whole CPU time, when over_cpu can tell).

    With a control, another thread may stop the program at any moment and, for an interactive
    run, send more stdin while it runs (the pipe stays open until the end of input).
    """
    process = running.process
    listener = on_output or _ignore
    streams = {
        process.stdout: _Stream("stdout", output_bytes, on_output),
        process.stderr: _Stream("stderr", output_bytes, on_output),
    }
    interactivity = control.interactivity if control else None
    timed_out = output_exceeded = cpu_exceeded = False
    stopped_by: str | None = None
    try:
        clock = _Clock(time.monotonic(), timeout_seconds, interactivity)
        # the most one wait may last before the CPU budget is looked at again
        tick = CPU_CHECK_SECONDS if over_cpu is not None else None
        with selectors.DefaultSelector() as selector:
            for pipe in streams:
                os.set_blocking(pipe.fileno(), False)
                selector.register(pipe, selectors.EVENT_READ)
            if control is not None:
                selector.register(control.wake_fd, selectors.EVENT_READ)
            feeder = _Stdin(selector, process, stdin, keep_open=interactivity is not None)
            probe = _Probe() if interactivity is not None else None

            def obey() -> str | None:
                """Take what the control holds (stdin, end of input, a stop); the stop's reason if stopped."""
                data, eof, cancelled = control.take()
                if cancelled:
                    return control.stop_reason
                if data:
                    listener("stdin", data.decode("utf-8", errors="replace"))
                    feeder.add(data)
                    clock.wait_ends(time.monotonic())
                    if probe is not None:
                        probe.activity()
                if eof:
                    feeder.end()
                return None

            # a stop or stdin that came before the program started (while it compiled, say)
            if control is not None:
                stopped_by = obey()
            while stopped_by is None and _reading(selector, streams):
                now = time.monotonic()
                ends_as, ends_at = clock.next_end(now)
                if ends_at <= now:
                    stopped_by = ends_as
                    break
                if over_cpu is not None and over_cpu():
                    cpu_exceeded = True
                    break
                probing = probe is not None and feeder.open_and_empty
                wake_at = min(ends_at, probe.next_at) if probing else ends_at
                if tick is not None:
                    wake_at = min(wake_at, now + tick)
                ready = selector.select(max(0.0, wake_at - time.monotonic()))
                if not ready and probing and probe.due(time.monotonic()):
                    # only when nothing is left to read: the prompt it carries is the latest output
                    now = time.monotonic()
                    if waiting_for_stdin(process.pid, feeder.fd):
                        if selector.select(0):
                            # it wrote (its prompt, say) just before it blocked: read that first, look again
                            probe.activity()
                        elif clock.waiting_since is None:
                            clock.wait_begins(now)
                            listener("stdin_wanted", streams[process.stdout].unfinished_line())
                    else:
                        clock.wait_ends(now)
                    probe.looked(now)
                for key, _ in ready:
                    if key.fileobj is process.stdin:
                        feeder.on_writable()
                        continue
                    if control is not None and key.fileobj == control.wake_fd:
                        stopped_by = obey()
                        if stopped_by:
                            break
                        continue
                    stream = streams[key.fileobj]
                    chunk = os.read(key.fd, READ_CHUNK)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    stream.take(chunk)
                    if probe is not None:
                        probe.activity()
                    if stream.truncated:
                        output_exceeded = True
                if output_exceeded or stopped_by:
                    break
            if stopped_by == reasons.TIMEOUT:
                stopped_by, timed_out = None, True
        if timed_out or output_exceeded or stopped_by or cpu_exceeded:
            running.stop()
            returncode = process.wait()
        else:
            # both pipes closed: the program exits now, or lingers (it closed them itself) and
            # the clock and the CPU budget still rule
            now = time.monotonic()
            returncode, timed_out, cpu_exceeded = _wait_exit(running, now + max(0.0, clock.wall_left(now)), tick, over_cpu)
        duration_ms = int(clock.active(time.monotonic()) * 1000)
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
        stopped_by=stopped_by,
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


def _ignore(stream: str, text: str) -> None:
    pass


class _Clock:
    """A run's clocks: the wall limit runs only while the program is not waiting for input;
    an interactive run also has an input-idle limit and a limit on its whole length."""

    def __init__(self, now: float, timeout_seconds: float, interactivity: Interactivity | None) -> None:
        self.started = now
        self.timeout_seconds = timeout_seconds
        self.interactivity = interactivity
        # time spent waiting for input, in waits already over
        self.paused = 0.0
        self.waiting_since: float | None = None

    def wait_begins(self, now: float) -> None:
        if self.waiting_since is None:
            self.waiting_since = now

    def wait_ends(self, now: float) -> None:
        if self.waiting_since is not None:
            self.paused += now - self.waiting_since
            self.waiting_since = None

    def active(self, now: float) -> float:
        """Seconds the program ran, not counting its waits for input."""
        waiting = now - self.waiting_since if self.waiting_since is not None else 0.0
        return now - self.started - self.paused - waiting

    def wall_left(self, now: float) -> float:
        return self.timeout_seconds - self.active(now)

    def next_end(self, now: float) -> tuple[str, float]:
        """(why, when) of the first limit that will end the run, as things stand."""
        if self.waiting_since is None:
            ends = [(reasons.TIMEOUT, self.started + self.paused + self.timeout_seconds)]
        else:
            ends = [(reasons.TIMEOUT, float("inf"))]
        if self.interactivity is not None:
            ends.append((reasons.INTERACTIVE_TIME_LIMIT, self.started + self.interactivity.total_seconds))
            if self.waiting_since is not None:
                ends.append((reasons.INPUT_IDLE_LIMIT, self.waiting_since + self.interactivity.input_idle_seconds))
        return min(ends, key=lambda end: end[1])


class _Probe:
    """When to look whether the program waits for input: soon after it did something, then less and less often."""

    def __init__(self) -> None:
        self.interval = PROBE_FIRST_SECONDS
        self.next_at = time.monotonic() + self.interval

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def looked(self, now: float) -> None:
        self.interval = min(self.interval * 2, PROBE_MAX_SECONDS)
        self.next_at = now + self.interval

    def activity(self) -> None:
        self.interval = PROBE_FIRST_SECONDS
        self.next_at = min(self.next_at, time.monotonic() + self.interval)


class _Stdin:
    """The program's stdin: written as the pipe takes it, closed at the end of input."""

    def __init__(self, selector: selectors.BaseSelector, process: subprocess.Popen[bytes], data: bytes, keep_open: bool) -> None:
        self.selector = selector
        self.pipe = process.stdin
        self.fd = self.pipe.fileno()
        self.pending = bytearray(data)
        self.closing = not keep_open
        self.closed = False
        self.registered = False
        os.set_blocking(self.fd, False)
        self._settle()

    @property
    def open_and_empty(self) -> bool:
        return not self.closed and not self.pending

    def add(self, data: bytes) -> None:
        if self.closed:
            return
        self.pending += data
        # at once, not one select() later: the learner waits for this
        self.on_writable()

    def end(self) -> None:
        self.closing = True
        self._settle()

    def on_writable(self) -> None:
        """Write what the pipe takes of the pending stdin."""
        if self.closed or not self.pending:
            return self._settle()
        try:
            written = os.write(self.fd, self.pending[:READ_CHUNK])
            del self.pending[:written]
        except BlockingIOError:
            pass
        except OSError:
            # the program closed its stdin: what it did not read is dropped
            self.pending.clear()
            self.closing = True
        self._settle()

    def _settle(self) -> None:
        if self.closed:
            return
        if self.pending and not self.registered:
            self.selector.register(self.pipe, selectors.EVENT_WRITE)
            self.registered = True
        elif not self.pending and self.registered:
            self.selector.unregister(self.pipe)
            self.registered = False
        if not self.pending and self.closing:
            self.closed = True
            self.pipe.close()


def _reading(selector: selectors.BaseSelector, streams: dict[object, _Stream]) -> bool:
    return any(key.fileobj in streams for key in selector.get_map().values())
