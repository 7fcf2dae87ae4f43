"""Optional access control: bearer JWTs (HS256 with a secret, RS256/ES256 with a public key); the `sub` claim is the user.

Off by default (AUTH_ENABLED), and the log says so at startup. On, every request to /code-sessions
and /executions and /diagnostics (and /health, /metrics when AUTH_PROTECT_HEALTH / AUTH_PROTECT_METRICS) needs
`Authorization: Bearer <token>`; a missing, expired, forged or malformed token gets 401 with
`WWW-Authenticate: Bearer`. The services keep each session and execution to the user who made it
(`visible_to_caller`): anyone else gets the same 404 as for an unknown id.
"""
from __future__ import annotations

import logging

import jwt
from flask import Flask, Response, current_app, g, has_request_context, request

from .errors import APIError, render

log = logging.getLogger(__name__)

# where user data lives: always behind a token when access control is on
# /diagnostics runs a linter in a sandbox slot: with access control on, only users may spend one
PROTECTED_PREFIXES = ("/code-sessions", "/executions", "/test-suites", "/diagnostics")
# the claims every token must carry: who, and until when
REQUIRED_CLAIMS = ["sub", "exp"]
# the owner_user_id column's size
MAX_USER_ID_LENGTH = 255
REALM = "live-code-engine"


class Unauthorized(APIError):
    """No usable token: 401 with the RFC 6750 challenge."""

    def __init__(self, message: str, invalid: bool) -> None:
        challenge = f'Bearer realm="{REALM}"'
        if invalid:
            # a missing token gets the bare challenge; a bad one says so (RFC 6750, section 3), in
            # printable ASCII without quotes: the message may quote the token's own header
            description = "".join(c for c in message if " " <= c <= "~" and c not in '"\\')
            challenge += f', error="invalid_token", error_description="{description}"'
        super().__init__("unauthorized", message, 401, {"WWW-Authenticate": challenge})


def enabled() -> bool:
    return bool(current_app.config["AUTH_ENABLED"])


def current_user_id() -> str | None:
    """The authenticated user of this request (the token's sub); None when access control is off."""
    if not has_request_context():
        return None
    return g.get("auth_user_id")


def visible_to_caller(owner_user_id: str | None) -> bool:
    """Whether the caller may see a row owned by owner_user_id: always with access control off."""
    if not has_request_context() or not enabled():
        return True
    return owner_user_id is not None and owner_user_id == current_user_id()


def is_operator() -> bool:
    """Whether the caller may create test suites and read hidden cases: anyone with access control off,
    else a token whose AUTH_OPERATOR_CLAIM is (or lists) AUTH_OPERATOR_VALUE."""
    if not enabled():
        return True
    if not has_request_context():
        return False
    config = current_app.config
    value = (g.get("auth_claims") or {}).get(config["AUTH_OPERATOR_CLAIM"])
    wanted = config["AUTH_OPERATOR_VALUE"]
    if isinstance(value, list):
        return wanted in value
    return value == wanted


def require_operator(what: str) -> None:
    """403 forbidden unless the caller is an operator."""
    if not is_operator():
        raise APIError("forbidden", f"Only an operator may {what}.", 403)


def _protected(path: str) -> bool:
    config = current_app.config
    prefixes = list(PROTECTED_PREFIXES)
    if config["AUTH_PROTECT_HEALTH"]:
        prefixes.append("/health")
    if config["AUTH_PROTECT_METRICS"]:
        prefixes.append("/metrics")
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def _public_key(value: str) -> str:
    if value.lstrip().startswith("-----BEGIN"):
        return value
    with open(value, encoding="ascii") as file:
        return file.read()


def algorithms(config: dict) -> list[str]:
    """AUTH_JWT_ALGORITHMS as a list: a JSON list, or one name or several joined by commas."""
    value = config["AUTH_JWT_ALGORITHMS"]
    if isinstance(value, str):
        value = value.split(",")
    return [str(name).strip() for name in value if str(name).strip()]


def _keys(config: dict) -> dict[str, str]:
    """The verification key per accepted algorithm; refuses a configuration that cannot verify one of them."""
    accepted = algorithms(config)
    if not accepted:
        raise RuntimeError("AUTH_ENABLED needs at least one algorithm in AUTH_JWT_ALGORITHMS")
    keys: dict[str, str] = {}
    for algorithm in accepted:
        if algorithm.lower() == "none":
            raise RuntimeError("AUTH_JWT_ALGORITHMS may not accept unsigned tokens ('none')")
        if algorithm.startswith("HS"):
            if not config["AUTH_JWT_SECRET"]:
                raise RuntimeError(f"AUTH_JWT_ALGORITHMS has {algorithm}: set AUTH_JWT_SECRET")
            keys[algorithm] = config["AUTH_JWT_SECRET"]
        else:
            if not config["AUTH_JWT_PUBLIC_KEY"]:
                raise RuntimeError(f"AUTH_JWT_ALGORITHMS has {algorithm}: set AUTH_JWT_PUBLIC_KEY")
            keys[algorithm] = _public_key(config["AUTH_JWT_PUBLIC_KEY"])
    return keys


def verify(token: str) -> str:
    """The user id (sub) of a valid token; Unauthorized for anything else. Its claims go to g.auth_claims."""
    config = current_app.config
    keys: dict[str, str] = current_app.extensions["auth_keys"]
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
        if algorithm not in keys:
            # never let the token pick an algorithm the configuration did not name ("none", or HS256
            # against a public key)
            raise Unauthorized(f"Tokens signed with {str(algorithm)[:20]!r} are not accepted.", invalid=True)
        claims = jwt.decode(
            token,
            keys[algorithm],
            algorithms=[algorithm],
            audience=config["AUTH_JWT_AUDIENCE"] or None,
            issuer=config["AUTH_JWT_ISSUER"] or None,
            leeway=float(config["AUTH_JWT_LEEWAY_SECONDS"]),
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired.", invalid=True) from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("The token's signature does not verify.", invalid=True) from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise Unauthorized("The token is not a valid JWT for this engine.", invalid=True) from None
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not user_id or len(user_id) > MAX_USER_ID_LENGTH:
        raise Unauthorized(f"The token's sub must be a user id of 1 to {MAX_USER_ID_LENGTH} characters.", invalid=True)
    if has_request_context():
        g.auth_claims = claims
    return user_id


def _authenticate() -> Response | None:
    if request.method == "OPTIONS" or not _protected(request.path):
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    try:
        if not header:
            raise Unauthorized("This needs a bearer token: Authorization: Bearer <JWT>.", invalid=False)
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("The Authorization header must be 'Bearer <JWT>'.", invalid=True)
        g.auth_user_id = verify(token.strip())
    except Unauthorized as error:
        return render(error)
    return None


def init_app(app: Flask) -> None:
    """Check tokens before every protected request when AUTH_ENABLED; say at startup whether it is on."""
    if not app.config["AUTH_ENABLED"]:
        log.warning(
            "access control is off (AUTH_ENABLED=false): every client can read, change and run every "
            "session and execution; set ENGINE_AUTH_ENABLED=true with a JWT key to require tokens"
        )
        return
    app.extensions["auth_keys"] = _keys(app.config)
    app.before_request(_authenticate)
    log.info(
        "access control is on: bearer JWTs (%s) required for /code-sessions and /executions%s%s",
        ", ".join(algorithms(app.config)),
        ", /health" if app.config["AUTH_PROTECT_HEALTH"] else "",
        ", /metrics" if app.config["AUTH_PROTECT_METRICS"] else "",
    )

