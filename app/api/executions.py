"""One-shot runs, results, and the long-poll."""
from __future__ import annotations

from flask import current_app
from flask_restx import Namespace, Resource

from ..services import executions
from . import payload
from .responses import errors
from .schemas import EXECUTION, EXECUTION_CREATE, EXECUTION_CREATE_MODEL

PATH = "/executions"
ns = Namespace("executions", description="Runs and their results")


@ns.route("")
class ExecutionList(Resource):
    @ns.expect(EXECUTION_CREATE_MODEL)
    @ns.response(202, "Queued", EXECUTION)
    @errors(ns, 400, 413, 422, 429)
    def post(self):
        """Run code without a session: one file or several, optionally with its own limits and arguments."""
        body = payload.json_body(EXECUTION_CREATE)
        execution = executions.submit(
            body["language"], body["source_code"], body.get("stdin", ""),
            files=body.get("files"), limits=body.get("limits"), args=body.get("args"),
        )
        return ns.marshal(execution, EXECUTION), 202, {"Location": f"/executions/{execution.id}"}


@ns.route("/<string:execution_id>")
class ExecutionItem(Resource):
    @ns.param("wait", "seconds (0..30) to hold the request until the execution is terminal", type=float)
    @ns.response(200, "The execution, terminal or as it stands when the wait ends", EXECUTION)
    @errors(ns, 400, 404)
    def get(self, execution_id: str):
        """Read an execution, optionally long-polling until it ends."""
        wait = payload.query_number("wait", 0, 0, current_app.config["LONG_POLL_MAX_SECONDS"])
        execution = executions.wait(execution_id, wait) if wait else executions.get(execution_id)
        return ns.marshal(execution, EXECUTION)
