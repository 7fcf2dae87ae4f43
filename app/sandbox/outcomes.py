"""What a run's end means: its exit, output and counters read as a Result with the reason it stopped."""
from __future__ import annotations

import logging
import signal

from . import limits as reasons
from .cgroups import Counters, SlotGroup
from .languages import Language
from .limits import Limits, Result
from .process import CpuWatchdog, Outcome

log = logging.getLogger(__name__)

DISK_FULL_MARKERS = ("No space left on device", "ENOSPC")
# what runtimes say when a new process or thread is refused (rlimit mode has no cgroup counter)
PROCESS_LIMIT_MARKERS = ("can't start new thread", "Resource temporarily unavailable", "EAGAIN", "unable to create native thread")
FILE_TOO_LARGE_MARKERS = ("File too large", "EFBIG")


def cpu_watchdog(group: SlotGroup | None, limits: Limits) -> CpuWatchdog | None:
    """True once the slot's processes together used limits.cpu_seconds since now; None without cpuacct."""
    start_ns = group.cpu_used_ns() if group is not None and group.counts_cpu else None
    if start_ns is None:
        return None
    budget_ns = limits.cpu_seconds * 1_000_000_000

    def over_cpu() -> bool:
        used_ns = group.cpu_used_ns()
        # a reading that fails says nothing: RLIMIT_CPU and the wall clock still hold the run
        if used_ns is None or used_ns - start_ns <= budget_ns:
            return False
        log.info("run in %s stopped: %.2f s of CPU, over its %s s", group.cpuacct_dir, (used_ns - start_ns) / 1e9, limits.cpu_seconds)
        return True

    return over_cpu



def result_of(language: Language, outcome: Outcome, before: Counters, group: SlotGroup | None) -> Result:
    """Interpret what a run did: its exit, its output, and the limits it hit."""
    after = group.counters() if group else Counters(0, 0)
    stderr = outcome.stderr.decode("utf-8", errors="replace")
    returncode = outcome.returncode
    if returncode is not None and returncode < 0:
        # a signal, told the way a shell and bubblewrap tell it
        returncode = 128 - returncode
    reason = outcome.stopped_by or why_it_stopped(language, returncode, stderr, outcome, before, after)
    return Result(
        exit_code=returncode,
        stdout=outcome.stdout.decode("utf-8", errors="replace"),
        stderr=stderr,
        stdout_truncated=outcome.stdout_truncated,
        stderr_truncated=outcome.stderr_truncated,
        duration_ms=outcome.duration_ms,
        reason=reason,
    )


def why_it_stopped(
    language: Language,
    returncode: int | None,
    stderr: str,
    outcome: Outcome,
    before: Counters,
    after: Counters,
) -> str | None:
    if outcome.cpu_exceeded:
        return reasons.CPU_TIME_LIMIT
    if outcome.timed_out:
        return reasons.TIMEOUT
    if outcome.output_exceeded:
        return reasons.OUTPUT_LIMIT
    if after.oom_kills > before.oom_kills:
        return reasons.MEMORY_LIMIT
    if returncode == 128 + signal.SIGXCPU:
        return reasons.CPU_TIME_LIMIT
    if returncode == 0:
        return None
    tail = stderr[-2000:]
    if any(marker in tail for marker in language.memory_error_markers):
        return reasons.MEMORY_LIMIT
    if returncode == 128 + signal.SIGXFSZ or any(marker in tail for marker in FILE_TOO_LARGE_MARKERS):
        return reasons.FILE_SIZE_LIMIT
    if any(marker in tail for marker in DISK_FULL_MARKERS):
        return reasons.DISK_LIMIT
    if after.pids_max_hits > before.pids_max_hits or any(marker in tail for marker in PROCESS_LIMIT_MARKERS):
        return reasons.PROCESS_LIMIT
    # 128+N for signal N; PHP's fatal errors exit 255, which is no signal
    if returncode is not None and 128 < returncode <= 128 + signal.SIGRTMAX:
        return reasons.SIGNAL
    return reasons.NONZERO_EXIT

