"""What drive() keeps of a run while it goes on: its output streams under caps, its stdin, its clocks,
and when to look whether it waits for input."""
from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Callable

from . import limits as reasons
from .control import Interactivity

READ_CHUNK = 64 * 1024
# the prompt a stdin_wanted event carries
PROMPT_MAX_BYTES = 200
# while an interactive program may be waiting for input, how soon after it last did something
# the engine first looks (a few /proc reads), and the longest it then goes between looks
PROBE_FIRST_SECONDS = 0.005
PROBE_MAX_SECONDS = 0.25

# called with ("stdout" | "stderr", text) as output arrives, for live feedback; in a run with a
# control also ("stdin", text) as input reaches the program and ("stdin_wanted", the unfinished
# last line of stdout, its prompt) when the program starts waiting for input
OutputListener = Callable[[str, str], None]


class Stream:
    def __init__(self, name: str, cap: int, listener: OutputListener | None) -> None:
        self.name = name
        self.cap = cap
        self.listener = listener
        self.data = bytearray()
        self.truncated = False
        # bytes of an incomplete UTF-8 sequence held back from the listener
        self.pending = b""

    def unfinished_line(self) -> str:
        """The end of the output after its last newline (a prompt waiting for its answer), at most 200 bytes."""
        tail = bytes(self.data[-PROMPT_MAX_BYTES:])
        return tail.rpartition(b"\n")[2].decode("utf-8", errors="replace")

    def take(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if len(chunk) > room:
            chunk = chunk[:room]
            self.truncated = True
        self.data += chunk
        if self.listener and chunk:
            text, self.pending = decode_complete(self.pending + chunk)
            if text:
                self.listener(self.name, text)


def decode_complete(data: bytes) -> tuple[str, bytes]:
    """Decode data, holding back a trailing incomplete UTF-8 sequence for the next chunk."""
    for cut in range(len(data), max(len(data) - 4, -1), -1):
        try:
            return data[:cut].decode("utf-8"), data[cut:]
        except UnicodeDecodeError as error:
            if error.start < cut - 4 or error.reason != "unexpected end of data":
                break
    return data.decode("utf-8", errors="replace"), b""



class Clock:
    """A run's clocks: the wall limit runs only while the program is not waiting for input;
    an interactive run also has an input-idle limit and a limit on its whole length."""

    def __init__(self, now: float, timeout_seconds: float, interactivity: Interactivity | None) -> None:
        self.started = now
        self.timeout_seconds = timeout_seconds
        self.interactivity = interactivity
        # time spent waiting for input, in waits already over
        self.paused = 0.0
        self.waiting_since: float | None = None

    def wait_begins(self, now: float) -> None:
        if self.waiting_since is None:
            self.waiting_since = now

    def wait_ends(self, now: float) -> None:
        if self.waiting_since is not None:
            self.paused += now - self.waiting_since
            self.waiting_since = None

    def active(self, now: float) -> float:
        """Seconds the program ran, not counting its waits for input."""
        waiting = now - self.waiting_since if self.waiting_since is not None else 0.0
        return now - self.started - self.paused - waiting

    def wall_left(self, now: float) -> float:
        return self.timeout_seconds - self.active(now)

    def next_end(self, now: float) -> tuple[str, float]:
        """(why, when) of the first limit that will end the run, as things stand."""
        if self.waiting_since is None:
            ends = [(reasons.TIMEOUT, self.started + self.paused + self.timeout_seconds)]
        else:
            ends = [(reasons.TIMEOUT, float("inf"))]
        if self.interactivity is not None:
            ends.append((reasons.INTERACTIVE_TIME_LIMIT, self.started + self.interactivity.total_seconds))
            if self.waiting_since is not None:
                ends.append((reasons.INPUT_IDLE_LIMIT, self.waiting_since + self.interactivity.input_idle_seconds))
        return min(ends, key=lambda end: end[1])


class Probe:
    """When to look whether the program waits for input: soon after it did something, then less and less often."""

    def __init__(self) -> None:
        self.interval = PROBE_FIRST_SECONDS
        self.next_at = time.monotonic() + self.interval

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def looked(self, now: float) -> None:
        self.interval = min(self.interval * 2, PROBE_MAX_SECONDS)
        self.next_at = now + self.interval

    def activity(self) -> None:
        self.interval = PROBE_FIRST_SECONDS
        self.next_at = min(self.next_at, time.monotonic() + self.interval)


class Stdin:
    """The program's stdin: written as the pipe takes it, closed at the end of input."""

    def __init__(self, selector: selectors.BaseSelector, process: subprocess.Popen[bytes], data: bytes, keep_open: bool) -> None:
        self.selector = selector
        self.pipe = process.stdin
        self.fd = self.pipe.fileno()
        self.pending = bytearray(data)
        self.closing = not keep_open
        self.closed = False
        self.registered = False
        os.set_blocking(self.fd, False)
        self._settle()

    @property
    def open_and_empty(self) -> bool:
        return not self.closed and not self.pending

    def add(self, data: bytes) -> None:
        if self.closed:
            return
        self.pending += data
        # at once, not one select() later: the learner waits for this
        self.on_writable()

    def end(self) -> None:
        self.closing = True
        self._settle()

    def on_writable(self) -> None:
        """Write what the pipe takes of the pending stdin."""
        if self.closed or not self.pending:
            return self._settle()
        try:
            written = os.write(self.fd, self.pending[:READ_CHUNK])
            del self.pending[:written]
        except BlockingIOError:
            pass
        except OSError:
            # the program closed its stdin: what it did not read is dropped
            self.pending.clear()
            self.closing = True
        self._settle()

    def _settle(self) -> None:
        if self.closed:
            return
        if self.pending and not self.registered:
            self.selector.register(self.pipe, selectors.EVENT_WRITE)
            self.registered = True
        elif not self.pending and self.registered:
            self.selector.unregister(self.pipe)
            self.registered = False
        if not self.pending and self.closing:
            self.closed = True
            self.pipe.close()


def reading(selector: selectors.BaseSelector, streams: dict[object, Stream]) -> bool:
    return any(key.fileobj in streams for key in selector.get_map().values())

