"""Run one prepared command: feed stdin, read both streams under caps, enforce the wall clock.

Starting it is spawn.py's, the streams and clocks run_io.py's.
"""
from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import limits as reasons
from .control import Control, StopOnly
from .run_io import READ_CHUNK, Clock, OutputListener, Probe, Stdin, Stream, reading
from .spawn import Launch, Running, spawn
from .stdin_probe import waiting_for_stdin

# how often a run's whole CPU time is compared with its budget (one cgroup file read each time)
CPU_CHECK_SECONDS = 0.05

# polled while a run goes on; True when the run has used up its CPU budget (all its processes)
CpuWatchdog = Callable[[], bool]


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
        process.stdout: Stream("stdout", output_bytes, on_output),
        process.stderr: Stream("stderr", output_bytes, on_output),
    }
    interactivity = control.interactivity if control else None
    timed_out = output_exceeded = cpu_exceeded = False
    stopped_by: str | None = None
    try:
        clock = Clock(time.monotonic(), timeout_seconds, interactivity)
        # the most one wait may last before the CPU budget is looked at again
        tick = CPU_CHECK_SECONDS if over_cpu is not None else None
        with selectors.DefaultSelector() as selector:
            for pipe in streams:
                os.set_blocking(pipe.fileno(), False)
                selector.register(pipe, selectors.EVENT_READ)
            if control is not None:
                selector.register(control.wake_fd, selectors.EVENT_READ)
            feeder = Stdin(selector, process, stdin, keep_open=interactivity is not None)
            probe = Probe() if interactivity is not None else None

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
            while stopped_by is None and reading(selector, streams):
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
