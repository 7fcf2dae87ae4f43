"""Every failure is JSON {"error", "message"} with the contract's status, and no input produces a 500."""
from __future__ import annotations

import uuid

import pytest

CORE_PATHS = {
    "/code-sessions",
    "/code-sessions/{session_id}",
    "/code-sessions/{session_id}/executions",
    "/code-sessions/{session_id}/run",
    "/executions",
    "/executions/{execution_id}",
    "/languages",
    "/health",
    "/health/db",
    "/health/workers",
}


def assert_error(rv, status: int, error: str | None = None) -> None:
    assert rv.status_code == status, rv.get_data()[:300]
    assert rv.is_json, rv.get_data()[:300]
    assert isinstance(rv.json["error"], str) and rv.json["error"]
    assert isinstance(rv.json["message"], str) and rv.json["message"]
    if error is not None:
        assert rv.json["error"] == error


@pytest.fixture
def session_id(client) -> str:
    rv = client.post("/code-sessions", json={"source_code": "print(1)"})
    assert rv.status_code == 201
    return rv.json["session_id"]


@pytest.fixture
def small_client(config, request):
    """A client of an engine that takes bodies of at most 4 KiB."""
    config["MAX_CONTENT_LENGTH"] = 4 * 1024
    return request.getfixturevalue("client")


def json_endpoints(session_id: str) -> list[tuple[str, str]]:
    return [
        ("POST", "/code-sessions"),
        ("PATCH", f"/code-sessions/{session_id}"),
        ("POST", f"/code-sessions/{session_id}/run"),
        ("POST", "/executions"),
    ]


@pytest.mark.parametrize("path", ["/nope", "/code-sessions/x/y/z", "/executions/x/stdout", "/api/v1/health"])
def test_an_unknown_path_is_a_json_404(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    "method, path",
    [
        ("PUT", "/code-sessions/{sid}"),
        ("POST", "/code-sessions/{sid}"),
        ("DELETE", "/code-sessions"),
        ("GET", "/code-sessions/{sid}/run"),
        ("PATCH", "/executions/{sid}"),
        ("DELETE", "/executions/{sid}"),
        ("GET", "/executions"),
        ("POST", "/health"),
        ("DELETE", "/languages"),
    ],
)
def test_a_wrong_method_is_a_json_405(client, session_id, method, path):
    rv = client.open(path.format(sid=session_id), method=method)
    assert_error(rv, 405, "method_not_allowed")


@pytest.mark.parametrize("body", ['{"language": "python"', "{'language': 'python'}", "language=python", "{,}", "\x00"])
def test_malformed_json_is_a_400(client, session_id, body):
    for method, path in json_endpoints(session_id):
        rv = client.open(path, method=method, data=body, content_type="application/json")
        assert_error(rv, 400, "invalid_json")


@pytest.mark.parametrize("body", ["[]", '["python"]', '"python"', "42", "null", "true"])
def test_json_that_is_not_an_object_is_a_400(client, session_id, body):
    for method, path in json_endpoints(session_id):
        rv = client.open(path, method=method, data=body, content_type="application/json")
        assert_error(rv, 400, "invalid_json")


def test_a_body_over_the_limit_is_a_413(small_client):
    rv = small_client.post("/code-sessions", json={"source_code": "print(1)"})
    assert rv.status_code == 201
    session_id = rv.json["session_id"]

    big = {"source_code": "#" * 8 * 1024}
    for method, path in json_endpoints(session_id):
        rv = small_client.open(path, method=method, json={**big, "language": "python"})
        assert_error(rv, 413, "payload_too_large")
    assert small_client.get(f"/code-sessions/{session_id}").json["version"] == 1


def test_an_unknown_language_is_a_422(client, session_id):
    assert_error(client.post("/code-sessions", json={"language": "cobol"}), 422, "unknown_language")
    assert_error(client.patch(f"/code-sessions/{session_id}", json={"language": "cobol"}), 422, "unknown_language")
    rv = client.post("/executions", json={"language": "cobol", "source_code": "x"})
    assert_error(rv, 422, "unknown_language")


def test_unknown_ids_are_a_json_404(client):
    missing = uuid.uuid4()
    assert_error(client.get(f"/code-sessions/{missing}"), 404, "not_found")
    assert_error(client.patch(f"/code-sessions/{missing}", json={}), 404, "not_found")
    assert_error(client.delete(f"/code-sessions/{missing}"), 404, "not_found")
    assert_error(client.get(f"/code-sessions/{missing}/executions"), 404, "not_found")
    assert_error(client.post(f"/code-sessions/{missing}/run"), 404, "not_found")
    assert_error(client.get(f"/executions/{missing}"), 404, "not_found")


def test_docs_serve_swagger_ui_and_the_document_lists_every_path(client):
    rv = client.get("/docs")
    assert rv.status_code == 200
    assert rv.mimetype == "text/html"
    assert b"swagger" in rv.get_data().lower()
    assert b"swagger.json" in rv.get_data()

    rv = client.get("/swagger.json")
    assert rv.status_code == 200
    paths = rv.json["paths"]
    assert CORE_PATHS <= set(paths)
    assert {"get", "patch", "delete"} <= set(paths["/code-sessions/{session_id}"])
    assert "post" in paths["/code-sessions/{session_id}/run"]
    assert "post" in paths["/executions"]
    assert "get" in paths["/executions/{execution_id}"]


def problems_with(rv, what: object) -> list[str]:
    """Why a response to garbage breaks the contract (a 5xx, or an error that is not {"error", "message"})."""
    if rv.status_code >= 500 or not rv.is_json:
        return [f"{what!r}: {rv.status_code} {rv.get_data()[:200]!r}"]
    if rv.status_code >= 400 and not (isinstance(rv.json, dict) and rv.json.get("error") and rv.json.get("message")):
        return [f"{what!r}: {rv.status_code} without an error body: {rv.get_data()[:200]!r}"]
    return []


GARBAGE_BODIES = [
    b"\xff\xfe\xfd\xfc",
    b'{"source_code": "\xff\xfe"}',
    b'{"language": "python", "source_code": "\\ud800", "stdin": "\\udfff"}',
    b'{"language": "python", "source_code": "print(1)", "stdin": "\\ud83d"}',
    b"[" * 100_000,
    b'{"a":' * 50_000,
    b'{"version": 1e999, "language": "python", "source_code": "1"}',
    b'{"version": 123456789012345678901234567890}',
    b'{"version": -123456789012345678901234567890}',
    b'{"version": "123456789012345678901234567890"}',
    b'{"version": null}',
    b'{"version": [1]}',
    b'{"version": true}',
    b'{"language": null, "source_code": null, "stdin": null}',
    b'{"language": [], "source_code": {}, "stdin": 1.5}',
    b'{"language": "python\\u0000", "source_code": "\\u0000"}',
    b'{"language": "' + b"p" * 10_000 + b'", "source_code": "1"}',
    b'{"source_code": 123456789012345678901234567890, "language": "python"}',
    b'{"language": "python", "source_code": "print(1)", "language": 7}',
    b"NaN",
    b"   ",
    b"\x00\x00\x00\x00",
]


def test_garbage_bodies_never_produce_a_500(client, session_id):
    problems = []
    for body in GARBAGE_BODIES:
        for method, path in json_endpoints(session_id):
            for content_type in ("application/json", "text/plain"):
                rv = client.open(path, method=method, data=body, content_type=content_type)
                problems += problems_with(rv, (method, path, body[:80]))
    assert problems == []


GARBAGE_IDS = [
    "not-a-uuid",
    "%ff%fe",
    "%ED%A0%80",
    "%00",
    "a" * 2000,
    "..%2F..%2Fetc%2Fpasswd",
    "%27%20OR%201=1%20--",
    "123456789012345678901234567890",
    "%F0%9F%92%A5",
]


def test_garbage_ids_are_a_json_404_everywhere(client):
    problems = []
    for bad_id in GARBAGE_IDS:
        for method, path in [
            ("GET", "/code-sessions/{}"),
            ("PATCH", "/code-sessions/{}"),
            ("DELETE", "/code-sessions/{}"),
            ("GET", "/code-sessions/{}/executions"),
            ("POST", "/code-sessions/{}/run"),
            ("GET", "/executions/{}"),
            ("GET", "/executions/{}?wait=0.1"),
        ]:
            rv = client.open(path.format(bad_id), method=method, json={})
            problems += problems_with(rv, (method, path, bad_id[:40]))
            if rv.status_code != 404:
                problems.append(f"{method} {path} {bad_id[:40]!r}: {rv.status_code}, not 404")
    assert problems == []


GARBAGE_QUERIES = [
    "wait=1e309",
    "wait=-0.0001",
    "wait=%00",
    "wait=%ff",
    "wait=0x10",
    "wait=1&wait=99",
    "wait=" + "9" * 5000,
    "limit=99999999999999999999999",
    "limit=%ED%A0%80",
    "offset=-99999999999999999999999",
    "offset=1e3",
    "limit=",
]


def test_garbage_query_parameters_are_a_400_not_a_500(client, session_id):
    rv = client.post("/executions", json={"language": "python", "source_code": "print(1)"})
    execution_id = rv.json["execution_id"]

    problems = []
    for query in GARBAGE_QUERIES:
        for path in (f"/executions/{execution_id}", f"/code-sessions/{session_id}/executions"):
            rv = client.get(f"{path}?{query}")
            problems += problems_with(rv, (path, query[:40]))
            if rv.status_code >= 400 and rv.status_code != 400:
                problems.append(f"{path}?{query[:40]}: {rv.status_code}, not 400")
    assert problems == []


GARBAGE_IF_MATCH = ["*", "", '""', "W/", "W/W/1", "1, 2", "99999999999999999999", "-0", "²", "١", "0x1", " 1 "]


def test_garbage_if_match_never_produces_a_500(client, session_id):
    problems = []
    for if_match in GARBAGE_IF_MATCH:
        rv = client.patch(f"/code-sessions/{session_id}", json={"source_code": "x"}, headers={"If-Match": if_match})
        problems += problems_with(rv, if_match)
    assert problems == []


def test_garbage_idempotency_keys_never_produce_a_500(client, session_id):
    problems = []
    for key in ["", " ", "k" * 5000, "clé", "\x7f"]:
        for _ in range(2):
            rv = client.post(f"/code-sessions/{session_id}/run", headers={"Idempotency-Key": key})
            problems += problems_with(rv, key[:40])
    assert problems == []
