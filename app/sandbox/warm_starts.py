"""A warm sandbox's life for one Sandbox: started in a slot, handed its run, driven, discarded.

The pool that keeps them ready is warm.py's; this is what starts, runs and ends one.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING

from .cgroups import Counters
from .control import Control
from .isolation import Step
from .languages import Language
from .limits import Limits, Result
from .outcomes import cpu_watchdog, result_of
from .process import drive
from .run_io import OutputListener
from .spawn import spawn
from .warm import Warm

if TYPE_CHECKING:
    from . import Sandbox

log = logging.getLogger(__name__)


def start_warm(sandbox: Sandbox, language: Language, limits: Limits, slot: int) -> Warm:
    """Start language's bootstrap in a fresh sandbox in slot; it waits for its program."""
    group = sandbox.slot_group(slot)
    sandbox.clear_slot(slot)
    if group:
        group.apply(limits.memory_bytes, limits.processes)
    control_read, control_write = os.pipe()
    resources = contextlib.ExitStack()
    try:
        launch = resources.enter_context(
            sandbox.isolation.launch(language, b"", limits, sandbox.slot_user(slot), group, Step(control_fd=control_read))
        )
        running = spawn(launch)
    except BaseException:
        resources.close()
        os.close(control_write)
        raise
    finally:
        os.close(control_read)
    return Warm(language, limits, slot, running, control_write, resources)


def discard_warm(sandbox: Sandbox, warm: Warm) -> None:
    warm.close_control()
    warm.running.end()
    warm.resources.close()
    sandbox.clear_slot(warm.slot)


def run_warm(
    sandbox: Sandbox,
    warm: Warm,
    source: bytes,
    stdin: bytes,
    limits: Limits,
    on_output: OutputListener | None,
    control: Control | None = None,
) -> Result | None:
    """Hand source to a warm sandbox and drive it; None if the sandbox died waiting (run cold instead)."""
    # read now, not when the sandbox started: its start-up's own limit hits are not the run's
    group = sandbox.slot_group(warm.slot)
    before = group.counters() if group else Counters(0, 0)
    try:
        try:
            warm.send(source)
        except OSError:
            log.warning("a warm %s sandbox died before its run; running cold", warm.language.name)
            return None
        over_cpu = cpu_watchdog(group, limits)
        outcome = drive(warm.running, stdin, limits.timeout_seconds, limits.output_bytes, on_output, over_cpu, control)
        # read the slot's counters before the sandbox goes back: its slot may be reused at once
        return result_of(warm.language, outcome, before, group)
    finally:
        sandbox.warm_pool.finished(warm)
