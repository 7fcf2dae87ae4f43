"""Code sessions: create, read, autosave, delete, list runs, run."""
from __future__ import annotations

from flask import request
from flask_restx import Namespace, Resource

from ..services import sessions
from . import payload
from .responses import errors
from .schemas import ERROR, EXECUTION, RUN_MODEL, SESSION, SESSION_CREATE, SESSION_CREATE_MODEL, SESSION_PATCH, SESSION_PATCH_MODEL, RUN

PATH = "/code-sessions"
ns = Namespace("code-sessions", description="A learner's code, autosaved as they type, and its runs")

def _with_version(session, status: int = 200):  # noqa: ANN001, ANN202
    return ns.marshal(session, SESSION), status, {"ETag": f'"{session.version}"'}


@ns.route("")
class SessionList(Resource):
    @ns.expect(SESSION_CREATE_MODEL)
    @ns.response(201, "Created", SESSION)
    @errors(ns, 400, 413, 422)
    def post(self):
        """Open a code session (language defaults to python; template_code is an alias of source_code)."""
        return _with_version(sessions.create(**payload.json_body(SESSION_CREATE)), 201)


@ns.route("/<string:session_id>")
class SessionItem(Resource):
    @ns.response(200, "The session", SESSION)
    @errors(ns, 404)
    def get(self, session_id: str):
        """Read a session."""
        return _with_version(sessions.get(session_id))

    @ns.expect(SESSION_PATCH_MODEL)
    @ns.param("If-Match", "the version this edit is based on (same as the body's version)", _in="header")
    @ns.response(200, "Saved; version bumped", SESSION)
    @ns.response(409, "Stale version: the body has current_version", ERROR)
    @errors(ns, 400, 404, 413, 422)
    def patch(self, session_id: str):
        """Autosave code and/or language, optionally guarded by the version it was based on."""
        changes = payload.json_body(SESSION_PATCH)
        expected = changes.pop("version", None)
        if expected is None:
            # 0 and "" are versions too (stale or invalid), not "no version"
            expected = request.headers.get("If-Match")
        return _with_version(sessions.autosave(session_id, changes, expected))

    @ns.response(204, "Deleted with its executions")
    @errors(ns, 404)
    def delete(self, session_id: str):
        """Delete a session and its executions."""
        sessions.delete(session_id)
        return "", 204


@ns.route("/<string:session_id>/executions")
class SessionExecutions(Resource):
    @ns.param("limit", "page size, 1..100 (default 20)", type=int)
    @ns.param("offset", "rows to skip (default 0)", type=int)
    @ns.response(200, "Executions, newest first; X-Total-Count has the total", [EXECUTION])
    @errors(ns, 400, 404)
    def get(self, session_id: str):
        """List a session's executions, newest first."""
        limit = int(payload.query_number("limit", 20, 1, 100, integer=True))
        offset = int(payload.query_number("offset", 0, 0, 10**9, integer=True))
        page, total = sessions.list_executions(session_id, limit, offset)
        return ns.marshal(page, EXECUTION), 200, {"X-Total-Count": str(total)}


@ns.route("/<string:session_id>/run")
class SessionRun(Resource):
    @ns.expect(RUN_MODEL)
    @ns.param("Idempotency-Key", "the same key on the same session returns the same execution", _in="header")
    @ns.response(202, "Queued; poll GET /executions/{id}?wait=", EXECUTION)
    @errors(ns, 400, 404, 413, 422, 429)
    def post(self, session_id: str):
        """Run the session's current code (every file of it), optionally with its own limits and arguments."""
        body = payload.json_body(RUN)
        execution, created = sessions.run(
            session_id, body.get("stdin", ""), request.headers.get("Idempotency-Key"), body.get("limits"), body.get("args")
        )
        headers = {"Location": f"/executions/{execution.id}"}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return ns.marshal(execution, EXECUTION), 202, headers
