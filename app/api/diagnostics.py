"""Diagnostics before running: problems in a program as its language's linter sees them."""
from __future__ import annotations

from flask_restx import Namespace, Resource, fields

from ..services import diagnostics
from . import payload
from .request_bodies import CODE, FILES, LANGUAGE
from .schemas import ERROR

PATH = "/diagnostics"
ns = Namespace("diagnostics", description="Problems in code before it runs (ruff, oxlint, g++ -fsyntax-only, javac)")

DIAGNOSTICS_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["language", "source_code"],
    "properties": {
        "language": LANGUAGE,
        "source_code": {**CODE, "description": "program text; at most DIAGNOSTICS_SOURCE_MAX_BYTES (64 KiB) as UTF-8"},
        "files": {**FILES, "description": "the program's other files, as a run has them: the entry file is checked "
                  "with them beside it (its #include and imports resolve)"},
    },
}
DIAGNOSTIC = ns.model(
    "Diagnostic",
    {
        "line": fields.Integer(description="1-based", example=3),
        "column": fields.Integer(description="1-based, in UTF-16 code units (an emoji counts two)", example=5),
        "end_line": fields.Integer(description="1-based"),
        "end_column": fields.Integer(description="1-based, UTF-16 code units, exclusive"),
        "severity": fields.String(enum=["error", "warning", "info"]),
        "message": fields.String(),
        "code": fields.String(description="the tool's rule code (F401, eslint(no-debugger)); null for syntax errors", example="F401"),
        "source": fields.String(description="the tool that found it", example="ruff"),
    },
)
DIAGNOSTICS = ns.model(
    "Diagnostics",
    {
        "diagnostics": fields.List(fields.Nested(DIAGNOSTIC)),
        "status": fields.String(
            enum=["ok", "unavailable", "timeout", "failed", "busy"],
            description="ok: the tool checked the code. Otherwise diagnostics is empty and this says why: "
            "unavailable (no tool for this language here), timeout or failed (the tool gave up on this "
            "input, or crashed), busy (every diagnostics slot was taken; try again)",
        ),
        "tool": fields.String(description="the tool asked; null when there is none", example="ruff"),
        "duration_ms": fields.Integer(description="time spent checking, sandbox included"),
    },
)
DIAGNOSTICS_REQUEST_MODEL = ns.schema_model("DiagnosticsRequest", DIAGNOSTICS_REQUEST)


@ns.route("")
class DiagnosticsCheck(Resource):
    @ns.expect(DIAGNOSTICS_REQUEST_MODEL)
    @ns.response(200, "The problems found (empty when none, or when the tool could not answer: see status)", DIAGNOSTICS)
    @ns.response(413, "Code too large", ERROR)
    @ns.response(422, "Invalid field or unknown language", ERROR)
    def post(self):
        """Check code without running it: the problems its language's linter or compiler reports."""
        body = payload.json_body(DIAGNOSTICS_REQUEST)
        return ns.marshal(diagnostics.check(body["language"], body["source_code"], body.get("files")), DIAGNOSTICS)
