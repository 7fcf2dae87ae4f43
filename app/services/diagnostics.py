"""Diagnostics before running: the language's linter, run in a sandbox slot of the diagnostics' own range.

ruff and oxlint answer from a pre-started sandbox when one is ready (app/sandbox/lint_pool.py), the
compilers and a program with other files from a sandbox started for the check (cold).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from flask import current_app

from .. import catalog
from ..sandbox import Language, Limits
from ..sandbox.lint_pool import LintPool
from ..sandbox.linters import BUSY, UNAVAILABLE, Linter, LintResult, lint, linters
from ..slots import DIAGNOSTICS_SLOT_FIRST, SlotPool
from . import programs
from .executions import check_size, engine

SLOT_POLL_SECONDS = 0.005


@dataclass
class Checker:
    """This process's linters and the slots they may run in."""

    linters: dict[str, Linter]
    slots: SlotPool
    cleared: set[int] = field(default_factory=set)
    # pre-started sandboxes of the linters that can wait for their input; None when turned off
    pool: LintPool | None = None

    def close(self) -> None:
        """End the pre-started sandboxes and let go of every slot file (at the engine's shutdown)."""
        if self.pool is not None:
            self.pool.shutdown()
        self.slots.close()


_lock = threading.Lock()


def checker() -> Checker:
    """The app's Checker, made on first use (an app that never lints takes no slot files)."""
    extensions = current_app.extensions
    with _lock:
        if "diagnostics" not in extensions:
            config = current_app.config
            parts = Checker(
                linters(config["DIAGNOSTICS_RUFF_PATH"], config["DIAGNOSTICS_OXLINT_PATH"]),
                SlotPool(config["SLOT_LOCK_DIR"], int(config["DIAGNOSTICS_SLOTS"]), first=DIAGNOSTICS_SLOT_FIRST),
            )
            parts.pool = _start_pool(parts.linters)
            extensions["diagnostics"] = parts
        return extensions["diagnostics"]


def _start_pool(found: dict[str, Linter]) -> LintPool | None:
    """The pre-started linter sandboxes, filling from now on; None when turned off or not possible here."""
    config = current_app.config
    per_language = int(config["DIAGNOSTICS_WARM_SANDBOXES"])
    sandbox = engine().sandbox
    if per_language <= 0 or not sandbox.available:
        return None
    # their own range, right after the cold checks' (app.slots.check_ranges counts both)
    first = DIAGNOSTICS_SLOT_FIRST + int(config["DIAGNOSTICS_SLOTS"])
    slots = SlotPool(config["SLOT_LOCK_DIR"], int(config["DIAGNOSTICS_WARM_SLOTS"]), first=first)
    pool = LintPool(sandbox, slots, found, per_language, float(config["DIAGNOSTICS_WARM_IDLE_SECONDS"]))
    if not pool.linters:
        pool.slots.close()
        return None
    pool.start()
    return pool


def describe() -> dict[str, object]:
    """The pre-started linter sandboxes, for /health: started with the first check of this process."""
    config = current_app.config
    enabled = int(config["DIAGNOSTICS_WARM_SANDBOXES"]) > 0
    parts = current_app.extensions.get("diagnostics")
    pool = parts.pool if parts is not None else None
    return {
        "enabled": enabled,
        "started": pool is not None,
        "cold_slots_machine_wide": int(config["DIAGNOSTICS_SLOTS"]),
        "warm": pool.describe() if pool is not None else None,
    }


def check(language_name: str, source_code: str, files: dict[str, str] | None = None) -> LintResult:
    """The diagnostics of source_code, with the program's other files beside it; an unknown language
    is a 422, a tool that cannot answer an empty list with a status."""
    language = catalog.language_named(language_name)
    check_size("source_code", source_code, "DIAGNOSTICS_SOURCE_MAX_BYTES")
    others = {name: content.encode() for name, content in programs.check_files(files, language).items()}
    parts = checker()
    linter = parts.linters.get(language.name)
    sandbox = engine().sandbox
    if linter is None or not sandbox.available:
        return LintResult([], UNAVAILABLE, linter.tool if linter else None, 0)
    # a pre-started sandbox holds the code alone: with other files beside it, the check starts cold
    wait = float(current_app.config["DIAGNOSTICS_WARM_WAIT_SECONDS"])
    ready = parts.pool.take(language.name, wait) if parts.pool is not None and not others else None
    if ready is not None:
        pool = parts.pool
        try:
            return lint(lambda command, source, stdin, limits: pool.run(ready, source), linter, source_code, linter.warm_parse())
        finally:
            # ended and replaced by the pool's thread, off this answer's path
            pool.finished(ready)
    slot = _acquire(parts.slots, float(current_app.config["DIAGNOSTICS_SLOT_WAIT_SECONDS"]))
    if slot is None:
        return LintResult([], BUSY, linter.tool, 0)
    try:
        if slot not in parts.cleared:
            # whatever a dead engine left in this slot goes before the first check in it
            sandbox.clear_slot(slot)
            parts.cleared.add(slot)

        def run(command: Language, source: bytes, stdin: bytes, limits: Limits):  # noqa: ANN202
            return sandbox.run(command, source, stdin, limits, slot, files=others)

        return lint(run, linter, source_code)
    finally:
        parts.slots.release(slot)


def _acquire(slots: SlotPool, wait_seconds: float) -> int | None:
    deadline = time.monotonic() + wait_seconds
    slot = slots.acquire()
    while slot is None and time.monotonic() < deadline:
        time.sleep(SLOT_POLL_SECONDS)
        slot = slots.acquire()
    return slot


