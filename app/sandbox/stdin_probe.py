"""Is a program blocked reading its stdin? Read from the kernel's view of its threads, not guessed from output.

A thread blocked in read(2) on the stdin pipe says so in /proc/<pid>/task/<tid>/syscall (the
syscall number and its first argument, the fd). Event-loop runtimes (Node's libuv) never block
in read: their thread sleeps in epoll_wait(2) with the stdin pipe in the epoll set, which
/proc/<pid>/fdinfo/<epoll fd> lists ("tfd: 0 ... ino: <the pipe's inode>"). Either, with the
pipe empty, is a program waiting for input. Reading another uid's syscall file needs the ptrace
permission the engine has as root; without it the probe answers False (no stdin_wanted event).
"""
from __future__ import annotations

import array
import fcntl
import os
import platform
import termios

# syscall numbers by machine: reads of one fd, and epoll waits (first argument: the fd)
_READS = {"x86_64": {0, 17, 19, 295}, "aarch64": {63, 65, 67, 69}}
_EPOLL_WAITS = {"x86_64": {232, 281, 441}, "aarch64": {22, 441}}
MACHINE = platform.machine()
READS = _READS.get(MACHINE, set())
EPOLL_WAITS = _EPOLL_WAITS.get(MACHINE, set())
# a runaway program cannot make one probe walk forever
MAX_PROCESSES = 256


def pipe_buffered(fd: int) -> int:
    """Bytes written to the pipe and not yet read (FIONREAD works on either end of a pipe)."""
    count = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, count)
    except OSError:
        return 0
    return count[0]


def waiting_for_stdin(root_pid: int, pipe_fd: int) -> bool:
    """True when a process under root_pid is blocked reading the pipe whose write end is pipe_fd, and it is empty."""
    if not READS or pipe_buffered(pipe_fd):
        return False
    try:
        inode = os.fstat(pipe_fd).st_ino
    except OSError:
        return False
    target = f"pipe:[{inode}]"
    for pid in _tree(root_pid):
        for tid in _listdir(f"/proc/{pid}/task"):
            fields = _read(f"/proc/{pid}/task/{tid}/syscall").split()
            if len(fields) < 2 or not fields[0].isdigit():
                # "running", or unreadable
                continue
            number, first = int(fields[0]), int(fields[1], 16)
            if number in READS and _link(f"/proc/{pid}/fd/{first}") == target:
                return True
            if number in EPOLL_WAITS and _epoll_watches(pid, first, inode):
                return True
    return False


def _epoll_watches(pid: int, epoll_fd: int, inode: int) -> bool:
    wanted = f"ino:{inode:x}"
    return any(
        line.startswith("tfd:") and wanted in line.split()
        for line in _read(f"/proc/{pid}/fdinfo/{epoll_fd}").splitlines()
    )


def _tree(root_pid: int) -> list[int]:
    """root_pid and its descendants, by the kernel's children lists."""
    found, index = [root_pid], 0
    while index < len(found) and len(found) < MAX_PROCESSES:
        pid = found[index]
        index += 1
        for tid in _listdir(f"/proc/{pid}/task"):
            found.extend(int(child) for child in _read(f"/proc/{pid}/task/{tid}/children").split())
    return found


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _read(path: str) -> str:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return ""


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""
