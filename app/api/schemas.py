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
SAVE_REASON = {
    "type": "string",
    "enum": ["typing", "paste"],
    "default": "typing",
    "description": "what made this edit, for the code history: typing (the default) is coalesced into the "
    "latest revision until a pause; paste always starts a new revision",
}
SESSION_PATCH = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"language": LANGUAGE, "source_code": CODE, "version": VERSION, "reason": SAVE_REASON},
}
RESTORE = {"type": "object", "additionalProperties": False, "properties": {"version": VERSION}}
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


class JsonObject(fields.Raw):
    """An object from the JSON text a row keeps (null stays null)."""

    __schema_type__ = "object"

    def format(self, value: str) -> dict:
        return json.loads(value)


class Limits(JsonObject):
    """The limits a run is held to, from the JSON the execution row keeps."""


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
        "revision": fields.Integer(
            description="the session's revision this run ran (GET /code-sessions/{id}/revisions/{revision}); "
            "null for one-shot runs",
            example=3,
        ),
        "queued_at": UtcDateTime(),
        "started_at": UtcDateTime(),
        "finished_at": UtcDateTime(),
    },
)
REVISION = Model(
    "CodeRevision",
    {
        "revision": fields.Integer(description="1, 2, 3... within the session", example=3),
        "version": fields.Integer(description="the session's version this revision holds", example=17),
        "created_at": UtcDateTime(),
        "size_bytes": fields.Integer(description="UTF-8 size of source_code"),
        "reason": fields.String(
            enum=["create", "typing", "paste", "run", "restore"],
            description="what made it; a typing revision holds the last save of a burst of typing, a run "
            "revision the exact code a run ran",
        ),
    },
)
REVISION_DETAIL = REVISION.inherit(
    "CodeRevisionDetail",
    {
        "source_code": fields.String(),
        "files": JsonObject(description="the session's files then ({name: content}); null when it had none"),
    },
)
SESSION_CREATE_MODEL = SchemaModel("SessionCreate", SESSION_CREATE)
SESSION_PATCH_MODEL = SchemaModel("SessionPatch", SESSION_PATCH)
RUN_MODEL = SchemaModel("RunRequest", RUN)
RESTORE_MODEL = SchemaModel("RestoreRequest", RESTORE)
EXECUTION_CREATE_MODEL = SchemaModel("ExecutionCreate", EXECUTION_CREATE)

MODELS = (
    ERROR,
    SESSION,
    EXECUTION,
    REVISION,
    REVISION_DETAIL,
    SESSION_CREATE_MODEL,
    SESSION_PATCH_MODEL,
    RUN_MODEL,
    RESTORE_MODEL,
    EXECUTION_CREATE_MODEL,
)
