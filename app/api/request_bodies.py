"""The JSON Schemas of request bodies: what each endpoint accepts, validated before a service sees it."""
from __future__ import annotations

from flask_restx import SchemaModel

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
    "properties": {
        "language": LANGUAGE, "source_code": CODE, "version": VERSION, "reason": SAVE_REASON,
        "files": {**FILES, "description": "replaces the session's whole set of other files ({} removes them)"},
    },
}
INTERACTIVE = {
    "type": "boolean",
    "description": "keep stdin open while the program runs: send it with POST /executions/{id}/stdin "
    "(stdin, if given, is its first input); the events stream says when the program waits for input",
}
RESTORE = {"type": "object", "additionalProperties": False, "properties": {"version": VERSION}}
RUN = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"stdin": STDIN, "limits": LIMITS, "args": ARGS, "interactive": INTERACTIVE},
}
EXECUTION_CREATE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["language", "source_code"],
    "properties": {
        "language": LANGUAGE,
        "source_code": CODE,
        "stdin": STDIN,
        "files": FILES,
        "limits": LIMITS,
        "args": ARGS,
        "interactive": INTERACTIVE,
        "test_suite_id": {"type": "string", "maxLength": 36, "description": "grade the code against this test suite"},
    },
}
GRADE_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["test_suite_id"],
    "properties": {"test_suite_id": {"type": "string", "maxLength": 36, "description": "the suite to grade against"}},
}
TEXT = {"type": "string"}
TEST_CASE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 200},
        "stdin": TEXT,
        "expected_output": TEXT,
        "hidden": {"type": "boolean", "description": "hidden cases never show their input or output to learners"},
        "points": {"type": "number", "minimum": 0, "maximum": 1_000_000},
        "group": {"type": ["string", "null"], "maxLength": 200},
    },
}
TEST_SUITE_CREATE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["test_cases"],
    "properties": {
        "checker": {
            "type": "object",
            "required": ["type"],
            "description": "how outputs are compared: tokens (default), exact, lines, float (abs_tolerance, "
            "rel_tolerance), unordered_lines, or program (language, source_code)",
            "properties": {
                "type": {"type": "string", "enum": ["tokens", "exact", "lines", "float", "unordered_lines", "program"]},
                "abs_tolerance": {"type": "number", "minimum": 0},
                "rel_tolerance": {"type": "number", "minimum": 0},
                "language": LANGUAGE,
                "source_code": CODE,
            },
            "additionalProperties": False,
        },
        "time_limit_ms": {"type": "integer", "minimum": 1, "description": "wall time of each case"},
        "memory_limit_bytes": {"type": ["integer", "null"], "minimum": 1, "description": "memory of each case"},
        "total_time_limit_ms": {"type": "integer", "minimum": 1, "description": "all cases together"},
        "test_cases": {"type": "array", "minItems": 1, "items": TEST_CASE},
    },
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

SESSION_CREATE_MODEL = SchemaModel("SessionCreate", SESSION_CREATE)
SESSION_PATCH_MODEL = SchemaModel("SessionPatch", SESSION_PATCH)
RUN_MODEL = SchemaModel("RunRequest", RUN)
RESTORE_MODEL = SchemaModel("RestoreRequest", RESTORE)
EXECUTION_CREATE_MODEL = SchemaModel("ExecutionCreate", EXECUTION_CREATE)
GRADE_REQUEST_MODEL = SchemaModel("GradeRequest", GRADE_REQUEST)
TEST_SUITE_CREATE_MODEL = SchemaModel("TestSuiteCreate", TEST_SUITE_CREATE)
STDIN_SEND_MODEL = SchemaModel("StdinSend", STDIN_SEND)
