"""Each linter's output mapped to one Diagnostic shape, with positions in the editor's units.

Lines are 1-based; columns are 1-based in UTF-16 code units (what CodeMirror and the browser
count). Every tool counts differently: ruff in characters, oxlint and g++ in UTF-8 bytes, javac in
UTF-16 units already. The conversion happens here, at the edge, so the editor knows one shape.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace

ERROR, WARNING, INFO = "error", "warning", "info"
# what one answer may hold: a file of errors helps nobody, and the JSON stays small
MAX_DIAGNOSTICS = 200


@dataclass(frozen=True)
class Diagnostic:
    line: int
    column: int
    end_line: int
    end_column: int
    severity: str
    message: str
    code: str | None
    source: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Positions:
    """Converts a tool's (line, column) or byte offset into (line, UTF-16 column), both 1-based."""

    def __init__(self, source: str) -> None:
        self.lines = source.split("\n")
        self.encoded = source.encode()
        self.line_starts = [0]
        for index, byte in enumerate(self.encoded):
            if byte == 0x0A:
                self.line_starts.append(index + 1)

    def _line(self, line: int) -> str:
        return self.lines[line - 1] if 1 <= line <= len(self.lines) else ""

    def from_characters(self, line: int, column: int) -> tuple[int, int]:
        """From a 1-based column counted in characters (code points)."""
        return line, utf16_length(self._line(line)[: max(0, column - 1)]) + 1

    def from_line_bytes(self, line: int, column: int) -> tuple[int, int]:
        """From a 1-based column counted in UTF-8 bytes of the line."""
        prefix = self._line(line).encode()[: max(0, column - 1)]
        return line, utf16_length(prefix.decode("utf-8", errors="ignore")) + 1

    def from_offset(self, offset: int) -> tuple[int, int]:
        """From a 0-based UTF-8 byte offset into the whole source."""
        offset = max(0, min(offset, len(self.encoded)))
        line = _last_at_most(self.line_starts, offset)
        start = self.line_starts[line]
        return line + 1, utf16_length(self.encoded[start:offset].decode("utf-8", errors="ignore")) + 1


def utf16_length(text: str) -> int:
    """Code units of text in UTF-16: astral-plane characters (most emoji) count two."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _last_at_most(starts: list[int], offset: int) -> int:
    low, high = 0, len(starts) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if starts[middle] <= offset:
            low = middle
        else:
            high = middle - 1
    return low


# ruff's own words for a syntax error (its code is null or "invalid-syntax" depending on the version)
RUFF_SYNTAX_CODES = (None, "", "invalid-syntax", "E999")
# names that do not exist fail at run time for certain: shown as errors, the rest as warnings
RUFF_ERROR_CODES = frozenset({"F821", "F822", "F823", "F601", "F631", "F701", "F702", "F704", "F706", "F707"})


def parse_ruff(stdout: str, stderr: str, source: str) -> list[Diagnostic]:
    """ruff check --output-format json."""
    positions = Positions(source)
    found = []
    for item in json.loads(stdout or "[]"):
        code = item.get("code")
        line, column = positions.from_characters(item["location"]["row"], item["location"]["column"])
        end = item.get("end_location") or item["location"]
        end_line, end_column = positions.from_characters(end["row"], end["column"])
        syntax = code in RUFF_SYNTAX_CODES
        severity = ERROR if syntax or code in RUFF_ERROR_CODES else WARNING
        found.append(
            Diagnostic(line, column, end_line, end_column, severity, item["message"], None if syntax else code, "ruff")
        )
    return found


def parse_oxlint(stdout: str, stderr: str, source: str) -> list[Diagnostic]:
    """oxlint --format json: positions are byte offsets and lengths."""
    positions = Positions(source)
    found = []
    for item in json.loads(stdout or "{}").get("diagnostics", []):
        labels = item.get("labels") or [{"span": {"offset": 0, "length": 0}}]
        span = labels[0]["span"]
        line, column = positions.from_offset(int(span["offset"]))
        end_line, end_column = positions.from_offset(int(span["offset"]) + int(span.get("length", 0)))
        severity = ERROR if item.get("severity") == "error" else WARNING
        message = item["message"]
        if item.get("help"):
            message += f" ({item['help']})"
        found.append(Diagnostic(line, column, end_line, end_column, severity, message, item.get("code"), "oxlint"))
    return found


# LSP's DiagnosticSeverity: 1 error, 2 warning, 3 information, 4 hint
LSP_SEVERITIES = {1: ERROR, 2: WARNING, 3: INFO}
LSP_HINT = 4
# servers append their help text to the message ("...\nhelp: Remove it"); the CLIs give it apart
LSP_HELP = re.compile(r"\n+help: ")


def parse_lsp(stdout: str, stderr: str, source: str, tool: str = "lsp", keep_help: bool = True) -> list[Diagnostic]:
    """A language server's publishDiagnostics list (lint_lsp.py): 0-based lines, columns already in
    UTF-16 units (LSP's default position encoding); the help text as the CLI's parse gives it."""
    found = []
    for item in json.loads(stdout):
        if item.get("severity") == LSP_HINT:
            # a server's copy of another diagnostic's secondary label ("it was last assigned
            # here"): the command-line tools list it with that diagnostic, not apart
            continue
        start, end = item["range"]["start"], item["range"]["end"]
        message, *help_text = LSP_HELP.split(item["message"], maxsplit=1)
        if help_text and help_text[0].strip() and keep_help:
            message += f" ({help_text[0].strip()})"
        code = item.get("code")
        found.append(Diagnostic(
            start["line"] + 1, start["character"] + 1, end["line"] + 1, end["character"] + 1,
            LSP_SEVERITIES.get(item.get("severity"), WARNING), message, str(code) if code else None, tool,
        ))
    return sorted(found, key=lambda diagnostic: (diagnostic.line, diagnostic.column))


def parse_ruff_lsp(stdout: str, stderr: str, source: str) -> list[Diagnostic]:
    """`ruff server`'s diagnostics, told as parse_ruff tells `ruff check`'s (codes, severities, messages)."""
    found = []
    for diagnostic in parse_lsp(stdout, stderr, source, "ruff", keep_help=False):
        syntax = diagnostic.code in RUFF_SYNTAX_CODES
        severity = ERROR if syntax or diagnostic.code in RUFF_ERROR_CODES else WARNING
        found.append(replace(diagnostic, code=None if syntax else diagnostic.code, severity=severity))
    return found


# main.cpp:3:5: error: 'x' was not declared in this scope  (columns in bytes: -fdiagnostics-column-unit=byte)
GCC_LINE = re.compile(r"^[^:\n]+:(\d+):(\d+): (fatal error|error|warning|note): (.*?)(?: \[(-W[^\]]+)\])?$", re.M)


def parse_gcc(stdout: str, stderr: str, source: str) -> list[Diagnostic]:
    """g++ -fsyntax-only, one `file:line:col: severity: message` line per problem (notes left out)."""
    positions = Positions(source)
    found = []
    for match in GCC_LINE.finditer(stderr):
        kind = match.group(3)
        if kind == "note":
            continue
        line, column = positions.from_line_bytes(int(match.group(1)), int(match.group(2)))
        severity = WARNING if kind == "warning" else ERROR
        found.append(Diagnostic(line, column, line, column + 1, severity, match.group(4), match.group(5), "g++"))
    return found


# Main.java:3: error: illegal start of expression, then the source line, then a caret line
JAVAC_LINE = re.compile(r"^[^:\n]+\.java:(\d+): (error|warning): (.*)$")


def parse_javac(stdout: str, stderr: str, source: str) -> list[Diagnostic]:
    """javac's plain output: the caret line's indentation is the column in UTF-16 units (tabs kept as tabs)."""
    found = []
    lines = stderr.splitlines()
    for index, text in enumerate(lines):
        match = JAVAC_LINE.match(text)
        if not match:
            continue
        line = int(match.group(1))
        column = 1
        for following in lines[index + 1 : index + 3]:
            stripped = following.rstrip()
            if stripped.endswith("^") and not stripped[:-1].strip():
                column = len(stripped)
                break
        severity = WARNING if match.group(2) == "warning" else ERROR
        found.append(Diagnostic(line, column, line, column + 1, severity, match.group(3), None, "javac"))
    return found
