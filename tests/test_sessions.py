"""Code sessions: create, read, autosave with optimistic locking, delete, and the list of their runs."""
from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.client import wait_terminal

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def new_session(client, **body) -> dict:
    rv = client.post("/code-sessions", json=body)
    assert rv.status_code == 201, rv.json
    return rv.json


@pytest.fixture
def small_client(config, request):
    """A client of an engine with tiny body and source limits."""
    config["MAX_CONTENT_LENGTH"] = 8 * 1024
    config["SOURCE_MAX_BYTES"] = 1024
    return request.getfixturevalue("client")


def test_create_returns_the_session(client):
    rv = client.post("/code-sessions", json={"language": "python", "source_code": "print(1)"})
    assert rv.status_code == 201
    session = rv.json
    assert str(uuid.UUID(session["session_id"])) == session["session_id"]
    assert session["language"] == "python"
    assert session["source_code"] == "print(1)"
    assert session["status"] == "ACTIVE"
    assert session["version"] == 1
    assert ISO_UTC.match(session["created_at"])
    assert ISO_UTC.match(session["updated_at"])
    assert rv.headers["ETag"] == '"1"'


def test_create_accepts_template_code_as_an_alias(client):
    rv = client.post("/code-sessions", json={"language": "python", "template_code": "print('hi')"})
    assert rv.status_code == 201
    assert rv.json["source_code"] == "print('hi')"

    rv = client.get(f"/code-sessions/{rv.json['session_id']}")
    assert rv.json["source_code"] == "print('hi')"


def test_create_defaults_to_python_and_empty_code(client):
    rv = client.post("/code-sessions")
    assert rv.status_code == 201
    assert rv.json["language"] == "python"
    assert rv.json["source_code"] == ""

    rv = client.post("/code-sessions", json={})
    assert rv.status_code == 201
    assert rv.json["language"] == "python"
    assert rv.json["source_code"] == ""


@pytest.mark.parametrize(
    "body, error",
    [
        ({"language": "cobol"}, "unknown_language"),
        ({"language": ""}, "validation_error"),
        ({"language": 3}, "validation_error"),
        ({"language": None}, "validation_error"),
        ({"source_code": ["print(1)"]}, "validation_error"),
        ({"source_code": 42}, "validation_error"),
        ({"template_code": {"a": 1}}, "validation_error"),
        ({"langauge": "python"}, "validation_error"),
        ({"source_code": "", "owner": "me"}, "validation_error"),
    ],
)
def test_create_rejects_bad_fields_with_422(client, body, error):
    rv = client.post("/code-sessions", json=body)
    assert rv.status_code == 422
    assert rv.json["error"] == error
    assert rv.json["message"]


def test_create_rejects_malformed_json_with_400(client):
    rv = client.post("/code-sessions", data='{"language": "python",', content_type="application/json")
    assert rv.status_code == 400
    assert rv.json["error"] == "invalid_json"


def test_create_rejects_a_body_over_max_content_length_with_413(small_client):
    rv = small_client.post("/code-sessions", json={"source_code": "#" * (16 * 1024)})
    assert rv.status_code == 413
    assert rv.json["error"] == "payload_too_large"


def test_create_rejects_source_over_source_max_bytes_with_413(small_client):
    rv = small_client.post("/code-sessions", json={"source_code": "#" * 1024})
    assert rv.status_code == 201

    # the limit counts UTF-8 bytes, not characters
    rv = small_client.post("/code-sessions", json={"source_code": "é" * 513})
    assert rv.status_code == 413
    assert rv.json["error"] == "source_code_too_large"

    rv = small_client.post("/code-sessions", json={"template_code": "#" * 1025})
    assert rv.status_code == 413
    assert rv.json["error"] == "source_code_too_large"


def test_get_returns_the_session_or_404(client):
    session = new_session(client, source_code="x = 1")

    rv = client.get(f"/code-sessions/{session['session_id']}")
    assert rv.status_code == 200
    assert rv.json == session
    assert rv.headers["ETag"] == '"1"'

    rv = client.get(f"/code-sessions/{uuid.uuid4()}")
    assert rv.status_code == 404
    assert rv.json["error"] == "not_found"


def test_every_accepted_patch_bumps_the_version(client):
    session = new_session(client, source_code="a")
    url = f"/code-sessions/{session['session_id']}"

    rv = client.patch(url, json={"source_code": "ab"})
    assert rv.status_code == 200
    assert rv.json["version"] == 2
    assert rv.json["source_code"] == "ab"
    assert rv.headers["ETag"] == '"2"'

    rv = client.patch(url, json={"source_code": "ab"})
    assert rv.status_code == 200
    assert rv.json["version"] == 3

    rv = client.patch(url, json={"language": "python"})
    assert rv.status_code == 200
    assert rv.json["version"] == 4

    rv = client.patch(url, json={})
    assert rv.status_code == 200
    assert rv.json["version"] == 5

    rv = client.get(url)
    assert rv.json["version"] == 5
    assert rv.json["source_code"] == "ab"
    assert rv.json["created_at"] == session["created_at"]
    assert rv.json["updated_at"] >= session["updated_at"]


def test_patch_with_a_stale_body_version_gets_409_with_the_current_version(client):
    session = new_session(client, source_code="first")
    url = f"/code-sessions/{session['session_id']}"

    rv = client.patch(url, json={"source_code": "second", "version": 1})
    assert rv.status_code == 200
    assert rv.json["version"] == 2

    rv = client.patch(url, json={"source_code": "lost", "version": 1})
    assert rv.status_code == 409
    assert rv.json["error"] == "version_conflict"
    assert rv.json["current_version"] == 2
    assert rv.json["message"]

    rv = client.get(url)
    assert rv.json["source_code"] == "second"
    assert rv.json["version"] == 2

    # a string version is read the same way
    rv = client.patch(url, json={"source_code": "third", "version": "2"})
    assert rv.status_code == 200
    assert rv.json["version"] == 3


def test_patch_with_version_zero_is_stale_not_unguarded(client):
    session = new_session(client)
    url = f"/code-sessions/{session['session_id']}"

    rv = client.patch(url, json={"source_code": "x", "version": 0})
    assert rv.status_code == 409
    assert rv.json["current_version"] == 1
    assert client.get(url).json["source_code"] == ""


def test_patch_with_if_match(client):
    session = new_session(client)
    url = f"/code-sessions/{session['session_id']}"

    rv = client.patch(url, json={"source_code": "one"}, headers={"If-Match": '"1"'})
    assert rv.status_code == 200
    assert rv.json["version"] == 2

    rv = client.patch(url, json={"source_code": "stale"}, headers={"If-Match": "1"})
    assert rv.status_code == 409
    assert rv.json["error"] == "version_conflict"
    assert rv.json["current_version"] == 2

    # the ETag of a read is what the next If-Match sends back
    etag = client.get(url).headers["ETag"]
    rv = client.patch(url, json={"source_code": "two"}, headers={"If-Match": etag})
    assert rv.status_code == 200
    assert rv.json["version"] == 3

    rv = client.patch(url, json={"source_code": "three"}, headers={"If-Match": 'W/"3"'})
    assert rv.status_code == 200
    assert rv.json["version"] == 4
    assert client.get(url).json["source_code"] == "three"


def test_only_one_of_several_concurrent_saves_of_one_version_wins(app):
    session = new_session(app.test_client())
    url = f"/code-sessions/{session['session_id']}"

    def save(n: int) -> int:
        return app.test_client().patch(url, json={"source_code": f"tab {n}", "version": 1}).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(save, range(6)))

    assert statuses == [200, 409, 409, 409, 409, 409]
    assert app.test_client().get(url).json["version"] == 2


@pytest.mark.parametrize(
    "body, headers",
    [
        ({"version": "abc"}, {}),
        ({"version": ""}, {}),
        ({"version": "1.5"}, {}),
        ({}, {"If-Match": "abc"}),
        ({}, {"If-Match": "-1"}),
    ],
)
def test_patch_with_an_invalid_version_gets_400(client, body, headers):
    session = new_session(client)
    url = f"/code-sessions/{session['session_id']}"

    rv = client.patch(url, json={"source_code": "x", **body}, headers=headers)
    assert rv.status_code == 400
    assert rv.json["error"] == "invalid_version"
    assert client.get(url).json["version"] == 1


@pytest.mark.parametrize(
    "body, headers",
    [
        ({"version": 10**20}, {}),
        ({"version": "99999999999999999999"}, {}),
        ({}, {"If-Match": "99999999999999999999"}),
        ({}, {"If-Match": "²"}),
    ],
)
def test_patch_with_an_out_of_range_version_is_refused_not_500(client, body, headers):
    session = new_session(client)
    url = f"/code-sessions/{session['session_id']}"

    rv = client.patch(url, json={"source_code": "x", **body}, headers=headers)
    assert rv.status_code in (400, 409, 422), rv.json
    assert rv.json["error"]
    assert client.get(url).json["version"] == 1


def test_patch_changes_the_language(client):
    session = new_session(client, language="python", source_code="print(1)")
    url = f"/code-sessions/{session['session_id']}"

    rv = client.patch(url, json={"language": "python"})
    assert rv.status_code == 200
    assert rv.json["language"] == "python"
    assert rv.json["version"] == 2

    rv = client.patch(url, json={"language": "cobol"})
    assert rv.status_code == 422
    assert rv.json["error"] == "unknown_language"
    assert client.get(url).json["version"] == 2


def test_patch_rejects_bad_input(small_client):
    session = new_session(small_client)
    url = f"/code-sessions/{session['session_id']}"

    rv = small_client.patch(url, json={"source_code": 1})
    assert rv.status_code == 422
    rv = small_client.patch(url, json={"status": "CLOSED"})
    assert rv.status_code == 422
    rv = small_client.patch(url, data="{nope", content_type="application/json")
    assert rv.status_code == 400
    rv = small_client.patch(url, json={"source_code": "#" * 1025})
    assert rv.status_code == 413
    assert rv.json["error"] == "source_code_too_large"
    assert small_client.get(url).json["version"] == 1

    rv = small_client.patch(f"/code-sessions/{uuid.uuid4()}", json={"source_code": "x"})
    assert rv.status_code == 404


def test_delete_removes_the_session_and_its_executions(client):
    session = new_session(client, source_code="print('bye')")
    url = f"/code-sessions/{session['session_id']}"
    rv = client.post(f"{url}/run")
    assert rv.status_code == 202
    execution_id = rv.json["execution_id"]
    assert wait_terminal(client, execution_id)["stdout"] == "bye\n"

    rv = client.delete(url)
    assert rv.status_code == 204
    assert rv.get_data() == b""

    assert client.get(url).status_code == 404
    assert client.get(f"{url}/executions").status_code == 404
    assert client.post(f"{url}/run").status_code == 404
    rv = client.get(f"/executions/{execution_id}")
    assert rv.status_code == 404
    assert rv.json["error"] == "not_found"

    rv = client.delete(url)
    assert rv.status_code == 404
    assert rv.json["error"] == "not_found"


def test_list_executions_newest_first_with_paging(client):
    session = new_session(client, source_code="print(input())")
    url = f"/code-sessions/{session['session_id']}"

    rv = client.get(f"{url}/executions")
    assert rv.status_code == 200
    assert rv.json == []
    assert rv.headers["X-Total-Count"] == "0"

    ids = []
    for n in range(3):
        rv = client.post(f"{url}/run", json={"stdin": f"run {n}\n"})
        assert rv.status_code == 202
        ids.append(rv.json["execution_id"])
        wait_terminal(client, rv.json["execution_id"])

    rv = client.get(f"{url}/executions")
    assert rv.status_code == 200
    assert rv.headers["X-Total-Count"] == "3"
    assert [e["execution_id"] for e in rv.json] == ids[::-1]
    assert [e["stdout"] for e in rv.json] == ["run 2\n", "run 1\n", "run 0\n"]
    assert all(e["session_id"] == session["session_id"] for e in rv.json)

    rv = client.get(f"{url}/executions?limit=2")
    assert [e["execution_id"] for e in rv.json] == [ids[2], ids[1]]
    assert rv.headers["X-Total-Count"] == "3"

    rv = client.get(f"{url}/executions?limit=2&offset=2")
    assert [e["execution_id"] for e in rv.json] == [ids[0]]
    assert rv.headers["X-Total-Count"] == "3"

    rv = client.get(f"{url}/executions?offset=5")
    assert rv.status_code == 200
    assert rv.json == []


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "limit=1.5", "limit=-1", "offset=-1", "offset=x"])
def test_list_executions_rejects_a_bad_page_with_400(client, query):
    session = new_session(client)

    rv = client.get(f"/code-sessions/{session['session_id']}/executions?{query}")
    assert rv.status_code == 400
    assert rv.json["error"] == "invalid_parameter"


def test_list_executions_of_an_unknown_session_is_404(client):
    rv = client.get(f"/code-sessions/{uuid.uuid4()}/executions")
    assert rv.status_code == 404
    assert rv.json["error"] == "not_found"
