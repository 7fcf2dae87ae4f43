"""A machine-wide run slot held for one test, and the processes in a slot."""
from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import pytest

from app.config import Config
from app.sandbox import Sandbox
from app.slots import SlotPool

SLOT_WAIT_SECONDS = 60


@pytest.fixture
def slot() -> Iterator[int]:
    """A machine-wide slot, used by no other engine until the test ends."""
    pool = SlotPool(Config.SLOT_LOCK_DIR, Config.RUN_SLOTS)
    deadline = time.monotonic() + SLOT_WAIT_SECONDS
    index = pool.acquire()
    while index is None and time.monotonic() < deadline:
        time.sleep(0.05)
        index = pool.acquire()
    assert index is not None, "no slot came free"
    yield index
    pool.release(index)
    pool.close()


def slot_processes(sandbox: Sandbox, slot: int) -> list[int]:
    """The pids running in the slot: its cgroup's, else its uid's."""
    group = sandbox.slot_group(slot)
    if group is not None:
        return group.pids()
    uid = sandbox.slot_user(slot)
    return [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]
