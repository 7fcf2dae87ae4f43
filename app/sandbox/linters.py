"""Linters as data, and lint(): a tool run in the sandbox like any program, its output read as diagnostics.

Linters parse untrusted code, so they run exactly where a learner's program runs: bubblewrap,
rlimits, the slot's uid and cgroup. A tool outside /usr (ruff and oxlint come from PyPI into the
virtualenv) is bound read-only at its own path. A missing tool, a crash, a timeout or output that
does not parse gives no diagnostics and a word that says why, never an exception.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from . import lint_output
from .languages import JAVA, Language
from .limits import Limits
from .lint_output import Diagnostic
from .spawn import SandboxError

log = logging.getLogger(__name__)

# why an answer has no diagnostics although the code was not checked clean
OK, UNAVAILABLE, TIMEOUT, FAILED, BUSY = "ok", "unavailable", "timeout", "failed", "busy"

# how a pre-started linter is handed its code (Linter.warm_protocol)
STDIN, LSP = "stdin", "lsp"

MIB = 1024 * 1024
LINTER_LIMITS = Limits(
    # ruff and oxlint answer a 64 KiB file in tens of ms of CPU: two seconds of it is only ever a
    # hostile input; the wall clock is longer, for a busy machine (and a first start from a cold disk)
    timeout_seconds=5.0,
    cpu_seconds=2,
    # (on a host without cgroups this is RLIMIT_AS: the language servers fit in it with one
    # malloc arena, MALLOC_ARENA_MAX below; each thread's arena would reserve 64 MiB more)
    memory_bytes=256 * MIB,
    # oxlint and ruff start a few threads
    processes=16,
    # JSON for MAX_DIAGNOSTICS and more
    output_bytes=MIB,
    disk_bytes=8 * MIB,
)
# g++ and javac: a compiler's front end on template-heavy code, and a JVM
COMPILER_LIMITS = Limits(timeout_seconds=5.0, cpu_seconds=5, memory_bytes=512 * MIB, processes=32, output_bytes=MIB, disk_bytes=32 * MIB)
JAVAC_LIMITS = Limits(timeout_seconds=10.0, cpu_seconds=10, memory_bytes=1024 * MIB, processes=128, output_bytes=MIB, disk_bytes=64 * MIB)


@dataclass(frozen=True)
class Linter:
    # the engine language it checks, and the tool's name as diagnostics give it
    language: str
    tool: str
    # how to launch the tool in the sandbox (the source is written to command.source_file)
    command: Language
    parse: Callable[[str, str, str], list[Diagnostic]]
    # a linter needs little: these hold a hostile input (a deeply nested file) to a short, small run
    limits: Limits = field(default_factory=lambda: LINTER_LIMITS)
    # what a pre-started sandbox runs (lint_pool.py), waiting for its code; None for a tool that
    # cannot wait for its input (the compilers: they are checked cold)
    warm_command: Language | None = None
    # how the code reaches it: STDIN (the tool reads stdin, answers as `parse` reads, and exits) or
    # LSP (a language server, initialized at its start, told of one document: lint_lsp.py)
    warm_protocol: str = STDIN
    # how a language server's answer reads (LSP only)
    lsp_parse: Callable[[str, str, str], list[Diagnostic]] | None = None

    def warm_parse(self) -> Callable[[str, str, str], list[Diagnostic]]:
        """How the pre-started sandbox's answer reads."""
        return self.lsp_parse if self.warm_protocol == LSP and self.lsp_parse else self.parse

    def is_installed(self) -> bool:
        return os.access(self.command.run[0], os.X_OK)


@dataclass(frozen=True)
class LintResult:
    diagnostics: list[Diagnostic]
    # ok, or why there are no diagnostics: unavailable, timeout, failed, busy
    status: str
    tool: str | None
    duration_ms: int


def tool_path(name: str, configured: str | None = None) -> str:
    """The tool's executable: the configured path, else the virtualenv's bin, else PATH."""
    if configured:
        return configured
    beside_python = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(beside_python, os.X_OK):
        return os.path.realpath(beside_python)
    found = shutil.which(name)
    return os.path.realpath(found) if found else f"/nonexistent/{name}"


def linters(ruff: str | None = None, oxlint: str | None = None) -> dict[str, Linter]:
    """The linter of each engine language, with ruff and oxlint found as tool_path() says."""
    ruff_path = tool_path("ruff", ruff)
    oxlint_path = tool_path("oxlint", oxlint)
    ruff_command = Language(
        name="ruff",
        source_file="main.py",
        # --isolated: no configuration file from anywhere; --no-cache: the sandbox's root is read-only
        run=(ruff_path, "check", "--output-format", "json", "--isolated", "--no-cache", "--exit-zero", "--quiet", "main.py"),
        version_command=(ruff_path, "--version"),
        extra_binds=(ruff_path,),
    )
    # a linter's start is most of its time: its language server starts (and builds its rules)
    # ahead, then lints the one document it is sent (lint_lsp.py). One thread where the tool
    # takes one per core by default: the sandbox's process limit counts threads
    one_thread = (("TOKIO_WORKER_THREADS", "1"), ("RAYON_NUM_THREADS", "1"), ("MALLOC_ARENA_MAX", "1"))
    ruff_warm = replace(ruff_command, run=(ruff_path, "server"), env=one_thread)
    oxlint_command = Language(
        name="oxlint",
        source_file="main.js",
        # one thread: a check of one small file gains nothing from more, and the slot's CPU is shared
        run=(oxlint_path, "--format", "json", "--threads", "1", "main.js"),
        version_command=(oxlint_path, "--version"),
        extra_binds=(oxlint_path,),
    )
    oxlint_warm = replace(oxlint_command, run=(oxlint_path, "--lsp"), env=one_thread)
    gcc_command = Language(
        name="g++-syntax",
        source_file="main.cpp",
        run=(
            "/usr/bin/g++", "-std=c++17", "-fsyntax-only", "-fdiagnostics-column-unit=byte",
            "-fno-diagnostics-show-caret", "-fdiagnostics-color=never", "-fmax-errors=50", "main.cpp",
        ),
        version_command=("/usr/bin/g++", "--version"),
    )
    javac_command = Language(
        name="javac-check",
        source_file="Main.java",
        # a full compile (javac has no syntax-only mode) into the sandbox's /tmp, thrown away after
        run=(
            "/usr/bin/javac", "-J-Xmx{heap_mb}m", "-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1",
            "-encoding", "UTF-8", "-proc:none", "-Xmaxerrs", "50", "-d", "/tmp", "Main.java",
        ),
        version_command=("/usr/bin/javac", "-version"),
        address_space_limit=False,
        extra_binds=JAVA.extra_binds,
    )
    return {
        "python": Linter(
            "python", "ruff", ruff_command, lint_output.parse_ruff,
            warm_command=ruff_warm, warm_protocol=LSP, lsp_parse=lint_output.parse_ruff_lsp,
        ),
        "javascript": Linter(
            "javascript", "oxlint", oxlint_command, lint_output.parse_oxlint,
            warm_command=oxlint_warm, warm_protocol=LSP, lsp_parse=functools.partial(lint_output.parse_lsp, tool="oxlint"),
        ),
        "cpp": Linter("cpp", "g++", gcc_command, lint_output.parse_gcc, COMPILER_LIMITS),
        "java": Linter("java", "javac", javac_command, lint_output.parse_javac, JAVAC_LIMITS),
    }


def lint(
    run: Callable[[Language, bytes, bytes, Limits], object],
    linter: Linter | None,
    source: str,
    parse: Callable[[str, str, str], list[Diagnostic]] | None = None,
) -> LintResult:
    """Check source with linter through run (a sandbox run bound to a slot, or a pre-started sandbox
    read by parse); never raises for the tool's failures."""
    started = time.monotonic()

    def answer(status: str, diagnostics: list[Diagnostic] | None = None) -> LintResult:
        tool = linter.tool if linter else None
        return LintResult(diagnostics or [], status, tool, int((time.monotonic() - started) * 1000))

    if linter is None or not linter.is_installed():
        return answer(UNAVAILABLE)
    try:
        result = run(linter.command, source.encode(), b"", linter.limits)
    except SandboxError as error:
        log.warning("%s could not start in the sandbox: %s", linter.tool, error)
        return answer(FAILED)
    if result.timed_out:
        return answer(TIMEOUT)
    # a compiler's nonzero exit is its verdict; a linter told --exit-zero fails only by crashing
    if result.reason not in (None, "nonzero_exit"):
        log.info("%s stopped: %s", linter.tool, result.reason)
        return answer(FAILED)
    try:
        diagnostics = (parse or linter.parse)(result.stdout, result.stderr, source)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        log.warning("%s output did not parse: %s", linter.tool, error)
        return answer(FAILED)
    return answer(OK, diagnostics[: lint_output.MAX_DIAGNOSTICS])
