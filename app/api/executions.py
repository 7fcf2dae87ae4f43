"""One-shot runs, results, and the long-poll."""
from __future__ import annotations

from flask import current_app
from flask_restx import Namespace, Resource

from ..services import executions, interactive
from . import payload
from .responses import errors
from .request_bodies import EXECUTION_CREATE, EXECUTION_CREATE_MODEL, STDIN_SEND, STDIN_SEND_MODEL
from .schemas import ERROR, EXECUTION, EXECUTION_WITH_SOURCE, STDIN_SENT

PATH = "/executions"
ns = Namespace("executions", description="Runs and their results")

@ns.route("")
class ExecutionList(Resource):
    @ns.expect(EXECUTION_CREATE_MODEL)
    @ns.response(202, "Queued", EXECUTION)
    @errors(ns, 400, 413, 422, 429)
    def post(self):
        """Run code without a session: one file or several, optionally with its own limits and arguments
        (with test_suite_id: a graded run of kind "grade")."""
        body = payload.json_body(EXECUTION_CREATE)
        execution = executions.submit(
            body["language"], body["source_code"], body.get("stdin", ""),
            files=body.get("files"), limits=body.get("limits"), args=body.get("args"),
            test_suite_id=body.get("test_suite_id"), interactive=body.get("interactive", False),
        )
        return ns.marshal(execution, EXECUTION), 202, {"Location": f"/executions/{execution.id}"}


@ns.route("/<string:execution_id>")
class ExecutionItem(Resource):
    @ns.param("wait", "seconds (0..30) to hold the request until the execution is terminal", type=float)
    @ns.param("include", "`source`: add the run's source_code and stdin (to show a past run beside its code)", enum=["source"])
    @ns.response(200, "The execution, terminal or as it stands when the wait ends", EXECUTION_WITH_SOURCE)
    @errors(ns, 400, 404)
    def get(self, execution_id: str):
        """Read an execution, optionally long-polling until it ends."""
        wait = payload.query_number("wait", 0, 0, current_app.config["LONG_POLL_MAX_SECONDS"])
        model = EXECUTION_WITH_SOURCE if payload.query_choice("include", ("source",)) else EXECUTION
        execution = executions.wait(execution_id, wait) if wait else executions.get(execution_id)
        return ns.marshal(execution, model)


@ns.route("/<string:execution_id>/cancel")
class ExecutionCancel(Resource):
    @ns.response(202, "Stopping: a QUEUED run is FAILED (cancelled) already, a RUNNING one within a fraction of a second", EXECUTION)
    @ns.response(409, "already_finished: the execution has already ended", ERROR)
    @errors(ns, 404, 409)
    def post(self, execution_id: str):
        """Stop a queued or running execution; it ends FAILED with error "cancelled", keeping its output so far."""
        return ns.marshal(interactive.cancel(execution_id), EXECUTION), 202


@ns.route("/<string:execution_id>/stdin")
class ExecutionStdinSend(Resource):
    @ns.expect(STDIN_SEND_MODEL)
    @ns.response(202, "Appended (or, for a seq already received, accepted again without appending)", STDIN_SENT)
    @ns.response(
        409,
        "not_running (not an interactive run, or not RUNNING), stdin_closed (after eof), "
        "stdin_out_of_order (a seq gap; expected_seq says the next), stdin_conflict (a seq resent with other data)",
        ERROR,
    )
    @ns.response(413, "stdin_too_large: past STDIN_MAX_BYTES for the whole run", ERROR)
    @errors(ns, 400, 404, 409, 413, 422)
    def post(self, execution_id: str):
        """Send stdin to a running interactive execution, in order; eof closes it."""
        body = payload.json_body(STDIN_SEND)
        sent = interactive.send(execution_id, body.get("data", ""), body.get("eof", False), body.get("seq"))
        return ns.marshal(sent, STDIN_SENT), 202
