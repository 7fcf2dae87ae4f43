"""The host's view of a slot's processes: by uid, and a process's children, read from /proc."""
from __future__ import annotations

import contextlib
import os


def pids_of_user(uid: int) -> list[int]:
    """Processes whose /proc entry belongs to uid (zombies included): a stat per process, no reads."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
    return found


def children_of(pid: int | None) -> list[int]:
    """pid's children (of every thread of it), or [] once it is gone."""
    if pid is None:
        return []
    found = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as children:
                found.extend(int(child) for child in children.read().split())
    return found
