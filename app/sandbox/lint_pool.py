"""Pre-started linter sandboxes: the sandbox's start taken off a check's path, one fresh sandbox per check.

A cold check pays bubblewrap's namespace setup, the slot's cgroup moves and the tool's own start
before the tool reads a byte; that is most of its time (docs/aids.md, "Where a check's time goes").
Here each sandbox is started exactly as a cold check's is (same bubblewrap namespaces, the slot's
own uid and cgroup, the linter's rlimits, the syscall filter) with the linter's waiting command:
its language server, initialized before any code exists (lint_lsp.py), or a tool that reads its
code from stdin. A check hands its code over and reads the answer. Each sandbox serves exactly
one check and is then ended; one background thread refills the pool.
So no two checks ever share a sandbox, a process or a file (docs/security.md, "Pre-started linters").
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass

# the result's interpretation and the CPU watchdog are the cold path's own, shared on purpose
from . import Sandbox, lint_lsp
from .cgroups import Counters
from .isolation import Step
from .limits import Result
from .linters import LSP, Linter
from .outcomes import cpu_watchdog, result_of
from .process import drive
from .spawn import Running, SandboxError, spawn

log = logging.getLogger(__name__)

# the longest the refill thread sleeps when nothing wakes it (it looks for sandboxes that died waiting)
REFILL_TICK_SECONDS = 1.0
# after a failed start, the language's checks start cold this long before the pool tries again
RETRY_AFTER_FAILURE_SECONDS = 5.0
# a host that refuses what the tool needs fails every start: after this many in a row the pool
# gives the language up (its checks start cold, describe() says why) and tries again only this
# seldom (a few slow starts on a loaded host must not end warm checks for the process's life)
FAILURES_ALLOWED = 3
RETRY_AFTER_GIVING_UP_SECONDS = 60.0
# a check's answer is still being parsed and sent for a few ms after its linter exits: starting the
# replacement at once takes the CPU from it. The refill waits this long, unless a language has no
# ready sandbox left (then the next check would start cold: better to hurry)
AFTER_CHECK_GRACE_SECONDS = 0.02


@dataclass
class Ready:
    """A started linter sandbox, waiting for its code on stdin."""

    linter: Linter
    slot: int
    running: Running
    # the launch's descriptors (memfds, bubblewrap's pipes), closed once the sandbox is ended
    resources: ExitStack
    # when its start began (time.monotonic()): what a replacement costs, off the checks' path
    spawned_at: float = 0.0
    # a language server's messages, once initialized (lint_lsp.py)
    channel: lint_lsp.Channel | None = None

    def died(self) -> bool:
        return self.running.process.poll() is not None


class LintPool:
    """Per-language queues of started linter sandboxes, refilled by one background thread.

    Bounded: `per_language` sandboxes for each linter with a waiting command, each holding a slot
    of `slots` (a machine-wide SlotPool of its own range): a pool that finds no free slot waits,
    and its checks start cold meanwhile.
    """

    def __init__(
        self, sandbox: Sandbox, slots: object, linters: dict[str, Linter], per_language: int, idle_seconds: float = 0.0
    ) -> None:
        self.sandbox = sandbox
        self.slots = slots
        self.per_language = per_language
        # no check for this long (0: never): the ready sandboxes are ended until the next check
        self.idle_seconds = idle_seconds
        self._last_take = time.monotonic()
        self.linters = {
            language: linter
            for language, linter in linters.items()
            if linter.warm_command is not None and linter.is_installed() and per_language > 0
        }
        self._ready: dict[str, deque[Ready]] = {language: deque() for language in self.linters}
        self._used: deque[Ready] = deque()
        self._lock = threading.Lock()
        # notified when a sandbox becomes ready (a check may be waiting for one)
        self._ready_changed = threading.Condition(self._lock)
        self._wanted = threading.Event()
        self._hurry = threading.Event()
        self._stopping = threading.Event()
        # bubblewrap dies with the thread that started it (--die-with-parent): every sandbox is
        # started by this one long-lived thread, never by a request's
        self._thread = threading.Thread(target=self._refill_forever, name="lint-pool", daemon=True)
        self._failed_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        # languages the pool gave up on (FAILURES_ALLOWED starts failed in a row)
        self.given_up: set[str] = set()
        # checks answered by a pre-started sandbox (waits: of them, those that waited for it), and
        # checks that found none and started cold
        self.hits = 0
        self.waits = 0
        self.misses = 0
        self.starts = 0
        # the wall time of the last starts (bubblewrap, the server's start and handshake)
        self._start_seconds: deque[float] = deque(maxlen=50)
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def take(self, language: str, wait_seconds: float = 0.0) -> Ready | None:
        """A ready sandbox for language's linter, now the caller's to run(), or None (check cold).

        With none ready, waits up to wait_seconds for the one being started: under a burst of
        checks that is sooner than a cold start, whose own CPU would slow the refill further.
        """
        deadline = time.monotonic() + wait_seconds
        with self._ready_changed:
            queue = self._ready.get(language)
            if queue is None:
                return None
            self._last_take = time.monotonic()
            waited = False
            while True:
                while queue and queue[0].died():
                    # died waiting: the refill thread ends it and starts another
                    self._used.append(queue.popleft())
                    self._hurry.set()
                if queue:
                    break
                left = deadline - time.monotonic()
                if left <= 0 or language in self.given_up or self._stopping.is_set():
                    self.misses += 1
                    self._wanted.set()
                    return None
                # the refill thread skips its grace and starts this language's next one at once
                self._hurry.set()
                self._wanted.set()
                waited = True
                self._ready_changed.wait(left)
            self.hits += 1
            self.waits += waited
            if len(queue) == 1:
                self._hurry.set()
            return queue.popleft()

    def run(self, ready: Ready, code: bytes) -> Result:
        """Hand code to a taken sandbox's linter and drive it to its end under the linter's limits;
        the caller then hands the sandbox back with finished(), used or not."""
        linter, limits = ready.linter, ready.linter.limits
        group = self.sandbox.slot_group(ready.slot)
        over_cpu = cpu_watchdog(group, limits)
        if ready.died():
            raise SandboxError(f"the pre-started {linter.tool} sandbox died before its check")
        if linter.warm_protocol == LSP:
            if ready.channel is None:
                raise SandboxError(f"the pre-started {linter.tool} server was never initialized")
            # the answer is the server's message: no limit counters are read for it
            return lint_lsp.ask(ready.channel, ready.running, code.decode(), limits, over_cpu, linter.language, linter.warm_command.source_file)
        # read now, not when the sandbox started: its start's own counts are not this check's
        before = group.counters() if group else Counters(0, 0)
        outcome = drive(ready.running, code, limits.timeout_seconds, limits.output_bytes, None, over_cpu)
        # read before finished(): the slot is reused once the sandbox is ended
        return result_of(linter.warm_command, outcome, before, group)

    def shutdown(self) -> None:
        """End every sandbox of the pool and let go of its slots."""
        self._stopping.set()
        with self._ready_changed:
            self._ready_changed.notify_all()
        self._hurry.set()
        self._wanted.set()
        if self._thread.is_alive():
            self._thread.join(10)
        with self._lock:
            leftovers = [*self._used, *(ready for queue in self._ready.values() for ready in queue)]
            self._used.clear()
            for queue in self._ready.values():
                queue.clear()
        for ready in leftovers:
            self._retire(ready)
        self.slots.close()

    def describe(self) -> dict[str, object]:
        with self._lock:
            ready = {language: len(queue) for language, queue in self._ready.items()}
        return {
            "per_language": self.per_language,
            "slots_machine_wide": self.slots.count,
            "ready": ready,
            "hits": self.hits,
            "waits": self.waits,
            "misses": self.misses,
            "starts": self.starts,
            "start_ms_median": round(sorted(self._start_seconds)[len(self._start_seconds) // 2] * 1000, 1) if self._start_seconds else None,
            "last_error": self.last_error,
            "given_up": sorted(self.given_up),
        }

    def finished(self, ready: Ready) -> None:
        """Take back a sandbox from take(): the refill thread ends it and starts its replacement."""
        with self._lock:
            self._used.append(ready)
        self._wanted.set()

    def _retire(self, ready: Ready) -> None:
        try:
            ready.running.end()
            ready.resources.close()
            self.sandbox.clear_slot(ready.slot)
        finally:
            self.slots.release(ready.slot)

    def _refill_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                self._hurry.wait(AFTER_CHECK_GRACE_SECONDS)
                self._hurry.clear()
                if self._idle():
                    # nobody checks: hold no sandboxes (nor their memory) until somebody does
                    self._retire_ready()
                    self._retire_used()
                    self._wanted.wait(REFILL_TICK_SECONDS)
                    self._wanted.clear()
                    continue
                # replacements first, the emptiest language first (a check may be waiting for it);
                # used sandboxes are ended after, or before when their slots are needed
                self._refill_all()
                self._retire_used()
                self._refill_all()
            except Exception:
                # the thread must outlive one bad start or end
                log.exception("the linter pool's refill failed; checks start cold meanwhile")
            self._wanted.wait(REFILL_TICK_SECONDS)
            self._wanted.clear()

    def _refill_all(self) -> None:
        with self._lock:
            order = sorted(self.linters, key=lambda language: len(self._ready[language]))
        # every missing sandbox's bubblewrap first, then each one's handshake: their language
        # servers start side by side rather than one after the other
        started: list[Ready] = []
        for language in order:
            if not self._stopping.is_set():
                started += self._spawn_missing(language)
        for ready in started:
            self._finish_start(ready)

    def _idle(self) -> bool:
        with self._lock:
            return self.idle_seconds > 0 and time.monotonic() - self._last_take > self.idle_seconds

    def _retire_ready(self) -> None:
        with self._lock:
            for queue in self._ready.values():
                self._used.extend(queue)
                queue.clear()

    def _retire_used(self) -> None:
        while True:
            with self._lock:
                if not self._used:
                    return
                ready = self._used.popleft()
            self._retire(ready)

    def _spawn_missing(self, language: str) -> list[Ready]:
        """Sandboxes started for what language lacks (as many as there are free slots), not yet ready."""
        pause = RETRY_AFTER_GIVING_UP_SECONDS if language in self.given_up else RETRY_AFTER_FAILURE_SECONDS
        if time.monotonic() - self._failed_at.get(language, -1e9) < pause:
            return []
        linter = self.linters[language]
        with self._lock:
            queue = self._ready[language]
            died = [ready for ready in queue if ready.died()]
            for ready in died:
                queue.remove(ready)
            missing = self.per_language - len(queue)
        for ready in died:
            self._retire(ready)
        spawned: list[Ready] = []
        for _ in range(missing):
            slot = self.slots.acquire()
            if slot is None or self._stopping.is_set():
                if slot is not None:
                    self.slots.release(slot)
                break
            try:
                spawned.append(self._spawn(linter, slot))
            except Exception as error:  # noqa: BLE001 (a start that fails makes cold checks, not a crash)
                self.slots.release(slot)
                self._failed(language, error)
                break
        return spawned

    def _finish_start(self, ready: Ready) -> None:
        """Make a spawned sandbox ready: a language server's handshake, done before any code exists."""
        linter = ready.linter
        if linter.warm_protocol == LSP:
            try:
                ready.channel = lint_lsp.initialize(ready.running, linter.limits, linter.language, linter.warm_command.source_file)
            except lint_lsp.LspError as error:
                self._retire(ready)
                self._failed(linter.language, error)
                return
        self._failures[linter.language] = 0
        self.given_up.discard(linter.language)
        self.starts += 1
        self._start_seconds.append(time.monotonic() - ready.spawned_at)
        with self._ready_changed:
            self._ready[linter.language].append(ready)
            self._ready_changed.notify_all()

    def _failed(self, language: str, error: Exception) -> None:
        self.last_error = str(error)[:500]
        self._failed_at[language] = time.monotonic()
        self._failures[language] = self._failures.get(language, 0) + 1
        if self._failures[language] >= FAILURES_ALLOWED:
            self.given_up.add(language)
        log.warning("could not pre-start a %s sandbox (%s); its checks start cold", self.linters[language].tool, error)

    def _spawn(self, linter: Linter, slot: int) -> Ready:
        """Start linter's waiting command in a fresh sandbox in slot, as a cold check's would be."""
        sandbox, limits = self.sandbox, linter.limits
        started = time.monotonic()
        # whatever a dead engine or the slot's last check left goes first
        sandbox.clear_slot(slot)
        group = sandbox.slot_group(slot)
        if group:
            group.apply(limits.memory_bytes, limits.processes)
        resources = ExitStack()
        try:
            launch = resources.enter_context(
                sandbox.isolation.launch(linter.warm_command, b"", limits, sandbox.slot_user(slot), group, Step())
            )
            running = spawn(launch)
        except BaseException:
            resources.close()
            sandbox.clear_slot(slot)
            raise
        return Ready(linter, slot, running, resources, started)
