"""What the syscall filter costs: per sandbox start, and per syscall of a syscall-heavy program.

python -m bench.seccomp [--runs N] prints the figures as JSON; `make bench` measures it as its
"seccomp" section. Both sides run the same way (cold, the same slot and cgroup), with and without
the filter, alternating so that the host's load falls on both alike.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from app.sandbox import BY_NAME, Limits, Sandbox, Settings

from .load import summarize

# a slot index no engine uses (engines count from 0, warm pools from 1000, overhead.py 3900)
SLOT = 3901
HELLO = 'print("hello")\n'
CALLS = 200_000
# ns per call of three syscalls: getppid has no argument rule (since Linux 5.11 the kernel's
# per-syscall cache lets it skip the filter), fcntl and socket-free read do run the filter
SYSCALL_HEAVY = """\
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <unistd.h>

template <typename Call>
static double ns_per_call(Call call, int n) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) call();
    std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    return took.count() / n;
}

int main() {
    const int n = %d;
    int zero = open("/dev/zero", O_RDONLY);
    char byte;
    double getppid_ns = ns_per_call([] { getppid(); }, n);
    double fcntl_ns = ns_per_call([zero] { fcntl(zero, F_GETFD); }, n);
    double read_ns = ns_per_call([zero, &byte] { (void)!read(zero, &byte, 1); }, n);
    std::printf("{\\"getppid_ns\\": %%.1f, \\"fcntl_ns\\": %%.1f, \\"read_ns\\": %%.1f}\\n", getppid_ns, fcntl_ns, read_ns);
}
""" % CALLS


def _sandboxes() -> dict[str, Sandbox]:
    # cold starts, both: with the fork server (on by default) the two would take turns ending each other's
    return {
        "filtered": Sandbox(Settings(cgroup_name="live-code-engine-bench", fork_server=False)),
        "unfiltered": Sandbox(Settings(cgroup_name="live-code-engine-bench", syscall_filter=False, fork_server=False)),
    }


def seccomp_cost(runs: int) -> dict[str, object]:
    """Median cold start of a Python hello and per-syscall cost, with the filter and without."""
    sandboxes = _sandboxes()
    limits = Limits()
    python, cpp = BY_NAME["python"], BY_NAME["cpp"]
    starts: dict[str, list[float]] = {name: [] for name in sandboxes}
    calls: dict[str, list[dict[str, float]]] = {name: [] for name in sandboxes}
    heavy_ms: dict[str, list[float]] = {name: [] for name in sandboxes}
    for _ in range(runs):
        for name, sandbox in sandboxes.items():
            started = time.perf_counter()
            result = sandbox.run(python, HELLO.encode(), b"", limits, SLOT)
            starts[name].append(time.perf_counter() - started)
            assert result.stdout == "hello\n", result
    if cpp.is_installed():
        for _ in range(max(3, runs // 5)):
            for name, sandbox in sandboxes.items():
                result = sandbox.run(cpp, SYSCALL_HEAVY.encode(), b"", limits, SLOT)
                assert result.exit_code == 0, result
                calls[name].append(json.loads(result.stdout))
                heavy_ms[name].append(result.duration_ms)
    figures: dict[str, object] = {
        "runs": runs,
        "calls_per_syscall": CALLS,
        "filter_bytes": len(sandboxes["filtered"].isolation.syscall_filter or b""),
    }
    for name in sandboxes:
        figures[name] = {
            "python_hello_cold_ms": summarize(starts[name]),
            "python_hello_cold_ms_min": round(min(starts[name]) * 1000, 2),
            "syscall_ns_median": {
                key: round(statistics.median(sample[key] for sample in calls[name]), 1) for key in calls[name][0]
            }
            if calls[name]
            else None,
            # the least a call took over the samples: the figure a loaded host disturbs least
            "syscall_ns_min": {key: round(min(sample[key] for sample in calls[name]), 1) for key in calls[name][0]}
            if calls[name]
            else None,
            "syscall_heavy_run_ms_median": statistics.median(heavy_ms[name]) if heavy_ms[name] else None,
        }
    figures["start_cost_ms_median"] = round(
        figures["filtered"]["python_hello_cold_ms"]["median"] - figures["unfiltered"]["python_hello_cold_ms"]["median"], 2
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.seccomp", description=__doc__)
    parser.add_argument("--runs", type=int, default=30, help="cold starts per side")
    print(json.dumps(seccomp_cost(parser.parse_args().runs), indent=2))


if __name__ == "__main__":
    main()
