"""A running program's remote control: stdin sent while it runs, end of input, and stop; thread-safe.

The thread that drives the program (process.drive) sleeps in select(); other threads (an HTTP
request in this process, the runner's relay of requests stored by other processes) hand it input
or a stop through this object, and a byte on a wake-up pipe makes its select() return at once.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .limits import CANCELLED


@dataclass(frozen=True)
class Interactivity:
    """The clocks of an interactive run, on top of its ordinary limits."""

    # waiting for input this long with none coming ends the run (input_idle_limit)
    input_idle_seconds: float = 120.0
    # the whole run, waiting included, ends here (interactive_time_limit)
    total_seconds: float = 900.0


class Control:
    """Input and stop requests for one run, from any thread, to the one thread that drives it."""

    def __init__(self, interactivity: Interactivity | None = None) -> None:
        # None: stdin is the run's given input and closes once written (a batch run)
        self.interactivity = interactivity
        self._lock = threading.Lock()
        # chunks by their seq (from 1), held until every earlier one has arrived
        self._early: dict[int, tuple[bytes, bool]] = {}
        self._next_seq = 1
        # bytes of the chunks received so far (for a sender that checks a limit here)
        self._received_bytes = 0
        self._ready = bytearray()
        self._eof = False
        self._cancelled = False
        # why the stop: cancelled (asked for by the learner), or interrupted (the engine stops)
        self.stop_reason = CANCELLED
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._closed = False
        # called by the cancelling thread: for a run not driven by drive() (a graded run's supervisor)
        self._on_cancel: list[Callable[[], None]] = []

    @property
    def interactive(self) -> bool:
        return self.interactivity is not None

    @property
    def wake_fd(self) -> int:
        """Readable when there is something to take(): the driver selects on it."""
        return self._wake_read

    @property
    def next_seq(self) -> int:
        """The seq of the first chunk not yet received."""
        with self._lock:
            return self._next_seq

    @property
    def cancelled(self) -> bool:
        with self._lock:
            return self._cancelled

    def send(self, seq: int, data: bytes, eof: bool = False) -> bool:
        """Queue chunk `seq` of stdin (delivered in seq order, each once); True if it was new."""
        with self._lock:
            if seq < self._next_seq or seq in self._early or self._eof:
                return False
            self._early[seq] = (data, eof)
            while self._next_seq in self._early:
                chunk, closes = self._early.pop(self._next_seq)
                self._next_seq += 1
                self._received_bytes += len(chunk)
                self._ready += chunk
                if closes:
                    self._eof = True
                    self._early.clear()
                    break
        self._wake()
        return True

    def send_next(self, seq: int, data: bytes, eof: bool, room_bytes: int) -> bool:
        """Take chunk seq now if it is exactly the next one, stdin is open and it fits in room_bytes in all; True if taken."""
        with self._lock:
            if seq != self._next_seq or self._early or self._eof or self._received_bytes + len(data) > room_bytes:
                return False
        return self.send(seq, data, eof)

    def cancel(self, reason: str = CANCELLED) -> None:
        """Ask the driver to kill the program; it ends with reason as its error."""
        with self._lock:
            if not self._cancelled:
                self.stop_reason = reason
            self._cancelled = True
            callbacks = list(self._on_cancel)
        self._wake()
        for callback in callbacks:
            callback()

    def when_cancelled(self, callback: Callable[[], None]) -> None:
        """Call callback once a stop is asked (from the thread that asks it), or now if one was."""
        with self._lock:
            self._on_cancel.append(callback)
            cancelled = self._cancelled
        if cancelled:
            callback()

    def take(self) -> tuple[bytes, bool, bool]:
        """(stdin that arrived since the last take, end of input, cancelled), emptying the wake-up pipe."""
        self._drain()
        with self._lock:
            data = bytes(self._ready)
            self._ready.clear()
            return data, self._eof, self._cancelled

    def stop_only(self) -> StopOnly:
        """This control as a step that must not take the stdin (a compiler): it sees only a stop."""
        return StopOnly(self)

    def take_cancel(self) -> bool:
        """Whether a stop was asked, emptying the wake-up pipe but leaving any stdin for take()."""
        self._drain()
        return self.cancelled

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _drain(self) -> None:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except OSError:
            pass

    def _wake(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                os.write(self._wake_write, b"!")
            except BlockingIOError:
                # the pipe is full of wake-ups already: the driver will wake
                pass


class StopOnly:
    """A Control's view for a step that may be stopped but must leave the stdin to the program."""

    interactivity = None

    def __init__(self, control: Control) -> None:
        self._control = control

    @property
    def stop_reason(self) -> str:
        return self._control.stop_reason

    @property
    def wake_fd(self) -> int:
        return self._control.wake_fd

    def take(self) -> tuple[bytes, bool, bool]:
        # the wake-up is consumed here; the program's drive() takes the stdin when it starts
        return b"", False, self._control.take_cancel()
