"""Optional access control: bearer JWTs, each user sees only their own sessions and executions, 401 for bad tokens."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from support.auth import ALICE, BOB, SECRET, assert_unauthorized, bearer, secured, token  # noqa: F401 (secured is a fixture)

from app import create_app

TERMINAL = {"COMPLETED", "FAILED", "TIMEOUT"}


def hs256_by_hand(claims: dict, key: bytes) -> str:
    """An HS256 token with any bytes as the key (PyJWT itself refuses a PEM key for HMAC)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + part(json.dumps(claims).encode())
    return signing_input + "." + part(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def with_header(header: dict, valid: str) -> str:
    """A valid token's body and signature under another header."""
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return encoded + valid[valid.index("."):]


def wait_terminal(client, execution_id: str, headers: dict, seconds: float = 30) -> dict:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rv = client.get(f"/executions/{execution_id}?wait=10", headers=headers)
        assert rv.status_code == 200, rv.json
        if rv.json["status"] in TERMINAL:
            return rv.json
    raise AssertionError(f"execution {execution_id} not terminal after {seconds} s")


def test_access_control_is_off_by_default_and_says_so(config, caplog):
    caplog.set_level(logging.INFO, logger="app.auth")
    app = create_app({**config, "RUNNER_ENABLED": False})
    client = app.test_client()
    assert any("access control is off" in record.getMessage() for record in caplog.records)
    rv = client.post("/code-sessions", json={"source_code": "print(1)"})
    assert rv.status_code == 201
    session_id = rv.json["session_id"]
    # no token needed, and a token changes nothing: everyone sees everything
    assert client.get(f"/code-sessions/{session_id}").status_code == 200
    assert client.get(f"/code-sessions/{session_id}", headers=BOB).status_code == 200
    rv = client.post(f"/code-sessions/{session_id}/run", json={})
    assert rv.status_code == 202
    assert client.get(f"/executions/{rv.json['execution_id']}", headers=ALICE).status_code == 200
    assert app.test_client().get("/swagger.json").json["securityDefinitions"]["bearer"]["type"] == "apiKey"


def test_each_user_sees_only_their_own_sessions_and_executions(secured):
    app = create_app(secured)
    try:
        client = app.test_client()
        rv = client.post("/code-sessions", json={"source_code": "print(input())"}, headers=ALICE)
        assert rv.status_code == 201
        session_id = rv.json["session_id"]
        rv = client.post(f"/code-sessions/{session_id}/run", json={"stdin": "mine"}, headers=ALICE)
        assert rv.status_code == 202
        execution_id = rv.json["execution_id"]
        assert wait_terminal(client, execution_id, ALICE)["stdout"] == "mine\n"
        rv = client.post("/executions", json={"language": "python", "source_code": "print(3)"}, headers=ALICE)
        one_shot = rv.json["execution_id"]

        # bob: every one of alice's things answers exactly as an unknown id
        for rv in (
            client.get(f"/code-sessions/{session_id}", headers=BOB),
            client.patch(f"/code-sessions/{session_id}", json={"source_code": "stolen"}, headers=BOB),
            client.delete(f"/code-sessions/{session_id}", headers=BOB),
            client.post(f"/code-sessions/{session_id}/run", json={}, headers=BOB),
            client.get(f"/code-sessions/{session_id}/executions", headers=BOB),
            client.get(f"/executions/{execution_id}", headers=BOB),
            client.get(f"/executions/{execution_id}?wait=1", headers=BOB),
            client.get(f"/executions/{execution_id}/events", headers=BOB),
            client.get(f"/executions/{one_shot}", headers=BOB),
        ):
            assert rv.status_code == 404, rv.get_data(as_text=True)
            assert rv.json["error"] == "not_found"

        # nothing bob did touched it; alice still has it all
        rv = client.get(f"/code-sessions/{session_id}", headers=ALICE)
        assert rv.status_code == 200 and (rv.json["version"], rv.json["source_code"]) == (1, "print(input())")
        rv = client.get(f"/code-sessions/{session_id}/executions", headers=ALICE)
        assert [e["execution_id"] for e in rv.json] == [execution_id]
        assert "event: final" in client.get(f"/executions/{execution_id}/events", headers=ALICE).get_data(as_text=True)
        assert wait_terminal(client, one_shot, ALICE)["stdout"] == "3\n"
        rv = client.patch(f"/code-sessions/{session_id}", json={"source_code": "print(2)", "version": 1}, headers=ALICE)
        assert rv.status_code == 200 and rv.json["version"] == 2
        assert client.delete(f"/code-sessions/{session_id}", headers=ALICE).status_code == 204
    finally:
        app.extensions["engine"].runner.shutdown()


def test_missing_expired_forged_and_malformed_tokens_get_401(secured):
    client = create_app({**secured, "RUNNER_ENABLED": False}).test_client()
    assert_unauthorized(client.post("/code-sessions", json={}), invalid=False)
    assert_unauthorized(client.get("/executions/00000000-0000-4000-8000-000000000000"), invalid=False)
    header, payload, _ = token("mallory").split(".")
    unsigned = jwt.encode({"sub": "alice", "exp": int(time.time() + 300)}, None, algorithm="none")
    for headers in (
        bearer(token(expires_in=-120)),                      # expired (past the 30 s leeway)
        bearer(token(key="not-the-secret-" * 3)),            # forged: signed with another key
        bearer(unsigned),                                    # alg: none
        bearer(f"{header}.{payload}.c2lnbmF0dXJl"),          # a real header and body, a made-up signature
        bearer("garbage"),
        bearer("a.b.c"),
        bearer(jwt.encode({"exp": int(time.time() + 300)}, SECRET, algorithm="HS256")),  # no sub
        bearer(jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")),                 # no exp
        bearer(with_header({"alg": '\u4e2d"\r\nX-Injected: 1', "typ": "JWT"}, token())),  # a hostile header
        bearer(with_header({"alg": ["HS256"]}, token())),
        {"Authorization": f"Basic {token()}"},
        {"Authorization": "Bearer "},
    ):
        assert_unauthorized(client.post("/code-sessions", json={}, headers=headers))
    assert client.post("/code-sessions", json={}, headers=ALICE).status_code == 201


def test_health_and_metrics_are_open_unless_protected(secured):
    client = create_app({**secured, "RUNNER_ENABLED": False}).test_client()
    assert client.get("/health/db").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/languages").status_code == 200

    locked = create_app({**secured, "RUNNER_ENABLED": False, "AUTH_PROTECT_HEALTH": True, "AUTH_PROTECT_METRICS": True})
    client = locked.test_client()
    assert_unauthorized(client.get("/health/db"), invalid=False)
    assert_unauthorized(client.get("/metrics"), invalid=False)
    assert client.get("/health/db", headers=ALICE).status_code == 200
    assert client.get("/metrics", headers=ALICE).status_code == 200


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_public_key_algorithms(config, algorithm):
    private = rsa.generate_private_key(65537, 2048) if algorithm == "RS256" else ec.generate_private_key(ec.SECP256R1())
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    other = rsa.generate_private_key(65537, 2048) if algorithm == "RS256" else ec.generate_private_key(ec.SECP256R1())
    app = create_app({
        **config, "RUNNER_ENABLED": False, "AUTH_ENABLED": True, "AUTH_JWT_ALGORITHMS": [algorithm],
        "AUTH_JWT_PUBLIC_KEY": public_pem, "AUTH_JWT_AUDIENCE": "engine",
    })
    client = app.test_client()
    good = token("carol", private, algorithm, aud="engine")
    rv = client.post("/code-sessions", json={}, headers=bearer(good))
    assert rv.status_code == 201
    assert client.get(f"/code-sessions/{rv.json['session_id']}", headers=bearer(token("carol", private, algorithm, aud="engine"))).status_code == 200
    assert_unauthorized(client.post("/code-sessions", json={}, headers=bearer(token("carol", other, algorithm, aud="engine"))))
    assert_unauthorized(client.post("/code-sessions", json={}, headers=bearer(token("carol", private, algorithm, aud="elsewhere"))))
    # algorithm confusion: an HS256 token "signed" with the public key itself
    forged = hs256_by_hand({"sub": "carol", "aud": "engine", "exp": int(time.time()) + 300}, public_pem.encode())
    assert_unauthorized(client.post("/code-sessions", json={}, headers=bearer(forged)))


def test_rate_limits_count_per_user_across_sessions(secured):
    client = create_app({**secured, "RUNNER_ENABLED": False, "ACTIVE_RUNS_PER_USER": 2}).test_client()
    first, second = (client.post("/code-sessions", json={"source_code": "print(1)"}, headers=ALICE).json["session_id"] for _ in range(2))
    assert client.post(f"/code-sessions/{first}/run", json={}, headers=ALICE).status_code == 202
    assert client.post(f"/code-sessions/{second}/run", json={}, headers=ALICE).status_code == 202
    rv = client.post("/executions", json={"language": "python", "source_code": "print(1)"}, headers=ALICE)
    assert rv.status_code == 429 and rv.json["error"] == "too_many_active_runs" and "Retry-After" in rv.headers
    # another user is not held back by alice's runs
    assert client.post("/executions", json={"language": "python", "source_code": "print(1)"}, headers=BOB).status_code == 202
