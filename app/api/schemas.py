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

FILES = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "the program's other files beside source_code (the entry file), name -> content: a plain "
    "name or a relative path (no '..', no leading '/' or '.'), at most FILES_MAX_COUNT (16) files and "
    "FILES_MAX_BYTES (256 KiB) together; compiled languages compile every source among them",
    "example": {"util.py": "def greet(name):\n    return f'Hello, {name}!'\n"},
}
LIMITS = {
    "type": "object",
    "additionalProperties": False,
    "description": "this run's own limits, each at most the language's max_limits in GET /languages (else 422 "
    "limit_too_high); the rest stay at their defaults",
    "properties": {
        "timeout_seconds": {"type": "number", "minimum": 0.1, "description": "wall clock (CPU time follows it)"},
        "memory_bytes": {"type": "integer", "minimum": 16 * 1024 * 1024},
        "processes": {"type": "integer", "minimum": 1, "description": "processes and threads together"},
        "output_bytes": {"type": "integer", "minimum": 1, "description": "per stream"},
    },
}
ARGS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "command-line arguments of the program, at most RUN_ARGS_MAX_COUNT (32) and RUN_ARGS_MAX_BYTES "
    "(8 KiB) together",
}

SESSION_CREATE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"language": LANGUAGE, "source_code": CODE, "template_code": CODE, "files": FILES},
}
SESSION_PATCH = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "language": LANGUAGE, "source_code": CODE, "version": VERSION,
        "files": {**FILES, "description": "replaces the session's whole set of other files ({} removes them)"},
    },
}
RUN = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"stdin": STDIN, "limits": LIMITS, "args": ARGS},
}
EXECUTION_CREATE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["language", "source_code"],
    "properties": {
        "language": LANGUAGE, "source_code": CODE, "stdin": STDIN, "files": FILES, "limits": LIMITS, "args": ARGS,
    },
}


class UtcDateTime(fields.Raw):
    """ISO 8601 in UTC with a Z, from the naive UTC the database keeps."""

    __schema_type__ = "string"
    __schema_format__ = "date-time"

    def format(self, value: datetime) -> str:
        return value.isoformat(timespec="milliseconds") + "Z"


class JsonText(fields.Raw):
    """A JSON value a column keeps as text; `empty` when the column is null."""

    def __init__(self, empty: object, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.empty = empty
        self.__schema_type__ = "object" if isinstance(empty, dict) else "array"

    def output(self, key, obj, ordered=False, **kwargs):  # noqa: ANN001, ANN201
        value = fields.get_value(key if self.attribute is None else self.attribute, obj)
        return json.loads(value) if value else self.empty

    def schema(self) -> dict:
        schema = super().schema()
        if schema["type"] == "array":
            schema["items"] = {"type": "string"}
        return schema


class FileNames(fields.Raw):
    """The names of the files a run had beside its entry file, from the JSON the execution row keeps."""

    __schema_type__ = "array"

    def output(self, key, obj, ordered=False, **kwargs):  # noqa: ANN001, ANN201
        value = fields.get_value(key if self.attribute is None else self.attribute, obj)
        return sorted(json.loads(value)) if value else []

    def schema(self) -> dict:
        return {**super().schema(), "items": {"type": "string"}}


class Limits(fields.Raw):
    """The limits a run is held to, from the JSON the execution row keeps."""

    __schema_type__ = "object"

    def format(self, value: str) -> dict:
        return json.loads(value)


def nullable(field: fields.Raw) -> fields.Raw:
    """field, marked in the document as one that may be null (Swagger 2's x-nullable)."""
    schema = field.schema
    field.schema = lambda: {**schema(), "x-nullable": True}
    return field


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
        "files": JsonText(
            {}, description="the program's other files beside source_code, name -> content ({} when none)",
        ),
        "created_at": UtcDateTime(),
        "updated_at": UtcDateTime(),
    },
)
EXECUTION = Model(
    "Execution",
    {
        "execution_id": fields.String(attribute="id", description="UUID"),
        "session_id": nullable(fields.String(description="null for one-shot runs")),
        "language": fields.String(example="python"),
        "status": fields.String(enum=["QUEUED", "RUNNING", "COMPLETED", "FAILED", "TIMEOUT"]),
        "stdout": fields.String(),
        "stderr": fields.String(),
        "exit_code": nullable(fields.Integer(description="the program's exit code; 128+N when killed by signal N")),
        "execution_time_ms": nullable(fields.Integer(description="wall time of the program itself")),
        "compile_time_ms": nullable(fields.Integer(description="compile step of compiled languages, else null")),
        "stdout_truncated": fields.Boolean(),
        "stderr_truncated": fields.Boolean(),
        "error": nullable(fields.String(
            description="why it did not complete: timeout, cpu_time_limit, memory_limit, process_limit, "
            "output_limit, file_size_limit, disk_limit, signal, nonzero_exit, compile_error, "
            "interrupted, sandbox_error, internal_error; null when COMPLETED"
        )),
        "limits": Limits(description="the limits this run was held to"),
        "file_names": FileNames(
            attribute="files", description="the files the run had beside its entry file ([] when none); "
            "their contents are kept with the execution"
        ),
        "args": JsonText([], description="the command-line arguments it ran with ([] when none)"),
        "queued_at": UtcDateTime(),
        "started_at": nullable(UtcDateTime()),
        "finished_at": nullable(UtcDateTime()),
    },
)
LANGUAGE_INFO = Model(
    "Language",
    {
        "name": fields.String(description="what `language` takes", example="cpp"),
        "display_name": fields.String(description="for pickers, with the toolchain's version", example="C++17 (g++ 12)"),
        "version": nullable(fields.String(description="read from the toolchain; null if it did not say", example="12.2.0")),
        "source_file": fields.String(description="the entry file's name in the working directory", example="main.cpp"),
        "extension": fields.String(example="cpp"),
        "compiles": fields.Boolean(description="true when a compile step runs first (its result is cached)"),
        "limits": fields.Raw(description="the limits a run gets by default"),
        "max_limits": fields.Raw(
            description="the most a run may ask for in `limits`: timeout_seconds, memory_bytes, processes, output_bytes"
        ),
        "interactive": fields.Boolean(description="stdin may stay open while it runs"),
        "multi_file": fields.Boolean(description="`files` sit beside the entry file and are compiled or imported"),
        "graded": fields.Boolean(description="graded runs support it"),
        "args": fields.Boolean(description="the program receives `args` (false: 422 args_not_supported)"),
        "template": fields.String(description="starting code for an editor: a hello world"),
    },
)
LANGUAGE_LIST = Model(
    "LanguageList",
    {
        "languages": fields.List(fields.Nested(LANGUAGE_INFO)),
        "isolation": fields.Raw(description="what confines a run on this host"),
    },
)
SESSION_CREATE_MODEL = SchemaModel("SessionCreate", SESSION_CREATE)
SESSION_PATCH_MODEL = SchemaModel("SessionPatch", SESSION_PATCH)
RUN_MODEL = SchemaModel("RunRequest", RUN)
EXECUTION_CREATE_MODEL = SchemaModel("ExecutionCreate", EXECUTION_CREATE)

MODELS = (
    ERROR,
    LANGUAGE_INFO,
    LANGUAGE_LIST,
    SESSION,
    EXECUTION,
    SESSION_CREATE_MODEL,
    SESSION_PATCH_MODEL,
    RUN_MODEL,
    EXECUTION_CREATE_MODEL,
)
