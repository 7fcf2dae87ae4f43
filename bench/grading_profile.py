"""Where a graded run's time goes inside the engine: the sandbox start, each phase of a case, the end.

Runs the grading supervisor directly (no HTTP, no database) on 50 a+b cases, in a cgroup tree and a
slot of its own, and prints the median of each phase from CLOCK_MONOTONIC marks taken by the engine
and by the supervisor (one clock: the sandbox has no time namespace). The HTTP side (POST, queue,
final write, long-poll wake-up) is in bench/grading.py's "phases".

    .venv/bin/python -m bench.grading_profile [python cpp java javascript] [--rounds N]
"""
from __future__ import annotations

import argparse
import statistics
import time

from app.grading import checkers
from app.sandbox import Sandbox, Settings
from app.sandbox.grading import Supervisor
from app.sandbox.languages import BY_NAME
from app.sandbox.limits import Limits

from .grading import PROGRAMS, cases

# a cgroup tree and a slot no engine of this machine uses
CGROUP = "lce-grading-profile"
SLOT = 47
# (label, from mark, to mark) of one case, in order
CASE_PHASES = (
    ("engine: memfd, pipes, counters, send", "begun", "sending"),
    ("control socket to the supervisor", "sending", "received"),
    ("supervisor: hand the case its streams", "received", "handed"),
    ("the case's process (to reaped)", "handed", "reaped"),
    ("supervisor: sweep, wipe, IPC", "reaped", "cleaned"),
    ("report to the engine", "cleaned", "reported"),
    ("engine: drain output", "reported", "collected"),
    ("engine: counters, outcome", "collected", "done"),
)


def throttled_ns(group: object) -> int | None:
    """How long the group's processes were throttled by its CPU cap so far (cgroup v1 or v2), in ns."""
    directory = getattr(group, "cpu_dir", None)
    if directory is None:
        return None
    try:
        fields = dict(line.split() for line in (directory / "cpu.stat").read_text().splitlines())
    except (OSError, ValueError):
        return None
    if "throttled_time" in fields:
        return int(fields["throttled_time"])
    if "throttled_usec" in fields:
        return int(fields["throttled_usec"]) * 1000
    return None


def profile(language_name: str, rounds: int, isolation: str = "bubblewrap", syscall_filter: bool = True) -> None:
    language = BY_NAME[language_name]
    program = PROGRAMS[language_name]
    sandbox = Sandbox(Settings(cgroup_name=CGROUP, isolation=isolation, syscall_filter=syscall_filter))
    limits = Limits().raised(language.limit_overrides).with_overrides(timeout_seconds=120.0, cpu_seconds=121)
    source = program.source.encode()
    build_dir = None
    artifact = None
    if language.compile:
        artifact, _, failure = sandbox.compiled(language, source, SLOT)
        assert failure is None, failure
        build_dir = artifact.path
    inputs = cases()
    starts, ends, totals = [], [], []
    start_phases: dict[str, list[float]] = {
        "clear the slot, set its limits": [], "bubblewrap launched, in the cgroup": [], "sandbox made, interpreter started": [],
        "supervisor's imports": [], "supervisor set up": [], "ready message to the engine": [],
    }
    phases: dict[str, list[float]] = {label: [] for label, _, _ in CASE_PHASES}
    # from one case's end to the next one's (cases overlap the engine's judging), and all 50 cases
    between: list[float] = []
    all_cases: list[float] = []
    # CPU time of the 50 cases: the slot's cgroup (supervisor and cases) and this engine thread
    sandbox_cpu: list[float] = []
    # time the slot's processes were held back by its CPU cap (one core by default)
    throttled: list[float] = []
    engine_cpu: list[float] = []
    case_cpu: list[float] = []
    # minor faults of the case's process: pages it copied after the fork (Python) or mapped
    case_faults: list[float] = []
    supervisor_cpu: list[float] = []
    supervisor_faults: list[float] = []
    try:
        for _ in range(rounds):
            began = time.monotonic()
            supervisor = Supervisor(sandbox, language, limits, SLOT, source, build_dir)
            starts.append(supervisor.ready_at - began)
            start_phases["clear the slot, set its limits"].append(supervisor.start_marks["slot_ready"] - began)
            start_phases["bubblewrap launched, in the cgroup"].append(supervisor.start_marks["spawned"] - supervisor.start_marks["slot_ready"])
            marks = supervisor.start_marks
            start_phases["sandbox made, interpreter started"].append(marks["begun"] - marks["spawned"])
            start_phases["supervisor's imports"].append(marks["imported"] - marks["begun"])
            start_phases["supervisor set up"].append(marks["ready"] - marks["imported"])
            start_phases["ready message to the engine"].append(supervisor.ready_at - marks["ready"])
            group = sandbox.slot_group(SLOT)
            cpu_before = group.cpu_used_ns() if group else None
            throttled_before = throttled_ns(group)
            thread_before = time.thread_time()
            previous: dict[str, float] = {}
            # as the grader does it: the next case goes to the supervisor before this one is judged
            first_sent = time.monotonic()
            sent = supervisor.send(0, inputs[0]["stdin"].encode(), 5.0, 5, 65536)
            for index, case in enumerate(inputs):
                outcome = supervisor.collect(sent)
                marks = supervisor.last_marks
                if index + 1 < len(inputs):
                    sent = supervisor.send(index + 1, inputs[index + 1]["stdin"].encode(), 5.0, 5, 65536)
                assert outcome.stdout.decode() == case["expected_output"], (outcome, case)
                judged = checkers.tokens.check(case["expected_output"], outcome.stdout.decode(), {})
                assert judged.passed, (outcome, case)
                for label, first, last in CASE_PHASES:
                    phases[label].append(marks[last] - marks[first])
                if "done" in previous:
                    between.append(marks["done"] - previous["done"])
                case_cpu.append(marks["case_cpu"])
                case_faults.append(marks.get("case_faults", 0) / 1000)
                if "supervisor_cpu" in previous:
                    # the supervisor and, for Python, the zygote the cases are forked from
                    supervisor_cpu.append(
                        marks["supervisor_cpu"] - previous["supervisor_cpu"] + marks.get("zygote_cpu", 0) - previous.get("zygote_cpu", 0)
                    )
                    supervisor_faults.append((marks.get("supervisor_faults", 0) - previous.get("supervisor_faults", 0)) / 1000)
                previous = marks
            all_cases.append(time.monotonic() - first_sent)
            engine_cpu.append((time.thread_time() - thread_before) / len(inputs))
            if cpu_before is not None:
                sandbox_cpu.append((group.cpu_used_ns() - cpu_before) / 1e9 / len(inputs))
            if throttled_before is not None:
                throttled.append((throttled_ns(group) - throttled_before) / 1e9 / len(inputs))
            closing = time.monotonic()
            supervisor.close()
            ends.append(time.monotonic() - closing)
            totals.append(time.monotonic() - began)
    finally:
        if artifact is not None:
            artifact.release()
        sandbox.close()

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:7.2f}"

    print(f"\n{language_name} ({isolation}, filter {syscall_filter}): {rounds} rounds of {len(inputs)} cases, medians in ms")
    print(f"  sandbox + supervisor start          {ms(starts)}")
    for label, values in start_phases.items():
        print(f"    start: {label:<36} {ms(values)}")
    for label, _, _ in CASE_PHASES:
        print(f"  per case: {label:<36} {ms(phases[label])}")
    print(f"  per case, one case's end to the next's {ms(between)}")
    print(f"  all {len(inputs)} cases, first sent to last collected {ms(all_cases)}")
    print(f"  per case, CPU of the sandbox        {ms(sandbox_cpu) if sandbox_cpu else '    n/a'}")
    print(f"  per case, held back by the CPU cap  {ms(throttled) if throttled else '    n/a'}")
    print(f"  per case, CPU of the case's process {ms(case_cpu)}")
    print(f"  per case, faults of the case's process {ms(case_faults)}")
    print(f"  per case, CPU of the supervisor     {ms(supervisor_cpu)}")
    print(f"  per case, faults of the supervisor  {ms(supervisor_faults)}")
    print(f"  per case, CPU of the engine thread  {ms(engine_cpu)}")
    print(f"  close (end the sandbox, clear slot) {ms(ends)}")
    print(f"  total                               {ms(totals)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("languages", nargs="*", default=["python", "cpp"])
    parser.add_argument("--rounds", type=int, default=5)
    # to compare: no namespaces ("none"), or no seccomp filter
    parser.add_argument("--isolation", default="bubblewrap")
    parser.add_argument("--no-filter", action="store_true")
    args = parser.parse_args()
    with open("/proc/loadavg") as load:
        print("load average:", " ".join(load.read().split()[:3]))
    for name in args.languages:
        profile(name, args.rounds, args.isolation, not args.no_filter)


if __name__ == "__main__":
    main()
