"""The request's log line written directly (no LogRecord) when our JSON handler is the root logger's
only one is the line the logging machinery writes, field for field and in the same order."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest

from app import logs


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if '"app.requests"' in line]


def test_the_direct_line_is_the_formatters_line(app, capsys, monkeypatch):
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if isinstance(handler, logs.StderrHandler)]
    assert len(ours) == 1
    # pytest's own capture handlers make the logger take the record path: leave only ours
    monkeypatch.setattr(root, "handlers", ours)
    assert logs._plain_json_handler() is ours[0]
    capsys.readouterr()
    logs.log_request("PATCH", "/code-sessions/<string:session_id>", "/code-sessions/x", 200, None, "rid-1", "127.0.0.1")
    direct = capsys.readouterr().err

    # a second handler anywhere: the record goes through logging, formatted by JsonFormatter
    monkeypatch.setattr(root, "handlers", [*ours, logging.NullHandler()])
    assert logs._plain_json_handler() is None
    logs.log_request("PATCH", "/code-sessions/<string:session_id>", "/code-sessions/x", 200, None, "rid-1", "127.0.0.1")
    through_logging = capsys.readouterr().err

    # a filter of an operator's on our handler: it decides, so the record goes through logging
    monkeypatch.setattr(root, "handlers", ours)
    monkeypatch.setattr(ours[0], "filters", [*ours[0].filters, logging.Filter("nothing.matches")])
    assert logs._plain_json_handler() is None
    logs.log_request("PATCH", "/code-sessions/<string:session_id>", "/code-sessions/x", 200, None, "rid-1", "127.0.0.1")
    assert _lines(capsys.readouterr().err) == []

    [fast], [slow] = _lines(direct), _lines(through_logging)
    assert direct.endswith("\n") and direct.count("\n") == 1
    assert list(fast) == list(slow)
    fast.pop("ts"), slow.pop("ts")
    assert fast == slow
    assert fast["message"] == "PATCH /code-sessions/x 200" and fast["duration_ms"] is None


@pytest.mark.parametrize("created", [1_764_660_000.0, 1_764_660_000.9994, 1_764_660_000.9999996, 1_764_660_059.5, 1_764_660_000.0005])
def test_the_timestamp_is_the_formatters(created):
    expected = datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert logs._timestamp(created) == expected
