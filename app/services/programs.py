"""What a program may be made of beyond its entry file: other files with safe names, and arguments."""
from __future__ import annotations

import json
import re

from flask import current_app

from ..errors import APIError
from ..sandbox import Language

# one part of a path: no leading dot (no hidden files, no "." or ".."), nothing a shell or a
# compiler's command line could read as more than a name
NAME_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
NAME_MAX_LENGTH = 100
NAME_MAX_DEPTH = 4


def check_files(files: dict[str, str] | None, language: Language) -> dict[str, str]:
    """files as given, or a 4xx naming the first problem: an unsafe name, too many, too large."""
    if not files:
        return {}
    config = current_app.config
    most = int(config["FILES_MAX_COUNT"])
    if len(files) > most:
        raise APIError("too_many_files", f"A program may have at most {most} files beside its entry file.", 422, limit=most)
    for name in files:
        _check_name(name, language)
    # the entry file is a file too: no other may sit under it
    names = {*files, language.source_file}
    for name in files:
        parent = name.rsplit("/", 1)[0] if "/" in name else None
        while parent is not None:
            if parent in names:
                raise APIError("invalid_file_name", f"{parent!r} cannot be both a file and the folder of {name!r}.", 422)
            parent = parent.rsplit("/", 1)[0] if "/" in parent else None
    size = sum(len(content.encode()) for content in files.values())
    limit = int(config["FILES_MAX_BYTES"])
    if size > limit:
        raise APIError("files_too_large", f"files are larger than the limit of {limit} bytes together.", 413, limit_bytes=limit)
    return files


def _check_name(name: str, language: Language) -> None:
    parts = name.split("/")
    safe = (
        0 < len(name) <= NAME_MAX_LENGTH
        and len(parts) <= NAME_MAX_DEPTH
        and all(NAME_PART.fullmatch(part) for part in parts)
    )
    if not safe:
        raise APIError(
            "invalid_file_name",
            f"File name {name!r} is not allowed: use a plain name or a relative path of up to "
            f"{NAME_MAX_DEPTH} parts, each of letters, digits, '_', '-', '+' and '.', not starting "
            f"with '.', at most {NAME_MAX_LENGTH} characters in all.",
            422,
        )
    if name == language.source_file:
        raise APIError(
            "invalid_file_name",
            f"{name!r} is the entry file of {language.name}: its code is source_code, not one of files.",
            422,
        )


def check_args(args: list[str] | None, language: Language) -> list[str]:
    """args as given, or a 422: too many, too long, a NUL byte, or a language that takes none."""
    if not args:
        return []
    if not language.takes_args:
        raise APIError("args_not_supported", f"{language.name} programs take no command-line arguments.", 422)
    config = current_app.config
    most = int(config["RUN_ARGS_MAX_COUNT"])
    if len(args) > most:
        raise APIError("too_many_args", f"A run may have at most {most} arguments.", 422, limit=most)
    if any("\0" in arg for arg in args):
        raise APIError("invalid_args", "An argument cannot contain a NUL character.", 422)
    limit = int(config["RUN_ARGS_MAX_BYTES"])
    if sum(len(arg.encode()) for arg in args) > limit:
        raise APIError("args_too_large", f"The arguments are longer than {limit} bytes together.", 422, limit_bytes=limit)
    return args


def as_json(value: dict | list) -> str | None:
    """The JSON text a column keeps, or None for an empty value (a one-file program, no arguments)."""
    return json.dumps(value, ensure_ascii=False) if value else None


def from_json(text: str | None, empty: dict | list) -> dict | list:
    return json.loads(text) if text else empty
