"""The live events of an execution, as Server-Sent Events."""
from __future__ import annotations

from flask import request
from flask_restx import Namespace, Resource, marshal

from ..services import events as event_streams
from .responses import errors
from .schemas import ERROR, EXECUTION

PATH = "/executions"
ns = Namespace("events", description="Live feedback: an execution's status and output as they happen")


@ns.route("/<string:execution_id>/events")
class ExecutionEvents(Resource):
    # errors before the stream starts are JSON, like every other error
    @ns.produces(["text/event-stream", "application/json"])
    @ns.param("Last-Event-ID", "the id of the last event seen: a reconnect resumes after it", _in="header")
    @ns.param("last_event_id", "the same as the Last-Event-ID header, for clients that cannot set it")
    @ns.response(
        200,
        "text/event-stream. Events: `status` {status} at connect and at each transition; `stdout` and "
        "`stderr` {text} chunks in the order the program wrote them, coalesced: each goes out at most "
        "OUTPUT_FLUSH_SECONDS (20 ms) after its first byte and holds at most OUTPUT_EVENT_MAX_CHARS (16 KiB), "
        "so a print loop is a few dozen events a second, not thousands; `final`, the whole execution as "
        "GET /executions/{id} gives it, after which the stream ends (close the EventSource). Interactive "
        "runs add `stdin` {text}, input as it reaches the program, and `stdin_wanted` {prompt}, sent when "
        "the program is blocked reading an empty stdin (prompt: its stdout after the last newline). Chunks and "
        "transitions seen live carry ids; resume with Last-Event-ID. Comments keep an idle stream alive.",
    )
    @ns.response(400, "Last-Event-ID is not an id this stream sent", ERROR)
    @ns.response(503, "Too many open streams or the database busy (Retry-After); long-poll GET /executions/{id}?wait= instead", ERROR)
    @errors(ns, 400, 404)
    def get(self, execution_id: str):
        """Stream an execution's status changes and output as they happen, then its result."""
        last_seen = request.headers.get("Last-Event-ID", request.args.get("last_event_id"))
        return event_streams.open_stream(execution_id, last_seen, lambda execution: marshal(execution, EXECUTION))
