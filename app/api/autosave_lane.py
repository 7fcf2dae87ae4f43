"""The autosave's fast lane: an editor's plain PATCH /code-sessions/<id>, served without Flask's request machinery.

Every open editor sends this request about once a second, and profiled, the Werkzeug request,
Flask's request context, URL matching over the whole API, the hooks and flask-restx's dispatch cost
more than the save itself. This WSGI layer in front of the Flask app serves the common case
directly: the same service call (`services.sessions.autosave`, in an app context), the same answer
bytes and headers (`session_json`, ETag, X-Request-ID), the same log line and metrics. Anything
else goes on to Flask untouched: another method or path, access control on, no or a too-large
Content-Length, a body that is not plainly valid (`plain_patch`), a lone-surrogate escape, and
every other error the save raises (a 409, 404, 413, 422: Flask answers it exactly as before; no
error leaves anything written, so trying the request again there is safe). A database still busy
past the retry budget is answered here (503 database_busy, Retry-After), as Flask would: trying
again there would make the client wait a second budget.
AUTOSAVE_FAST_LANE = false turns it off.
"""
from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus

from flask import Flask

from .. import errors, logs
from ..services import sessions
from .payload import SURROGATE_ESCAPE
from .sessions import plain_patch, session_json

# the session ids the engine makes (uuid4 text); any other path segment goes to Flask's router
PATH = re.compile(r"/code-sessions/([0-9a-fA-F-]{1,64})")
# the URL rule Flask would have matched: the route label of the log line and the metrics
ROUTE = "/code-sessions/<string:session_id>"

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


class AutosaveLane:
    """WSGI middleware: app.wsgi_app = AutosaveLane(app, app.wsgi_app)."""

    def __init__(self, app: Flask, flask_wsgi: WsgiApp) -> None:
        self.app = app
        self.flask_wsgi = flask_wsgi

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        config = self.app.config
        if environ.get("REQUEST_METHOD") != "PATCH" or not config["AUTOSAVE_FAST_LANE"] or config["AUTH_ENABLED"]:
            return self.flask_wsgi(environ, start_response)
        match = PATH.fullmatch(environ.get("PATH_INFO", ""))
        length = environ.get("CONTENT_LENGTH") or ""
        if match is None or not length.isdigit() or not 0 < int(length) <= int(config["MAX_CONTENT_LENGTH"]):
            return self.flask_wsgi(environ, start_response)
        started = time.perf_counter()
        raw = environ["wsgi.input"].read(int(length))
        # read once: whatever goes on to Flask reads it again from here
        environ["wsgi.input"] = io.BytesIO(raw)
        answer = self._save(match.group(1), raw, environ, started)
        if answer is None:
            return self.flask_wsgi(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def _save(self, session_id: str, raw: bytes, environ: dict, started: float) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """(status line, headers, body) of the saved session (or of a busy database), or None for Flask to answer."""
        try:
            changes = json.loads(raw)
        except (ValueError, RecursionError):
            # Flask's handler answers it (400 invalid_json)
            return None
        if not isinstance(changes, dict) or not plain_patch(changes) or b"\x00" in raw[:4] or SURROGATE_ESCAPE.search(raw):
            return None
        reason = changes.pop("reason", "typing")
        expected = changes.pop("version", None)
        if expected is None:
            # as the Flask handler: the body's version, else If-Match
            expected = environ.get("HTTP_IF_MATCH")
        with self.app.app_context():
            try:
                saved = sessions.autosave(session_id, changes, expected, reason)
            except Exception as error:  # noqa: BLE001 (Flask answers every other refusal and failure, exactly as before)
                refusal = errors.expected(error)
                if refusal is None or refusal.code != "database_busy":
                    return None
                body, status, headers = errors.as_json(refusal)
                return self._answered(status, (json.dumps(body) + "\n").encode(), headers, environ, started)
            return self._answered(200, session_json(saved), {"ETag": f'"{saved.version}"'}, environ, started)

    def _answered(
        self, status: int, body: bytes, extra: dict[str, str], environ: dict, started: float
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """The answer's status line and headers, counted and logged as Flask's hooks would."""
        given = environ.get("HTTP_X_REQUEST_ID", "")
        rid = given if logs.REQUEST_ID_PATTERN.fullmatch(given) else logs.new_request_id()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *extra.items(), (logs.REQUEST_ID_HEADER, rid)]
        metrics = self.app.extensions.get("metrics")
        if metrics is not None:
            metrics.count_request("PATCH", ROUTE, status, started)
        logs.log_request("PATCH", ROUTE, environ.get("PATH_INFO", ""), status, started, rid, environ.get("REMOTE_ADDR"))
        return f"{status} {HTTPStatus(status).phrase.upper()}", headers, body


def init_app(app: Flask) -> None:
    app.wsgi_app = AutosaveLane(app, app.wsgi_app)  # type: ignore[method-assign]
