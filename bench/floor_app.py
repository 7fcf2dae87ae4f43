"""The framework's floor: plain Flask under the same gunicorn settings, one trivial route, no database."""
from __future__ import annotations

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
