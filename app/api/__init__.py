"""The HTTP API: one flask-restx Namespace per module, Swagger UI at /docs."""
from __future__ import annotations

from flask import Flask
from flask_restx import Api

from .. import errors
from . import autosave_lane, diagnostics, events, executions, health, languages, schemas, sessions, test_suites

NAMESPACES = (sessions, executions, events, test_suites, languages, health, diagnostics)


def init_app(app: Flask) -> Api:
    api = Api(
        app,
        title="Live Code Execution Engine",
        version="1.0",
        description="Code sessions with autosave, sandboxed runs and their results. "
        'Every error is JSON: {"error": "<code>", "message": "<sentence>"}, with the status the '
        "contract names (400/422 bad input, 404, 409, 413, 429, 503). "
        "GET /metrics (outside this document) serves Prometheus metrics in the text format. "
        "Access control is optional (AUTH_ENABLED): when on, /code-sessions and /executions need "
        "`Authorization: Bearer <JWT>` (the token's sub is the user; each user sees only their own "
        "sessions and executions, anyone else's answer 404) and a missing or bad token gets 401 "
        '{"error": "unauthorized"} with WWW-Authenticate: Bearer.',
        doc="/docs",
        authorizations={
            "bearer": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": 'a JWT signed with the configured key, as "Bearer <token>"; needed only when AUTH_ENABLED',
            }
        },
        security="bearer" if app.config["AUTH_ENABLED"] else None,
    )
    api.errorhandler(Exception)(errors.as_json)
    for model in schemas.MODELS:
        api.models[model.name] = model
    for module in NAMESPACES:
        api.add_namespace(module.ns, path=module.PATH)
    # in front of Flask: an editor's plain autosave skips Flask's request machinery
    autosave_lane.init_app(app)
    return api
