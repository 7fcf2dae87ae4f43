"""Hostile programs against the memory limit: one process, and many.

Every test runs twice (tests/support/hostile.py's config): with runs forked from a fork server and cold."""
from __future__ import annotations

import psutil
import pytest
from support.client import wait_terminal
from support.hostile import assert_engine_serves, config, submit  # noqa: F401 (config is a fixture)

MEMORY_BOMB = """
chunks = []
for _ in range(512):
    chunks.append(b"\\1" * (1 << 20))
print("allocated 512 MiB")
"""


MEMORY_BOMB_SPREAD = """
import os, time
children = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        chunks = [b"\\1" * (1 << 20) for _ in range(24)]
        time.sleep(0.5)
        os._exit(0)
    children.append(pid)
print([os.waitpid(pid, 0)[1] for pid in children])
"""


@pytest.mark.parametrize("program", [MEMORY_BOMB, MEMORY_BOMB_SPREAD], ids=["one_process", "eight_processes"])
def test_allocating_past_the_memory_limit_fails_with_memory_limit(client, program):
    engine = psutil.Process()

    done = wait_terminal(client, submit(client, program))

    assert done["status"] == "FAILED", done
    assert done["error"] == "memory_limit", done
    assert "allocated" not in done["stdout"]
    assert engine.is_running() and engine.status() != psutil.STATUS_ZOMBIE
    assert_engine_serves(client)


# ---------------------------------------------------------------- secrets
