"""A linter's language server asked about one document: started and initialized ahead, then told of the code once.

oxlint reads files only, and its start (loading, building its rules) is most of a check's time; as
a language server (`oxlint --lsp`) it does all of that at its start and then lints a document it is
sent in ~1 ms. A pre-started sandbox (lint_pool.py) runs the server: initialize() there, before any
learner's code exists, and ask() on the check's path, once: the sandbox is then ended like any other.
Messages are LSP's JSON-RPC frames (a Content-Length header, then the JSON) on stdin and stdout.
"""
from __future__ import annotations

import json
import os
import select
import time

from . import limits as reasons
from .limits import Limits, Result
from .process import CPU_CHECK_SECONDS, CpuWatchdog
from .spawn import Running

READ_CHUNK = 64 * 1024
HEADER_END = b"\r\n\r\n"
WORKSPACE = "file:///box"
INITIALIZE_ID = 1
# linted once at the start, so that the check's own lint is not the server's first (which sets up
# what it sets up lazily): a line that is Python and JavaScript alike, and nobody's code
WARM_UP_TEXT = "x = 1\n"


class LspError(RuntimeError):
    """The server did not answer as a language server does: the sandbox is not usable."""


class Channel:
    """Frames in both directions on a started server's stdin and stdout; stderr is drained and dropped."""

    def __init__(self, running: Running, output_bytes: int) -> None:
        process = running.process
        self.stdin, self.stdout, self.stderr = process.stdin.fileno(), process.stdout.fileno(), process.stderr.fileno()
        for fd in (self.stdin, self.stdout, self.stderr):
            os.set_blocking(fd, False)
        self.stderr_open = True
        self.buffer = b""
        # what one answer may hold, as the cold check's output limit
        self.output_bytes = output_bytes

    def send(self, message: dict[str, object], deadline: float) -> None:
        """Write message whole, by deadline (TimeoutError); what the server says meanwhile is kept:
        a server blocked writing to us would otherwise never read the rest."""
        body = json.dumps(message).encode()
        view = memoryview(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        while view:
            try:
                view = view[os.write(self.stdin, view) :]
                continue
            except BlockingIOError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self._pump(left, writing=True)

    def receive(self, deadline: float, over_cpu: CpuWatchdog | None = None) -> dict[str, object]:
        """The next message; raises TimeoutError past deadline, LspError on the server's end or garbage."""
        while (message := self._parse_one()) is None:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError
            if over_cpu is not None and over_cpu():
                raise _OverCpu
            wait = min(deadline - now, CPU_CHECK_SECONDS) if over_cpu is not None else deadline - now
            self._pump(wait, writing=False)
        return message

    def _pump(self, seconds: float, writing: bool) -> None:
        """Wait up to seconds for the server (for room on its stdin too, when writing), taking what
        it says on stdout and dropping its log: stderr is always watched, or a server that fills
        its log pipe before it reads or answers would wait for us while we wait for it."""
        poller = select.poll()
        if writing:
            poller.register(self.stdin, select.POLLOUT)
        poller.register(self.stdout, select.POLLIN)
        if self.stderr_open:
            poller.register(self.stderr, select.POLLIN)
        for fd, _ in poller.poll(max(1, int(seconds * 1000))):
            if fd == self.stdout:
                self._take(_read(fd))
            elif fd == self.stderr:
                self._drain_stderr()

    def _take(self, chunk: bytes | None) -> None:
        if chunk == b"":
            raise LspError("the language server closed its output")
        self.buffer += chunk or b""
        if len(self.buffer) > self.output_bytes:
            raise _TooMuch

    def _drain_stderr(self) -> None:
        # never kept, never let fill: a server stuck writing its log would never answer
        if _read(self.stderr) == b"":
            self.stderr_open = False

    def _parse_one(self) -> dict[str, object] | None:
        head, found, rest = self.buffer.partition(HEADER_END)
        if not found:
            return None
        length = None
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise LspError("a message without Content-Length")
        if len(rest) < length:
            return None
        self.buffer = rest[length:]
        return json.loads(rest[:length])


class _OverCpu(Exception):
    pass


class _TooMuch(Exception):
    pass


def _read(fd: int) -> bytes | None:
    """What fd has now: b"" at its end, None when nothing after all."""
    try:
        return os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return None


def document_uri(source_file: str) -> str:
    """Where the check's document is said to be: where a cold check's file is (the server reads no file)."""
    return f"{WORKSPACE}/{source_file}"


def initialize(running: Running, limits: Limits, language: str, source_file: str) -> Channel:
    """The handshake and a warm-up lint, on a freshly started server: it then waits for its one
    document, to be sent on the channel returned (which holds whatever the server said since)."""
    channel = Channel(running, limits.output_bytes)
    params = {"processId": None, "rootUri": WORKSPACE, "capabilities": {}, "workspaceFolders": [{"uri": WORKSPACE, "name": "box"}]}
    deadline = time.monotonic() + limits.timeout_seconds
    warm_up = document_uri("warm-up-" + source_file)
    try:
        channel.send({"jsonrpc": "2.0", "id": INITIALIZE_ID, "method": "initialize", "params": params}, deadline)
        while channel.receive(deadline).get("id") != INITIALIZE_ID:
            pass
        channel.send({"jsonrpc": "2.0", "method": "initialized", "params": {}}, deadline)
        _diagnostics(channel, warm_up, language, WARM_UP_TEXT, deadline, None)
    except (TimeoutError, _OverCpu, _TooMuch, ValueError, AttributeError, OSError) as error:
        raise LspError(f"no answer to initialize ({type(error).__name__})") from error
    return channel


def _diagnostics(
    channel: Channel, uri: str, language: str, text: str, deadline: float, over_cpu: CpuWatchdog | None
) -> list[object]:
    """Open the document and wait for the server's diagnostics of it."""
    document = {"uri": uri, "languageId": language, "version": 1, "text": text}
    channel.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": document}}, deadline)
    while True:
        message = channel.receive(deadline, over_cpu)
        if "id" in message and "method" in message:
            # a request of the server's (its configuration, a capability): nothing to give it
            channel.send({"jsonrpc": "2.0", "id": message["id"], "result": None}, deadline)
            continue
        params = message.get("params") or {}
        if message.get("method") == "textDocument/publishDiagnostics" and params.get("uri") == uri:
            return params.get("diagnostics", [])


def ask(
    channel: Channel, running: Running, code: str, limits: Limits, over_cpu: CpuWatchdog | None, language: str, source_file: str
) -> Result:
    """Send code as an opened document on the channel initialize() gave, and wait for its diagnostics:
    a Result whose stdout is their JSON list, or that says why there is none (timeout,
    cpu_time_limit, output_limit, or the server's end)."""
    started = time.monotonic()
    deadline = started + limits.timeout_seconds

    def result(reason: str | None, stdout: str = "") -> Result:
        return Result(
            exit_code=0 if reason is None else running.process.poll(),
            stdout=stdout, stderr="", stdout_truncated=reason == reasons.OUTPUT_LIMIT, stderr_truncated=False,
            duration_ms=int((time.monotonic() - started) * 1000), reason=reason,
        )

    try:
        found = _diagnostics(channel, document_uri(source_file), language, code, deadline, over_cpu)
        return result(None, json.dumps(found))
    except TimeoutError:
        return result(reasons.TIMEOUT)
    except _OverCpu:
        return result(reasons.CPU_TIME_LIMIT)
    except _TooMuch:
        return result(reasons.OUTPUT_LIMIT)
    except (LspError, OSError, ValueError, AttributeError):
        # the server died (a crash, a limit) or wrote what is no LSP
        return result(reasons.SIGNAL)
