"""The framework's floor: plain Flask under the same gunicorn settings, one trivial route, no database;
and the HTTP server's floor: the same route as a bare WSGI callable (`bare`), no framework."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from flask import Flask, request

app = Flask(__name__)


@app.get("/")
def index() -> dict:
    return {"status": "ok"}


@app.patch("/echo/<string:item_id>")
def echo(item_id: str) -> dict:
    """Parse the JSON body an autosave would send and answer with a small JSON object."""
    body = request.get_json(force=True, silent=True) or {}
    return {"id": item_id, "received": len(body.get("source_code", ""))}


def bare(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """PATCH /echo/<id> (and anything else) as echo answers it, without Flask: what gunicorn alone costs."""
    length = environ.get("CONTENT_LENGTH") or ""
    raw = environ["wsgi.input"].read(int(length)) if length.isdigit() else b""
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    item_id = environ.get("PATH_INFO", "").rpartition("/")[2]
    answer = (json.dumps({"id": item_id, "received": len(body.get("source_code", "")) if isinstance(body, dict) else 0}) + "\n").encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]
