"""Response models: what each endpoint answers, as the Swagger document shows it. Request bodies
are app/api/request_bodies.py's; the field types these use, app/api/field_types.py's."""
from __future__ import annotations

import json
from datetime import datetime

from flask_restx import Model, fields

from .field_types import FileNames, JsonObject, JsonText, Limits, Transcript, UtcDateTime, nullable
from .request_bodies import (
    EXECUTION_CREATE_MODEL,
    GRADE_REQUEST_MODEL,
    RESTORE_MODEL,
    RUN_MODEL,
    SESSION_CREATE_MODEL,
    SESSION_PATCH_MODEL,
    STDIN_SEND_MODEL,
    TEST_SUITE_CREATE_MODEL,
)

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


def session_body(session: object) -> dict:
    """What marshal(session, SESSION) gives, field for field, built directly: every autosave answers
    with it, and flask-restx's generic marshalling (each field probed by attribute, then by key)
    cost more than the save's UPDATE (profiled: ~300 us against ~20 us)."""
    files = session.files  # type: ignore[attr-defined]
    return {
        "session_id": _text(session.id),  # type: ignore[attr-defined]
        "language": _text(session.language),  # type: ignore[attr-defined]
        "source_code": _text(session.source_code),  # type: ignore[attr-defined]
        "status": _text(session.status),  # type: ignore[attr-defined]
        "version": None if session.version is None else int(session.version),  # type: ignore[attr-defined]
        "files": json.loads(files) if files else {},
        "created_at": _utc(session.created_at),  # type: ignore[attr-defined]
        "updated_at": _utc(session.updated_at),  # type: ignore[attr-defined]
    }


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _utc(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds") + "Z"


TEST_RESULT = Model(
    "TestResult",
    {
        "index": fields.Integer(description="the case's position in the suite, from 0"),
        "name": fields.String(),
        "hidden": fields.Boolean(),
        "verdict": fields.String(enum=["PASSED", "WRONG_ANSWER", "RUNTIME_ERROR", "TIME_LIMIT", "MEMORY_LIMIT", "OUTPUT_LIMIT", "SKIPPED"]),
        "points": fields.Float(),
        "max_points": fields.Float(),
        "time_ms": fields.Integer(description="wall time of the case; null when it did not run"),
        "memory_bytes": fields.Integer(description="max RSS of the case; null when it did not run"),
        "message": fields.String(description="why, in words; a generic one for a hidden case"),
        "stdin": fields.String(description="visible cases only (absent from a hidden case)"),
        "expected_output": fields.String(description="visible cases only (absent from a hidden case)"),
        "actual_output": fields.String(description="visible cases only, capped at GRADE_SHOWN_OUTPUT_BYTES; null when not run"),
        "diff": fields.Raw(description='visible cases only: {"line", "expected", "actual"} where the outputs first differ, or null'),
    },
)
GRADE = Model(
    "Grade",
    {
        "verdict": fields.String(description="the worst of the tests' verdicts"),
        "score": fields.Float(),
        "max_score": fields.Float(),
        "passed": fields.Integer(),
        "total": fields.Integer(),
        "complete": fields.Boolean(description="false when some test was not run or not judged"),
        "tests": fields.List(fields.Nested(TEST_RESULT)),
    },
)


class GradeField(fields.Nested):
    """A graded run's result from the JSON the execution row keeps, as stored: a hidden test's
    object carries only its public keys (marshalling would add the others as nulls)."""

    def output(self, key, obj, ordered=False, **kwargs):  # noqa: ANN001, ANN201
        value = fields.get_value(key if self.attribute is None else self.attribute, obj)
        return None if value is None else json.loads(value)


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
            "interrupted, sandbox_error, internal_error, cancelled (FAILED: stopped by POST cancel), "
            "input_idle_limit and interactive_time_limit (TIMEOUT: an interactive run waited for input too "
            "long, or ran past its whole-length limit); null when COMPLETED"
        )),
        "limits": Limits(description="the limits this run was held to (a graded run: each case's)"),
        "file_names": FileNames(
            attribute="files", description="the files the run had beside its entry file ([] when none); "
            "their contents are kept with the execution"
        ),
        "args": JsonText([], description="the command-line arguments it ran with ([] when none)"),
        "kind": fields.String(enum=["run", "grade"], description="a plain run, or a run graded against a test suite"),
        "test_suite_id": nullable(fields.String(description="the suite of a graded run; null for a plain run")),
        "grade": GradeField(
            GRADE,
            allow_null=True,
            description='a graded run\'s result, null otherwise and until it ends: {"verdict", "score", "max_score", '
            '"passed", "total", "complete", "tests": [TestResult]}. verdict is the worst of the tests\' by the '
            "priority RUNTIME_ERROR, MEMORY_LIMIT, TIME_LIMIT, OUTPUT_LIMIT, WRONG_ANSWER, SKIPPED, PASSED; "
            "complete is false when some test was not run or not judged"
        ),
        "interactive": fields.Boolean(description="stdin stays open while it runs (POST /executions/{id}/stdin)"),
        "transcript": Transcript(
            description='interactive runs: {"entries": [{"stream": "stdin" | "stdout" | "stderr", "text"}], '
            '"truncated"}, in the order it happened, bounded by INTERACTIVE_TRANSCRIPT_MAX_CHARS; null for '
            "other runs and until the run ends",
        ),
        "revision": nullable(fields.Integer(
            description="the session's revision this run ran (GET /code-sessions/{id}/revisions/{revision}); "
            "null for one-shot runs",
            example=3,
        )),
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
TEST_CASE_OUT = Model(
    "TestCase",
    {
        "index": fields.Integer(),
        "name": fields.String(),
        "hidden": fields.Boolean(),
        "points": fields.Float(),
        "group": nullable(fields.String(description="null when the case has none")),
        "stdin": fields.String(description="absent for a hidden case unless the caller is an operator"),
        "expected_output": fields.String(description="absent for a hidden case unless the caller is an operator"),
    },
)
TEST_SUITE = Model(
    "TestSuite",
    {
        "test_suite_id": fields.String(description="UUID"),
        "checker": fields.Raw(description='{"type", options}; a program checker\'s source only for operators'),
        "time_limit_ms": fields.Integer(),
        "memory_limit_bytes": nullable(fields.Integer(description="null: the language's own limit")),
        "total_time_limit_ms": fields.Integer(),
        "created_at": fields.String(),
        "test_cases": fields.List(fields.Nested(TEST_CASE_OUT)),
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
    LANGUAGE_INFO,
    LANGUAGE_LIST,
    SESSION,
    EXECUTION,
    EXECUTION_WITH_SOURCE,
    REVISION,
    REVISION_DETAIL,
    SESSION_CREATE_MODEL,
    SESSION_PATCH_MODEL,
    RUN_MODEL,
    RESTORE_MODEL,
    EXECUTION_CREATE_MODEL,
    GRADE_REQUEST_MODEL,
    TEST_SUITE_CREATE_MODEL,
    TEST_RESULT,
    GRADE,
    TEST_CASE_OUT,
    TEST_SUITE,
    STDIN_SEND_MODEL,
    STDIN_SENT,
)
