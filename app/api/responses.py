"""The error statuses each operation can answer, documented once with the one Error model."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask_restx import Namespace

from .schemas import ERROR

Handler = TypeVar("Handler", bound=Callable)

# what each status means, in every operation that can answer it
WHY = {
    400: "Malformed JSON or a bad query parameter",
    401: "Access control is on and the bearer token is missing, expired or forged",
    403: "Access control is on and the token lacks the role this needs",
    404: "No such resource (or not the caller's)",
    409: "Conflict with the current state: the body says which",
    413: "Body, code or input too large",
    422: "A field is invalid (a bad file name, a limit above its maximum: limit_too_high), or the language is not installed",
    429: "Rate limit reached (Retry-After)",
    503: "Queue full, shutting down, or the database busy (Retry-After)",
}
# a database that stays locked past the retry budget answers 503 from any operation that reads it
EVERY_DATABASE_OPERATION = (503,)
# the resources behind access control
PROTECTED = (401,)


def errors(ns: Namespace, *statuses: int, protected: bool = True) -> Callable[[Handler], Handler]:
    """Document that the decorated operation answers these statuses (and 503, and 401 when protected)."""
    every = set(statuses) | set(EVERY_DATABASE_OPERATION) | (set(PROTECTED) if protected else set())

    def decorate(handler: Handler) -> Handler:
        for status in sorted(every):
            handler = ns.response(status, WHY[status], ERROR)(handler)
        return handler

    return decorate
