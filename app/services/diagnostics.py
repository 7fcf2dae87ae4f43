"""Diagnostics before running: the language's linter, run in a sandbox slot of the diagnostics' own range."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from flask import current_app

from .. import catalog
from ..sandbox import Language, Limits
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


_lock = threading.Lock()


def checker() -> Checker:
    """The app's Checker, made on first use (an app that never lints takes no slot files)."""
    extensions = current_app.extensions
    with _lock:
        if "diagnostics" not in extensions:
            config = current_app.config
            extensions["diagnostics"] = Checker(
                linters(config["DIAGNOSTICS_RUFF_PATH"], config["DIAGNOSTICS_OXLINT_PATH"]),
                SlotPool(config["SLOT_LOCK_DIR"], int(config["DIAGNOSTICS_SLOTS"]), first=DIAGNOSTICS_SLOT_FIRST),
            )
        return extensions["diagnostics"]


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


