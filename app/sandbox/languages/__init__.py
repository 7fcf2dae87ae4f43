"""Languages as data: how each is run, which file its source gets, how to read its version.

One small module per family (scripting, native, managed, data) holds the entries; this module
holds what an entry is and the registry.
"""
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
    # argv that runs the program; {source} is the source file, {build} the compiled artifacts'
    # directory and {heap_mb} three quarters of the memory limit in MiB (for runtimes with a heap flag)
    run: tuple[str, ...]
    # argv that prints the toolchain version, and the pattern that finds it
    version_command: tuple[str, ...]
    version_pattern: str = r"(\d+\.\d+(?:\.\d+)?)"
    # argv that runs each case of a graded run when the slot has a memory cgroup, if it differs from
    # `run`: node without its heap flag (any heap size flag costs node 4-6 ms of CPU at every start,
    # 15%, paid per case; under a cgroup the kernel's OOM kill, counted per case, says MEMORY_LIMIT)
    graded_run: tuple[str, ...] | None = None
    # argv of a warm sandbox: starts the runtime with a bootstrap that reads the program from
    # {control_fd} and then runs it exactly as `run` would; None when the language has none
    warm: tuple[str, ...] | None = None
    # argv that compiles {source} (or {sources}: every source file of the program) into {build};
    # None for interpreted languages
    compile: tuple[str, ...] | None = None
    # False for runtimes that reserve far more address space than they use (V8, the JVM):
    # RLIMIT_AS would kill them at start, so their memory is held by cgroup or heap flag instead
    address_space_limit: bool = True
    # extra read-only host paths the toolchain needs inside the sandbox
    extra_binds: tuple[str, ...] = ()
    # environment the program sees, beyond the sandbox's own minimal one
    env: tuple[tuple[str, str], ...] = ()
    # environment of the run step only (not the compiler's), and what interactive runs add to it
    run_env: tuple[tuple[str, str], ...] = ()
    interactive_env: tuple[tuple[str, str], ...] = ()
    # what the runtime writes to stderr when it runs out of memory (rlimit mode only)
    memory_error_markers: tuple[str, ...] = ()
    # what the language needs more of than the configured defaults (run, then compile step)
    limit_overrides: dict[str, float | int] = field(default_factory=dict)
    compile_limit_overrides: dict[str, float | int] = field(default_factory=dict)
    # a program that prints OK, for the smoke test
    smoke_program: str = ""
    # what people call it, for pickers: {version}, {major} and {minor} come from the toolchain
    display_name: str = ""
    # the editor's starting code: a hello world
    template: str = ""
    # file names a compile step takes as sources ({sources}: the entry file first, then the
    # program's other files with one of these endings); interpreters find their siblings themselves
    source_suffixes: tuple[str, ...] = ()
    # files the host writes into the build directory before compiling: (name, text)
    build_files: tuple[tuple[str, str], ...] = ()
    # False when the runtime has no use for command-line arguments (SQL run by sqlite3)
    takes_args: bool = True

    @property
    def extension(self) -> str:
        return self.source_file.rsplit(".", 1)[-1]

    def run_argv(self, build: str, memory_bytes: int, args: tuple[str, ...] = ()) -> list[str]:
        return _expand(self.run, self.source_file, build, memory_bytes) + (list(args) if self.takes_args else [])

    def graded_run_argv(self, build: str, memory_bytes: int, cgroup: bool) -> list[str]:
        """The argv of a graded run's case (it takes no arguments)."""
        if cgroup and self.graded_run is not None:
            return _expand(self.graded_run, self.source_file, build, memory_bytes)
        return _expand(self.run, self.source_file, build, memory_bytes)

    def compile_argv(self, build: str, memory_bytes: int, files: tuple[str, ...] = ()) -> list[str]:
        others = sorted(name for name in files if self.source_suffixes and name.endswith(self.source_suffixes))
        sources = [self.source_file, *others]
        return _expand(self.compile or (), self.source_file, build, memory_bytes, sources=sources)

    def warm_argv(self, memory_bytes: int, control_fd: int) -> list[str]:
        return _expand(self.warm or (), self.source_file, "", memory_bytes, control_fd)

    def display(self) -> str:
        """The display name with the toolchain's version filled in ("Python 3.11")."""
        version = self.version() or ""
        parts = (version.split(".") + ["", ""])[:2]
        return _fill(self.display_name or self.name, {"version": version, "major": parts[0], "minor": parts[1]})

    def is_installed(self) -> bool:
        # the compiler and the runtime (a compiled program's own binary is no tool to look for)
        tools = [argv[0] for argv in (self.compile, self.run) if argv and "{" not in argv[0]]
        return all(shutil.which(tool) is not None for tool in tools)

    def version(self) -> str | None:
        return _read_version(self.version_command, self.version_pattern)


def _expand(
    argv: tuple[str, ...],
    source: str,
    build: str,
    memory_bytes: int,
    control_fd: int = -1,
    sources: list[str] | None = None,
) -> list[str]:
    heap_mb = max(16, memory_bytes * 3 // 4 // (1024 * 1024))
    values = {"source": source, "build": build, "heap_mb": heap_mb, "control_fd": control_fd}
    expanded: list[str] = []
    for part in argv:
        # {sources} stands alone and becomes one argument per source file
        if part == "{sources}":
            expanded += sources or [source]
        else:
            expanded.append(_fill(part, values))
    return expanded


def _fill(part: str, values: dict[str, object]) -> str:
    # not str.format: bootstraps are code with braces of their own
    for name, value in values.items():
        part = part.replace("{" + name + "}", str(value))
    return part


@functools.cache
def _read_version(command: tuple[str, ...], pattern: str) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else None


# the families import Language from here: imported last, and re-exported for the callers
from .data import SQL  # noqa: E402
from .managed import CSHARP, JAVA  # noqa: E402
from .native import CPP, GO, RUST, C  # noqa: E402
from .scripting import BASH, JAVASCRIPT, PHP, PYTHON, RUBY, TYPESCRIPT  # noqa: E402

ALL: tuple[Language, ...] = (
    PYTHON, JAVASCRIPT, CPP, JAVA, C, GO, RUST, TYPESCRIPT, RUBY, PHP, CSHARP, BASH, SQL,
)
BY_NAME: dict[str, Language] = {language.name: language for language in ALL}


def installed() -> list[Language]:
    """The languages whose toolchain is present on this machine."""
    return [language for language in ALL if language.is_installed()]
