"""What a run may use (Limits) and what it did (Result): passive values, no behaviour."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Limits:
    # wall clock: the learner's infinite loop ends here, sleeping or not
    timeout_seconds: float = 5.0
    # CPU time: a busy program that forks around the wall clock still stops
    cpu_seconds: int = 5
    # memory of the whole run (cgroup when available, else address space per process)
    memory_bytes: int = 256 * 1024 * 1024
    # processes and threads of the run together: a fork bomb stops here
    processes: int = 64
    # per stream, stdout and stderr each: past it the run is stopped
    output_bytes: int = 100 * 1024
    # one file the program writes
    file_size_bytes: int = 16 * 1024 * 1024
    # the private working directory and /tmp, each a tmpfs of this size
    disk_bytes: int = 32 * 1024 * 1024
    # open file descriptors per process
    open_files: int = 256

    def with_overrides(self, **changes: float | int | None) -> Limits:
        """This limits with the non-None values of changes applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def raised(self, minimums: dict[str, float | int]) -> Limits:
        """This limits with each named one raised to at least the given minimum."""
        return replace(self, **{k: max(v, getattr(self, k)) for k, v in minimums.items()})

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


# why a run stopped, in words; None when it exited 0 by itself
TIMEOUT = "timeout"
CPU_TIME_LIMIT = "cpu_time_limit"
MEMORY_LIMIT = "memory_limit"
PROCESS_LIMIT = "process_limit"
OUTPUT_LIMIT = "output_limit"
FILE_SIZE_LIMIT = "file_size_limit"
DISK_LIMIT = "disk_limit"
NONZERO_EXIT = "nonzero_exit"
SIGNAL = "signal"
COMPILE_ERROR = "compile_error"
SANDBOX_ERROR = "sandbox_error"
# stopped on request (POST /executions/{id}/cancel)
CANCELLED = "cancelled"
# the engine stopped it: its process went away (reaped by another), or it shut down under an interactive run
INTERRUPTED = "interrupted"
# an interactive run waited for input this long with none coming
INPUT_IDLE_LIMIT = "input_idle_limit"
# an interactive run reached its whole-length limit (waiting for input included)
INTERACTIVE_TIME_LIMIT = "interactive_time_limit"

TIME_REASONS = frozenset({TIMEOUT, CPU_TIME_LIMIT, INPUT_IDLE_LIMIT, INTERACTIVE_TIME_LIMIT})


@dataclass(frozen=True)
class Result:
    exit_code: int | None
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    duration_ms: int
    reason: str | None = None
    compile_ms: int | None = None

    @property
    def timed_out(self) -> bool:
        return self.reason in TIME_REASONS
