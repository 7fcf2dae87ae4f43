"""Reading request bodies and query parameters strictly, with a clear 4xx for anything off."""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

from flask import request
from jsonschema import Draft7Validator

from ..errors import APIError

# a surrogate can only enter a UTF-8 body through a \uD800..\uDFFF escape (UTF-8 cannot encode one); a
# UTF-16 or UTF-32 body (json.loads detects them by their zero bytes) is always checked in full
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def json_body(schema: dict, error: str = "validation_error", plainly_valid: Callable[[dict], bool] | None = None) -> dict:
    """The request's JSON object, checked against schema (a 422 `error` if it does not fit); an empty body is {}.

    plainly_valid(body), when given, may say True for a body it knows the schema accepts: the
    validator is skipped for it (the autosave's hot path: jsonschema cost more than the UPDATE)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        data: object = {}
    else:
        try:
            data = json.loads(raw)
            if b"\x00" in raw[:4] or SURROGATE_ESCAPE.search(raw):
                # lone surrogates ("\ud800") parse, but no code or stdin with them can be stored or run
                json.dumps(data, ensure_ascii=False).encode()
        except (ValueError, RecursionError) as error:
            raise APIError("invalid_json", f"The body is not valid JSON: {error}.", 400) from None
    if not isinstance(data, dict):
        raise APIError("invalid_json", "The body must be a JSON object.", 400)
    if plainly_valid is not None and plainly_valid(data):
        return data
    problems = sorted(_validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if problems:
        first = problems[0]
        where = ".".join(str(p) for p in first.path) or "body"
        raise APIError(
            error,
            f"{where}: {first.message}",
            422,
            fields={".".join(str(p) for p in e.path) or "body": e.message for e in problems},
        )
    return data


# one validator per request schema (module-level dicts that live as long as the process): building
# one checks the schema itself, which cost more than validating an autosave's body (profiled)
_validators: dict[int, Draft7Validator] = {}


def _validator(schema: dict) -> Draft7Validator:
    validator = _validators.get(id(schema))
    if validator is None or validator.schema is not schema:
        validator = _validators[id(schema)] = Draft7Validator(schema)
    return validator


def query_number(name: str, default: float, minimum: float, maximum: float, integer: bool = False) -> float:
    """A numeric query parameter within [minimum, maximum], or a 400 that says what is allowed."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = math.nan
    if math.isnan(value) or not minimum <= value <= maximum:
        kind = "a whole number" if integer else "a number"
        raise APIError("invalid_parameter", f"{name} must be {kind} from {minimum:g} to {maximum:g}.", 400)
    return value


def page() -> tuple[int, int]:
    """(limit, offset) of a paged list: limit 1..100 (default 20), offset from 0 (default 0); else a 400."""
    return int(query_number("limit", 20, 1, 100, integer=True)), int(query_number("offset", 0, 0, 10**9, integer=True))


def query_choice(name: str, allowed: tuple[str, ...]) -> str | None:
    """A query parameter that must be one of allowed (absent or empty is None), or a 400 naming them."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise APIError("invalid_parameter", f"{name} must be one of: {', '.join(allowed)}.", 400)
    return raw
