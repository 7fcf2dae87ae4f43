"""The browser editor at /: one page, its scripts and styles, and the vendored CodeMirror and xterm.js bundle."""
from __future__ import annotations

from flask import Blueprint, Flask, render_template

# static/vendor/codemirror.js (CodeMirror and xterm.js) and vendor/xterm.css are generated and
# committed: after changing editor-src/, rebuild them with
#   cd app/web/editor-src && npm ci && npm run build

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/web")


@bp.get("/")
def editor():
    """The editor page; it talks to the engine only through the public API."""
    return render_template("editor.html")


def init_app(app: Flask) -> None:
    # before the Api: flask-restx also claims "/" (with a 404), and the first rule wins
    app.register_blueprint(bp)
