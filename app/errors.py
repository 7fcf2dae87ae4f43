"""APIError, and the one function that renders every failure as {"error", "message"}."""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from .storage.retry import DatabaseBusy, is_transient

log = logging.getLogger(__name__)


class APIError(Exception):
    """A failure the client can act on: a machine code, a sentence, a status, and optional details."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        headers: dict[str, str] | None = None,
        **details: object,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}
        self.details = details


# Werkzeug's exceptions by status, named for clients
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    431: "headers_too_large",
}


def to_api_error(error: BaseException) -> APIError:
    """Any exception as the APIError a client sees; unknown ones become a logged 500."""
    answer = expected(error)
    if answer is None:
        log.exception("unhandled error", exc_info=error)
        return APIError("internal_error", "The engine hit an unexpected error; it has been logged.", 500)
    return answer


def expected(error: BaseException) -> APIError | None:
    """The APIError for an exception the engine expects (bad input, refusals, a busy database), else None."""
    if isinstance(error, APIError):
        return error
    if isinstance(error, HTTPException):
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        if data.get("errors"):
            # flask-restx's own argument validation
            return APIError("validation_error", data.get("message", "invalid input"), 400, fields=data["errors"])
        message = error.description or error.name
        if status == 404:
            message = "No such resource."
        return APIError(HTTP_CODES.get(status, "http_error"), message, status)
    if isinstance(error, DatabaseBusy) or is_transient(error):
        # a lock that outlasted the retries (or a read nobody retried): the client may try again
        return APIError("database_busy", "The database is busy; try again shortly.", 503, {"Retry-After": "2"})
    return None


def as_json(error: BaseException) -> tuple[dict[str, object], int, dict[str, str]]:
    """(body, status, headers) for any exception: flask-restx's error handler form."""
    api_error = to_api_error(error)
    body = {"error": api_error.code, "message": api_error.message, **api_error.details}
    return body, api_error.status, api_error.headers


def render(error: BaseException) -> Response:
    body, status, headers = as_json(error)
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response


def init_app(app: Flask) -> None:
    # routes outside the API (unknown paths, the editor) come here; the API routes its own
    app.register_error_handler(Exception, render)
