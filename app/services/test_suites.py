"""Test suites: storing them (operators only when access control is on), reading them with hidden cases
kept hidden, and handing one to the grader as plain data."""
from __future__ import annotations

import json

from flask import current_app

from .. import auth, catalog
from ..storage.retry import retrying
from ..errors import APIError
from ..storage.database import db
from ..grading import checkers
from ..storage.models import TestSuite


def invalid(message: str) -> APIError:
    return APIError("invalid_test_suite", message, 422)


def create(body: dict) -> TestSuite:
    """Check a suite against the configured bounds and store it."""
    auth.require_operator("create test suites")
    config = current_app.config
    checker = _checker(body.get("checker") or {"type": checkers.DEFAULT})
    time_limit_ms = _bounded(body, "time_limit_ms", config["GRADE_TIME_LIMIT_MS"], config["GRADE_MAX_TIME_LIMIT_MS"])
    total_ms = _bounded(
        body, "total_time_limit_ms", config["GRADE_TOTAL_TIME_LIMIT_MS"], config["GRADE_MAX_TOTAL_TIME_LIMIT_MS"]
    )
    memory = body.get("memory_limit_bytes")
    if memory is not None and not 1024 * 1024 <= memory <= config["GRADE_MAX_MEMORY_BYTES"]:
        raise invalid(f"memory_limit_bytes must be from 1048576 to {config['GRADE_MAX_MEMORY_BYTES']}.")
    cases = body["test_cases"]
    if len(cases) > config["GRADE_MAX_CASES"]:
        raise invalid(f"A suite has at most {config['GRADE_MAX_CASES']} test cases; this one has {len(cases)}.")
    limit = int(config["GRADE_CASE_IO_MAX_BYTES"])
    stored = []
    for index, case in enumerate(cases):
        for field in ("stdin", "expected_output"):
            if len(case.get(field, "").encode()) > limit:
                raise invalid(f"test_cases.{index}.{field} is larger than the limit of {limit} bytes.")
        stored.append(
            {
                "name": case.get("name") or f"Test {index + 1}",
                "stdin": case.get("stdin", ""),
                "expected_output": case.get("expected_output", ""),
                "hidden": bool(case.get("hidden", False)),
                "points": float(case.get("points", 1)),
                "group": case.get("group"),
            }
        )

    def insert() -> TestSuite:
        suite = TestSuite(
            checker=json.dumps(checker),
            time_limit_ms=time_limit_ms,
            memory_limit_bytes=memory,
            total_time_limit_ms=total_ms,
            cases=json.dumps(stored),
            owner_user_id=auth.current_user_id(),
        )
        db.session.add(suite)
        db.session.commit()
        return suite

    return retrying(insert)


def _bounded(body: dict, name: str, default: int, most: int) -> int:
    value = body.get(name)
    if value is None:
        return int(min(default, most))
    if not 1 <= value <= most:
        raise invalid(f"{name} must be from 1 to {most}.")
    return int(value)


def _checker(checker: dict) -> dict:
    kind = checker.get("type", checkers.DEFAULT)
    if kind not in checkers.TYPES:
        raise invalid(f"checker.type must be one of {', '.join(checkers.TYPES)}; got {kind!r}.")
    if kind == "float":
        for name in ("abs_tolerance", "rel_tolerance"):
            value = checker.get(name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0):
                raise invalid(f"checker.{name} must be a number from 0 up.")
    if kind == checkers.PROGRAM:
        source = checker.get("source_code")
        if not isinstance(source, str) or not source.strip():
            raise invalid("A program checker needs its source_code.")
        most = int(current_app.config["GRADE_CHECKER_MAX_BYTES"])
        if len(source.encode()) > most:
            raise invalid(f"checker.source_code is larger than the limit of {most} bytes.")
        try:
            catalog.language_named(str(checker.get("language", "")))
        except APIError as error:
            raise invalid(f"checker.language: {error.message}") from None
    return {"type": kind, **{key: value for key, value in checker.items() if key != "type"}}


def get(suite_id: str) -> TestSuite:
    suite = db.session.get(TestSuite, suite_id)
    if suite is None:
        raise APIError("not_found", f"No test suite {suite_id}.", 404)
    return suite


def render(suite: TestSuite) -> dict:
    """The suite as the API shows it to this caller: hidden cases without their input and output
    unless the caller is an operator (or access control is off)."""
    operator = auth.is_operator()
    checker = json.loads(suite.checker)
    if checker.get("type") == checkers.PROGRAM and not operator:
        # the checker program may hold the answers
        checker = {"type": checkers.PROGRAM, "language": checker.get("language")}
    cases = []
    for index, case in enumerate(json.loads(suite.cases)):
        shown = {"index": index, "name": case["name"], "hidden": case["hidden"], "points": case["points"], "group": case["group"]}
        if operator or not case["hidden"]:
            shown.update(stdin=case["stdin"], expected_output=case["expected_output"])
        cases.append(shown)
    return {
        "test_suite_id": suite.id,
        "checker": checker,
        "time_limit_ms": suite.time_limit_ms,
        "memory_limit_bytes": suite.memory_limit_bytes,
        "total_time_limit_ms": suite.total_time_limit_ms,
        "created_at": suite.created_at.isoformat(timespec="milliseconds") + "Z",
        "test_cases": cases,
    }

