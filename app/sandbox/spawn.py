"""Start a confined command: the process we spawn, its sandbox's init, and how to stop and collect them."""
from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

PR_SET_CHILD_SUBREAPER = 36
# how long bubblewrap gets to notice its sandbox died and exit by itself
STOP_GRACE_SECONDS = 1.0
# util-linux, like prlimit
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"


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
            if self.collect_inner() or time.monotonic() > deadline:
                return
            time.sleep(0.001)

    def collect_inner(self) -> bool:
        """Collect the sandbox's init if it has ended, without waiting; True once it is collected.

        Its pid is forgotten then: the number may soon be another child's of this process, and a
        later wait on it would take that child's exit status."""
        if self.inner_pid is None:
            return True
        try:
            pid, _ = os.waitpid(self.inner_pid, os.WNOHANG)
        except ChildProcessError:
            # not ours (no subreaper) or already collected
            pid = self.inner_pid
        if pid:
            self.inner_pid = None
        return bool(pid)



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


def readable_any(fds: list[int], timeout: float | None) -> int | None:
    """The first of fds (in their order) with something to read (or its end), or None after timeout seconds."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    while True:
        try:
            ready = {fd for fd, _ in poller.poll(None if timeout is None else max(0, int(timeout * 1000)))}
        except InterruptedError:
            continue
        return next((fd for fd in fds if fd in ready), None)


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

