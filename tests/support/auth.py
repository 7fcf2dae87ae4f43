"""Access control in tests: signed bearer tokens, two users, the `secured` settings and the 401 check."""
from __future__ import annotations

import time

import jwt
import pytest

SECRET = "test-secret-that-is-long-enough-for-hs256!"


def token(sub: str = "alice", key: object = SECRET, algorithm: str = "HS256", expires_in: float = 300, **claims: object) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time() + expires_in), **claims}, key, algorithm=algorithm)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


# made when the suite is collected and used by tests that may run many minutes later (several
# modules import them): good for the length of any suite run
ALICE = bearer(token("alice", expires_in=6 * 3600))
BOB = bearer(token("bob", expires_in=6 * 3600))


@pytest.fixture
def secured(config) -> dict:
    config.update(AUTH_ENABLED=True, AUTH_JWT_SECRET=SECRET, WARM_POOL={})
    return config


def assert_unauthorized(rv, invalid: bool = True) -> None:  # noqa: ANN001
    assert rv.status_code == 401, rv.get_data(as_text=True)
    assert rv.json["error"] == "unauthorized" and rv.json["message"]
    challenge = rv.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) is invalid
