"""The OpenAPI document tells the truth: a property-based fuzzer's requests get the statuses, content
types and bodies the document promises, and never a server error."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app

# enough to reach every documented status of every operation, in well under a minute
EXAMPLES_PER_OPERATION = 60
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def engine_schema(tmp_path_factory):
    """The engine's own /swagger.json, called in process; runs stay QUEUED (this checks the API, not the sandbox)."""
    database = tmp_path_factory.mktemp("openapi") / "engine.db"
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
            "RUNNER_ENABLED": False,
            "RUNS_PER_MINUTE_PER_SESSION": 1_000_000,
            "ACTIVE_RUNS_PER_SESSION": 1_000_000,
        }
    )
    yield schemathesis.openapi.from_wsgi("/swagger.json", app)
    app.extensions["engine"].runner.shutdown()


def test_every_answer_is_documented(engine_schema):
    failures = {}
    for found in engine_schema.get_all_operations():
        operation = found.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def conforms(case):
            case.call_and_validate(checks=CHECKS)

        try:
            conforms()
        except Exception as failure:  # noqa: BLE001 (every operation is tried; all failures are reported)
            failures[operation.label] = str(failure)
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
