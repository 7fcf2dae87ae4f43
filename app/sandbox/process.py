"""Run one prepared command: feed stdin, read both streams under caps, enforce the wall clock."""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

READ_CHUNK = 64 * 1024

# called with ("stdout" | "stderr", text) as output arrives, for live feedback
OutputListener = Callable[[str, str], None]


@dataclass
class Launch:
    """Everything needed to start a program; built by an isolation, run by execute()."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    user: int | None = None
    pass_fds: tuple[int, ...] = ()
    # runs once the process exists and before the program may start (cgroup moves, unblocking)
    release: Callable[[subprocess.Popen[bytes]], None] = lambda process: None


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
    extra: dict[str, object] = field(default_factory=dict)


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


def execute(
    launch: Launch,
    stdin: bytes,
    timeout_seconds: float,
    output_bytes: int,
    on_output: OutputListener | None = None,
) -> Outcome:
    """Start launch, drive it to its end under the wall clock and output caps, and report."""
    process = subprocess.Popen(
        launch.argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=launch.cwd,
        env=launch.env,
        user=launch.user,
        group=launch.user,
        extra_groups=[] if launch.user is not None else None,
        pass_fds=launch.pass_fds,
        close_fds=True,
        # its own group, so the whole tree can be killed with one signal
        start_new_session=True,
    )
    streams = {
        process.stdout: _Stream("stdout", output_bytes, on_output),
        process.stderr: _Stream("stderr", output_bytes, on_output),
    }
    timed_out = output_exceeded = False
    try:
        launch.release(process)
        started = time.monotonic()
        deadline = started + timeout_seconds
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
                for key, _ in selector.select(remaining):
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
        if timed_out or output_exceeded:
            kill_group(process)
        try:
            # a short grace covers the instant between a pipe's end and the exit it announces
            returncode = process.wait(timeout=max(0.0, deadline - time.monotonic()) + 0.1)
        except subprocess.TimeoutExpired:
            # both pipes closed but the program lingers (it closed them itself): the clock still rules
            timed_out = True
            kill_group(process)
            returncode = process.wait()
        duration_ms = int((time.monotonic() - started) * 1000)
    finally:
        kill_group(process)
        for pipe in (process.stdin, process.stdout, process.stderr):
            try:
                pipe.close()
            except OSError:
                pass
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
    )


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
