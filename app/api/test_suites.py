"""Test suites: the cases a graded run is checked against."""
from __future__ import annotations

from flask_restx import Namespace, Resource

from ..services import test_suites
from . import payload
from .responses import errors
from .request_bodies import TEST_SUITE_CREATE, TEST_SUITE_CREATE_MODEL
from .schemas import ERROR, TEST_SUITE

PATH = "/test-suites"
ns = Namespace("test-suites", description="Test cases, a checker and limits for graded runs")

@ns.route("")
class TestSuiteList(Resource):
    @ns.expect(TEST_SUITE_CREATE_MODEL)
    @ns.response(201, "Created", TEST_SUITE)
    @ns.response(422, "invalid_test_suite: a bad checker, limit or case, or past a configured bound", ERROR)
    @errors(ns, 400, 403, 413, 422)
    def post(self):
        """Store a test suite (with access control on, operators only)."""
        suite = test_suites.create(payload.json_body(TEST_SUITE_CREATE, error="invalid_test_suite"))
        return test_suites.render(suite), 201, {"Location": f"/test-suites/{suite.id}"}


@ns.route("/<string:test_suite_id>")
class TestSuiteItem(Resource):
    @ns.response(200, "The suite; hidden cases without stdin and expected_output unless the caller is an operator", TEST_SUITE)
    @errors(ns, 404)
    def get(self, test_suite_id: str):
        """Read a test suite."""
        return test_suites.render(test_suites.get(test_suite_id))
