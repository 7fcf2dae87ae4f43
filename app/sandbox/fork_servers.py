"""Which runs fork from a slot's fork server, and the servers of one Sandbox: started, reused, restarted.

The server itself (its sandbox, its protocol, a forked run) is forkserver.py's; this module decides
when a slot has one and drives a run through it. Never imports Flask or the database.
"""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from .cgroups import Counters
from .control import Control
from .forkserver import FORKABLE, ForkServer, served_limits
from .languages import Language
from .limits import Limits, Result
from .outcomes import cpu_watchdog, result_of
from .process import drive
from .run_io import OutputListener
from .spawn import SandboxError

if TYPE_CHECKING:
    from . import Sandbox

log = logging.getLogger(__name__)

# a host that refuses what a fork server needs (nested mounts, capabilities in the sandbox's user
# namespace) fails every start: after this many in a row, Python runs start cold, and /health says why
FORK_SERVER_FAILURES_ALLOWED = 3
# how often this process collects the sandbox processes of its servers that another engine process
# ended (it took the slot and emptied it): they are this process's children (and, bubblewrap's
# init, its orphans: it is their subreaper), zombies until collected, and the other process waits
# for the slot's uid to own no process before its run
REAP_SECONDS = 0.02


class ForkServers:
    """The fork server of each slot of one Sandbox, while the slot has one.

    A slot's runs are one at a time: a server needs no lock; the dict itself is shared by the
    engine's worker threads (one slot each).
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.servers: dict[int, ForkServer] = {}
        self.starts = 0
        self.last_error: str | None = None
        # starts that failed in a row: past FORK_SERVER_FAILURES_ALLOWED, runs start cold
        self._failures = 0
        # the reaper thread runs while this process has servers; the lock makes "no servers left,
        # it ends" and "a server was added, is it running?" one decision each
        self._reaper_lock = threading.Lock()
        self._reaper_running = False
        self._closing = threading.Event()

    @property
    def reason(self) -> str | None:
        """Why runs do not fork from a fork server here, or None when forkable languages do."""
        sandbox = self.sandbox
        if not sandbox.settings.fork_server:
            return "turned off by the FORK_SERVER setting"
        if not sandbox.available or sandbox.isolation.name != "bubblewrap":
            return "needs bubblewrap isolation"
        if self._failures >= FORK_SERVER_FAILURES_ALLOWED:
            return f"it failed to start {self._failures} times in a row: {self.last_error}"
        return None

    def forks(self, language: Language) -> bool:
        """True when language's runs fork from the slot's fork server."""
        return self.reason is None and language.name in FORKABLE

    def describe(self) -> dict[str, object]:
        return {
            "enabled": self.reason is None,
            "reason": self.reason
            or f"forks runs of {', '.join(sorted(FORKABLE))}: the other runtimes cannot fork once started",
            "servers": len(self.servers),
            "runs_per_server": self.sandbox.settings.fork_server_runs,
            "starts": self.starts,
            "last_error": self.last_error,
        }

    def run(
        self,
        language: Language,
        source: bytes,
        stdin: bytes,
        limits: Limits,
        slot: int,
        on_output: OutputListener | None,
        files: tuple[tuple[str, bytes], ...],
        args: tuple[str, ...],
        control: Control | None,
    ) -> Result | None:
        """Fork the run from the slot's fork server (started if need be); None if it cannot (run cold instead)."""
        server = self._server(language, limits, slot)
        if server is None:
            return None
        group = server.group
        if group:
            served = served_limits(limits)
            caps = (served.memory_bytes, served.processes)
            if server.caps_applied != caps:
                group.apply(*caps)
                server.caps_applied = caps
        before = group.counters() if group else Counters(0, 0)
        over_cpu = cpu_watchdog(group, limits)
        try:
            try:
                run = server.start_run(source, files, args, control is not None and control.interactive)
            except SandboxError as error:
                log.warning("a fork server refused a run (%s); running cold", error)
                return None
            outcome = drive(run, stdin, limits.timeout_seconds, limits.output_bytes, on_output, over_cpu, control)
            return result_of(language, outcome, before, group)
        finally:
            if server.broken is not None or server.runs >= self.sandbox.settings.fork_server_runs:
                if server.broken is not None:
                    log.warning("fork server of slot %s restarted: %s", slot, server.broken)
                self._discard(slot)

    def _server(self, language: Language, limits: Limits, slot: int) -> ForkServer | None:
        """The slot's fork server for language with exactly these limits, started if need be."""
        server = self.servers.get(slot)
        if server is not None:
            # every process of the last run is gone before the slot's next fork, or the server goes
            server.settle()
            if server.broken is not None:
                log.warning("fork server of slot %s restarted: %s", slot, server.broken)
        if server is not None and (server.language is not language or not server.usable_for(limits)):
            self._discard(slot)
            server = None
        if server is None:
            try:
                server = ForkServer(self.sandbox, language, limits, slot)
            except SandboxError as error:
                self.last_error = str(error)
                self._failures += 1
                log.warning("could not start a fork server in slot %s (%s); running cold", slot, error)
                return None
            self._failures = 0
            self.starts += 1
            self.servers[slot] = server
            self._start_reaper()
        return server

    def _start_reaper(self) -> None:
        with self._reaper_lock:
            if self._reaper_running:
                return
            self._reaper_running = True
            self._closing.clear()
        threading.Thread(target=self._reap_forever, name="fork-server-reaper", daemon=True).start()

    def _reap_forever(self) -> None:
        """Collect the processes of servers another engine process ended, while this one has servers."""
        while not self._closing.wait(REAP_SECONDS):
            with self._reaper_lock:
                if not self.servers:
                    self._reaper_running = False
                    return
            for server in list(self.servers.values()):
                running = server.running
                if running is None or running.process.poll() is None:
                    continue
                # bubblewrap's process is collected by poll(); its init, orphaned to us, here
                running.collect_inner()
        with self._reaper_lock:
            self._reaper_running = False

    def drop(self, slot: int) -> None:
        """End the slot's fork server and its sandbox, if the slot has one (nothing else of the slot)."""
        server = self.servers.pop(slot, None)
        if server is not None:
            server.close()

    def close(self) -> None:
        # its own sandboxes only: a slot itself may be another engine's by now
        self._closing.set()
        for slot in list(self.servers):
            self.drop(slot)

    def _discard(self, slot: int) -> None:
        """End the slot's fork server and whatever its sandbox held."""
        self.sandbox.clear_slot(slot)
