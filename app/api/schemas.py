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
RUN = {"type": "object", "additionalProperties": False, "properties": {"stdin": STDIN}}
EXECUTION_CREATE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["language", "source_code"],
    "properties": {"language": LANGUAGE, "source_code": CODE, "stdin": STDIN},
}


class UtcDateTime(fields.Raw):
    """ISO 8601 in UTC with a Z, from the naive UTC the database keeps."""

    __schema_type__ = "string"
    __schema_format__ = "date-time"

    def format(self, value: datetime) -> str:
        return value.isoformat(timespec="milliseconds") + "Z"


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
            "interrupted, sandbox_error, internal_error; null when COMPLETED"
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

MODELS = (
    ERROR,
    SESSION,
    EXECUTION,
    EXECUTION_WITH_SOURCE,
    SESSION_CREATE_MODEL,
    SESSION_PATCH_MODEL,
    RUN_MODEL,
    EXECUTION_CREATE_MODEL,
)
