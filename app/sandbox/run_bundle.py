"""What the engine hands a fork server, and reads back, for one run: the run's bundle (a memfd of the
learner's program, files and arguments), its rlimits, the limits a server bakes in, and the status
byte its init writes. Plain functions: forkserver.py drives the server with them."""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import replace

from .isolation import NPROC_SLACK
from .limits import Limits


def read_byte(fd: int) -> int | None:
    """The one byte a status pipe holds, or None at its end without one."""
    try:
        said = os.read(fd, 1)
    except OSError:
        return None
    return said[0] if said else None


def server_key(limits: Limits) -> Limits:
    """The limits a server bakes into its runs (rlimits, tmpfs sizes): the wall clock and the
    output caps are the engine's, per run."""
    return replace(limits, timeout_seconds=0.0, output_bytes=0)


def memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def bundle_of(source: bytes, files: tuple[tuple[str, bytes], ...], args: tuple[str, ...]) -> int:
    """A memfd holding the learner's part of a run: read only by the run's own process."""
    layout = json.dumps(
        {"names": [name for name, _ in files], "sizes": [len(source), *(len(content) for _, content in files)], "args": list(args)}
    ).encode()
    fd = os.memfd_create("run", 0)
    with contextlib.ExitStack() as undo:
        undo.callback(os.close, fd)
        for part in (len(layout).to_bytes(8, "big"), layout, source, *(content for _, content in files)):
            view = memoryview(part)
            while view:
                view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
        undo.pop_all()
    return fd


def rlimits(limits: Limits, cgroup: bool, address_space: bool) -> dict[str, list[int]]:
    """The run's rlimits, as isolation.rlimit_prefix sets them for a cold start."""
    cpu = max(1, int(limits.cpu_seconds))
    values = {
        "RLIMIT_CPU": [cpu, cpu + 1],
        "RLIMIT_NPROC": [limits.processes + NPROC_SLACK if cgroup else limits.processes] * 2,
        "RLIMIT_FSIZE": [limits.file_size_bytes] * 2,
        "RLIMIT_NOFILE": [limits.open_files] * 2,
        "RLIMIT_CORE": [0, 0],
    }
    if address_space and not cgroup:
        values["RLIMIT_AS"] = [limits.memory_bytes] * 2
    return values

