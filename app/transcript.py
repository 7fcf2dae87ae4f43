"""An interactive run's transcript: stdin, stdout and stderr interleaved as they happened, bounded."""
from __future__ import annotations

import json
import threading

STREAMS = ("stdin", "stdout", "stderr")


class Transcript:
    """Entries {"stream", "text"} in order, neighbours of one stream merged; past max_chars the rest is left out."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.chars = 0
        self.truncated = False
        self.entries: list[dict[str, str]] = []
        # stdin arrives on the run's thread and, before the program starts, on the runner's
        self._lock = threading.Lock()

    def add(self, stream: str, text: str) -> None:
        if stream not in STREAMS or not text:
            return
        with self._lock:
            room = self.max_chars - self.chars
            if len(text) > room:
                text = text[:room]
                self.truncated = True
            if not text:
                return
            self.chars += len(text)
            if self.entries and self.entries[-1]["stream"] == stream:
                self.entries[-1]["text"] += text
            else:
                self.entries.append({"stream": stream, "text": text})

    def as_json(self) -> str:
        with self._lock:
            return json.dumps({"entries": self.entries, "truncated": self.truncated}, ensure_ascii=False)
