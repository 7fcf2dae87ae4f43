"""Languages as data: how each is run, which file its source gets, how to read its version."""
from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Language:
    name: str
    # the source is written to this name inside the working directory
    source_file: str
    # argv that runs the program, {source} is replaced by source_file
    run: tuple[str, ...]
    # argv that prints the toolchain version, and the pattern that finds it
    version_command: tuple[str, ...]
    version_pattern: str = r"(\d+\.\d+(?:\.\d+)?)"
    # extra read-only host paths the toolchain needs inside the sandbox
    extra_binds: tuple[str, ...] = ()
    # environment the program sees, beyond the sandbox's own minimal one
    env: tuple[tuple[str, str], ...] = ()
    # what the runtime writes to stderr when it runs out of memory (rlimit mode only)
    memory_error_markers: tuple[str, ...] = ()
    # per-language changes to the configured default limits
    limit_overrides: dict[str, float | int] = field(default_factory=dict)
    # a program that prints OK, for the smoke test
    smoke_program: str = ""

    def run_argv(self) -> list[str]:
        return [part.format(source=self.source_file) for part in self.run]

    @property
    def executable(self) -> str:
        return self.run[0]

    def is_installed(self) -> bool:
        return shutil.which(self.executable) is not None

    def version(self) -> str | None:
        return _read_version(self.version_command, self.version_pattern)


@functools.cache
def _read_version(command: tuple[str, ...], pattern: str) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else None


PYTHON = Language(
    name="python",
    source_file="main.py",
    # Debian's interpreter under /usr: fast to start and visible in the read-only sandbox;
    # -I keeps PYTHON* variables and the user site out of the learner's program
    run=("/usr/bin/python3", "-I", "{source}"),
    version_command=("/usr/bin/python3", "--version"),
    env=(("PYTHONUNBUFFERED", "1"), ("PYTHONDONTWRITEBYTECODE", "1")),
    memory_error_markers=("MemoryError",),
    smoke_program='print("OK")',
)

ALL: tuple[Language, ...] = (PYTHON,)
BY_NAME: dict[str, Language] = {language.name: language for language in ALL}


def installed() -> list[Language]:
    """The languages whose toolchain is present on this machine."""
    return [language for language in ALL if language.is_installed()]
