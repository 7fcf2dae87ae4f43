"""Request schemas (JSON Schema, validated and shown in Swagger) and response models."""
from __future__ import annotations

import json
from datetime import datetime

from flask_restx import Model, SchemaModel, fields

LANGUAGE = {"type": "string", "minLength": 1, "maxLength": 32, "description": "a name from GET /languages"}
CODE = {"type": "string", "description": "program text; at most SOURCE_MAX_BYTES (256 KiB) as UTF-8"}
STDIN = {"type": "string", "description": "standard input of the run; at most STDIN_MAX_BYTES (256 KiB)"}
VERSION = {
    "type": ["integer", "string"],
    "description": "the version this edit is based on; a stale one gets 409 (If-Match does the same)",
}

SESSION_CREATE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"language": LANGUAGE, "source_code": CODE, "template_code": CODE},
}
SESSION_PATCH = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"language": LANGUAGE, "source_code": CODE, "version": VERSION},
}
INTERACTIVE = {
    "type": "boolean",
    "description": "keep stdin open while the program runs: send it with POST /executions/{id}/stdin "
    "(stdin, if given, is its first input); the events stream says when the program waits for input",
}
RUN = {"type": "object", "additionalProperties": False, "properties": {"stdin": STDIN, "interactive": INTERACTIVE}}
EXECUTION_CREATE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["language", "source_code"],
    "properties": {"language": LANGUAGE, "source_code": CODE, "stdin": STDIN, "interactive": INTERACTIVE},
}
STDIN_SEND = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "data": {"type": "string", "description": "text appended to the program's stdin (a line: end it with \\n)"},
        "eof": {"type": "boolean", "description": "close stdin after data: the program reads end of input"},
        "seq": {
            "type": "integer",
            "minimum": 1,
            "description": "this chunk's number in the run, from 1: a retry with the same seq and content is "
            "accepted once (202, appended false); a gap gets 409 stdin_out_of_order. Without it the "
            "chunk is numbered next (not safe to retry)",
        },
    },
}


class UtcDateTime(fields.Raw):
    """ISO 8601 in UTC with a Z, from the naive UTC the database keeps."""

    __schema_type__ = "string"
    __schema_format__ = "date-time"

    def format(self, value: datetime) -> str:
        return value.isoformat(timespec="milliseconds") + "Z"


class Transcript(fields.Raw):
    """An interactive run's transcript, from the JSON the execution row keeps."""

    __schema_type__ = "object"

    def format(self, value: str) -> dict:
        return json.loads(value)

    def schema(self) -> dict:
        # Swagger 2.0 says "may be null" only through this extension
        return {**super().schema(), "x-nullable": True}


class Limits(fields.Raw):
    """The limits a run is held to, from the JSON the execution row keeps."""

    __schema_type__ = "object"

    def format(self, value: str) -> dict:
        return json.loads(value)


ERROR = Model(
    "Error",
    {
        "error": fields.String(required=True, description="machine-readable code", example="not_found"),
        "message": fields.String(required=True, description="a sentence for people"),
    },
)
SESSION = Model(
    "CodeSession",
    {
        "session_id": fields.String(attribute="id", description="UUID"),
        "language": fields.String(example="python"),
        "source_code": fields.String(),
        "status": fields.String(example="ACTIVE"),
        "version": fields.Integer(description="bumped by every accepted PATCH", example=1),
        "created_at": UtcDateTime(),
        "updated_at": UtcDateTime(),
    },
)
EXECUTION = Model(
    "Execution",
    {
        "execution_id": fields.String(attribute="id", description="UUID"),
        "session_id": fields.String(description="null for one-shot runs"),
        "language": fields.String(example="python"),
        "status": fields.String(enum=["QUEUED", "RUNNING", "COMPLETED", "FAILED", "TIMEOUT"]),
        "stdout": fields.String(),
        "stderr": fields.String(),
        "exit_code": fields.Integer(description="the program's exit code; 128+N when killed by signal N"),
        "execution_time_ms": fields.Integer(description="wall time of the program itself"),
        "compile_time_ms": fields.Integer(description="compile step of compiled languages, else null"),
        "stdout_truncated": fields.Boolean(),
        "stderr_truncated": fields.Boolean(),
        "error": fields.String(
            description="why it did not complete: timeout, cpu_time_limit, memory_limit, process_limit, "
            "output_limit, file_size_limit, disk_limit, signal, nonzero_exit, compile_error, "
            "interrupted, sandbox_error, internal_error, cancelled (FAILED: stopped by POST cancel), "
            "input_idle_limit and interactive_time_limit (TIMEOUT: an interactive run waited for input too "
            "long, or ran past its whole-length limit); null when COMPLETED"
        ),
        "interactive": fields.Boolean(description="stdin stays open while it runs (POST /executions/{id}/stdin)"),
        "transcript": Transcript(
            description='interactive runs: {"entries": [{"stream": "stdin" | "stdout" | "stderr", "text"}], '
            '"truncated"}, in the order it happened, bounded by INTERACTIVE_TRANSCRIPT_MAX_CHARS; null for '
            "other runs and until the run ends",
        ),
        "limits": Limits(description="the limits this run was held to"),
        "queued_at": UtcDateTime(),
        "started_at": UtcDateTime(),
        "finished_at": UtcDateTime(),
    },
)
# GET /executions/{id}?include=source: the execution with what the run was given, so a past run
# can be shown beside its own code (not in lists, streams or long-polls: code is up to 256 KiB)
EXECUTION_WITH_SOURCE = EXECUTION.inherit(
    "ExecutionWithSource",
    {
        "source_code": fields.String(description="the code this run ran (the session's code when it was queued)"),
        "stdin": fields.String(description="the standard input this run was given (empty when none)"),
    },
)
SESSION_CREATE_MODEL = SchemaModel("SessionCreate", SESSION_CREATE)
SESSION_PATCH_MODEL = SchemaModel("SessionPatch", SESSION_PATCH)
RUN_MODEL = SchemaModel("RunRequest", RUN)
EXECUTION_CREATE_MODEL = SchemaModel("ExecutionCreate", EXECUTION_CREATE)
STDIN_SEND_MODEL = SchemaModel("StdinSend", STDIN_SEND)
STDIN_SENT = Model(
    "StdinSent",
    {
        "execution_id": fields.String(),
        "seq": fields.Integer(description="the number this chunk has in the run"),
        "appended": fields.Boolean(description="false when this seq had been received already (a retry)"),
        "eof": fields.Boolean(description="stdin is closed after this chunk"),
        "stdin_bytes": fields.Integer(description="the run's stdin so far, in UTF-8 bytes (the limit is STDIN_MAX_BYTES)"),
    },
)

MODELS = (
    ERROR,
    SESSION,
    EXECUTION,
    EXECUTION_WITH_SOURCE,
    SESSION_CREATE_MODEL,
    SESSION_PATCH_MODEL,
    RUN_MODEL,
    EXECUTION_CREATE_MODEL,
    STDIN_SEND_MODEL,
    STDIN_SENT,
)
