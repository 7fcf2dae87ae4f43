"""python -m bench.fork_cpu [N]: CPU per Python hello-world run, by process, at the sandbox level.

Interleaved in one loop, N of each: a run forked by the fork server, a bare `/usr/bin/python3 -c`
spawn, and (every fourth round) a cold sandbox. For each: wall time, the calling thread's own CPU
(the engine's side: Sandbox.run or subprocess.run), and the CPU of what it started (the slot's
cpuacct for a sandbox: server, run init and program; RUSAGE_CHILDREN for the bare spawn), plus the
fork server process's own share. Wall time lies on a loaded machine; CPU time much less.
Runs as root with cgroups (uses its own cgroup tree and uids, clear of engines and tests).
"""
from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time

from app.sandbox import BY_NAME, Limits, Sandbox, Settings

PYTHON = BY_NAME["python"]
HELLO = b'print("hello")'
SETTINGS = {"cgroup_name": "live-code-engine-fork-cpu", "uid_base": 1_900_000}
# after a forked run, the server prepares the next one: its CPU is the run's, read once it is done
SETTLE_SECONDS = 0.03


def _children_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def _process_cpu_ms(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _sandboxed(sandbox: Sandbox, slot: int) -> tuple[float, float, float]:
    group = sandbox.slot_group(slot)
    wall, thread, used = time.perf_counter(), time.thread_time(), group.cpu_used_ns()
    result = sandbox.run(PYTHON, HELLO, b"", Limits(), slot)
    wall, thread = time.perf_counter() - wall, time.thread_time() - thread
    time.sleep(SETTLE_SECONDS)
    if result.stdout != "hello\n":
        raise RuntimeError(f"unexpected result: {result}")
    return wall * 1000, thread * 1000, (group.cpu_used_ns() - used) / 1e6


def _bare() -> tuple[float, float, float]:
    wall, thread, children = time.perf_counter(), time.thread_time(), _children_cpu_ms()
    subprocess.run(["/usr/bin/python3", "-c", HELLO.decode()], capture_output=True, check=True)
    return (time.perf_counter() - wall) * 1000, (time.thread_time() - thread) * 1000, _children_cpu_ms() - children


def measure(count: int) -> dict[str, object]:
    forked, cold = Sandbox(Settings(fork_server=True, **SETTINGS)), Sandbox(Settings(fork_server=False, **SETTINGS))
    rows: dict[str, list[tuple[float, float, float]]] = {"fork_server": [], "bare": [], "cold": []}
    server_ms = []
    try:
        _sandboxed(forked, 0)
        for index in range(count):
            server_pid = forked.fork_servers.servers[0]._server_pid
            before = _process_cpu_ms(server_pid)
            rows["fork_server"].append(_sandboxed(forked, 0))
            server_ms.append(_process_cpu_ms(server_pid) - before)
            rows["bare"].append(_bare())
            if index % 4 == 0:
                rows["cold"].append(_sandboxed(cold, 1))
    finally:
        forked.clear_slot(0)
        cold.clear_slot(1)
        forked.close()
    medians = {
        name: {
            "n": len(values),
            "wall_ms": round(statistics.median(v[0] for v in values), 2),
            "caller_cpu_ms": round(statistics.median(v[1] for v in values), 2),
            "started_cpu_ms": round(statistics.median(v[2] for v in values), 2),
        }
        for name, values in rows.items()
    }
    # clock ticks (10 ms) per run: a mean is meaningful, a median is not
    medians["fork_server"]["server_process_cpu_ms_mean"] = round(statistics.mean(server_ms), 2)
    return {"load": round(os.getloadavg()[0], 2), **medians}


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    figures = measure(count)
    print(f"load {figures['load']}")
    print(f"{'':12} {'wall ms':>8} {'caller CPU ms':>14} {'started CPU ms':>15}")
    for name in ("fork_server", "bare", "cold"):
        row = figures[name]
        print(f"{name:12} {row['wall_ms']:8.1f} {row['caller_cpu_ms']:14.2f} {row['started_cpu_ms']:15.2f}")
    print(f"fork server process itself: {figures['fork_server']['server_process_cpu_ms_mean']:.2f} ms per run (mean)")
    bare, forked = figures["bare"], figures["fork_server"]
    print(f"fork server / bare: wall {forked['wall_ms'] / bare['wall_ms']:.2f}x, "
          f"CPU {(forked['caller_cpu_ms'] + forked['started_cpu_ms']) / (bare['caller_cpu_ms'] + bare['started_cpu_ms']):.2f}x")


if __name__ == "__main__":
    main()
