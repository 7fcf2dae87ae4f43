"""Code sessions: create, read, autosave, delete, list runs, run."""
from __future__ import annotations

import json
from collections.abc import Callable

from flask import Response, request
from flask_restx import Namespace, Resource

from ..services import sessions
from . import payload
from .request_bodies import (
    GRADE_REQUEST,
    GRADE_REQUEST_MODEL,
    RESTORE,
    RESTORE_MODEL,
    RUN,
    RUN_MODEL,
    SESSION_CREATE,
    SESSION_CREATE_MODEL,
    SESSION_PATCH,
    SESSION_PATCH_MODEL,
)
from .responses import errors
from .schemas import ERROR, EXECUTION, REVISION, REVISION_DETAIL, SESSION, session_body

PATH = "/code-sessions"
ns = Namespace("code-sessions", description="A learner's code, autosaved as they type, and its runs")

def _with_version(session, status: int = 200) -> Response:  # noqa: ANN001
    """The session as JSON with its ETag, the bytes flask-restx's output_json would write.

    Built here, not by flask-restx: its representation layer (config lookups, make_response, header
    merging) cost more than the autosave's UPDATE (profiled)."""
    return Response(session_json(session), status, {"ETag": f'"{session.version}"'}, mimetype="application/json")


def session_json(session) -> bytes:  # noqa: ANN001 (a session or a saved row)
    """The session's answer body: what flask-restx's output_json writes for session_body."""
    return (json.dumps(session_body(session)) + "\n").encode()


def _expected_version(body: dict) -> object | None:
    """The version an edit is based on: the body's, else If-Match; None when neither is given."""
    expected = body.pop("version", None)
    if expected is None:
        # 0 and "" are versions too (stale or invalid), not "no version"
        expected = request.headers.get("If-Match")
    return expected


# a PATCH body of these fields with these types is valid by SESSION_PATCH without asking jsonschema
_PLAIN_PATCH_TYPES: dict[str, type | tuple[type, ...]] = {"source_code": str, "version": (int, str), "reason": str, "language": str}


def plain_patch(body: dict) -> bool:
    """True when body is certainly valid by SESSION_PATCH (an autosave as editors send it); anything
    else (files, odd types, unknown fields) goes through the full validator and its messages."""
    for name, value in body.items():
        wanted = _PLAIN_PATCH_TYPES.get(name)
        if wanted is None or not isinstance(value, wanted) or isinstance(value, bool):
            return False
    reason = body.get("reason", "typing")
    language = body.get("language", "python")
    return reason in ("typing", "paste") and 1 <= len(language) <= 32


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
        """Autosave code and/or language, optionally guarded by the version it was based on.

        Each save is kept in the code history (GET .../revisions): saves while typing are coalesced
        into one revision until a pause; "reason": "paste" starts a revision of its own."""
        changes = payload.json_body(SESSION_PATCH, plainly_valid=plain_patch)
        reason = changes.pop("reason", "typing")
        expected = _expected_version(changes)
        return _with_version(sessions.autosave(session_id, changes, expected, reason))

    @ns.response(204, "Deleted with its executions")
    @errors(ns, 404)
    def delete(self, session_id: str):
        """Delete a session and its executions."""
        sessions.delete(session_id)
        return "", 204


def paged(method: Callable) -> Callable:
    """The query parameters of a paged list, documented (payload.page() reads them)."""
    method = ns.param("offset", "rows to skip (default 0)", type=int)(method)
    return ns.param("limit", "page size, 1..100 (default 20)", type=int)(method)


@ns.route("/<string:session_id>/executions")
class SessionExecutions(Resource):
    @paged
    @ns.response(200, "Executions, newest first; X-Total-Count has the total", [EXECUTION])
    @errors(ns, 400, 404)
    def get(self, session_id: str):
        """List a session's executions, newest first."""
        limit, offset = payload.page()
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
            session_id, body.get("stdin", ""), request.headers.get("Idempotency-Key"), body.get("limits"), body.get("args"),
            body.get("interactive", False),
        )
        headers = {"Location": f"/executions/{execution.id}"}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return ns.marshal(execution, EXECUTION), 202, headers


@ns.route("/<string:session_id>/grade")
class SessionGrade(Resource):
    @ns.expect(GRADE_REQUEST_MODEL)
    @ns.response(202, 'Queued; an execution of kind "grade": poll GET /executions/{id}?wait= or stream its events', EXECUTION)
    @errors(ns, 400, 404, 413, 422, 429)
    def post(self, session_id: str):
        """Grade the session's current code against a test suite."""
        execution = sessions.grade(session_id, payload.json_body(GRADE_REQUEST)["test_suite_id"])
        return ns.marshal(execution, EXECUTION), 202, {"Location": f"/executions/{execution.id}"}


@ns.route("/<string:session_id>/revisions")
class SessionRevisions(Resource):
    @paged
    @ns.response(200, "Revisions, newest first; X-Total-Count has the total", [REVISION])
    @errors(ns, 400, 404)
    def get(self, session_id: str):
        """List the session's code history, newest first."""
        limit, offset = payload.page()
        page, total = sessions.list_revisions(session_id, limit, offset)
        return ns.marshal(page, REVISION), 200, {"X-Total-Count": str(total)}


@ns.route("/<string:session_id>/revisions/<int:revision>")
class SessionRevision(Resource):
    @ns.response(200, "The revision with its code", REVISION_DETAIL)
    @errors(ns, 404)
    def get(self, session_id: str, revision: int):
        """Read one revision of the session's code."""
        return ns.marshal(sessions.get_revision(session_id, revision), REVISION_DETAIL)


@ns.route("/<string:session_id>/revisions/<int:revision>/restore")
class SessionRevisionRestore(Resource):
    @ns.expect(RESTORE_MODEL)
    @ns.param("If-Match", "the version the restore is based on (same as the body's version)", _in="header")
    @ns.response(200, "Restored as a new version (and a new revision); history is kept", SESSION)
    @ns.response(409, "Stale version: the body has current_version", ERROR)
    @errors(ns, 400, 404, 409, 413, 422)
    def post(self, session_id: str, revision: int):
        """Make this revision's code the session's next version, guarded like an autosave."""
        body = payload.json_body(RESTORE)
        return _with_version(sessions.restore(session_id, revision, _expected_version(body)))
