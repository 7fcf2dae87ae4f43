"""The languages this engine runs and the limits each run gets, from configuration and language data."""
from __future__ import annotations

from flask import current_app

from .errors import APIError
from .sandbox import BY_NAME, Language, Limits, installed


def default_limits() -> Limits:
    config = current_app.config
    return Limits(
        timeout_seconds=float(config["RUN_TIMEOUT_SECONDS"]),
        cpu_seconds=int(config["RUN_CPU_SECONDS"]),
        memory_bytes=int(config["RUN_MEMORY_BYTES"]),
        processes=int(config["RUN_PROCESSES"]),
        output_bytes=int(config["OUTPUT_LIMIT_BYTES"]),
        file_size_bytes=int(config["RUN_FILE_SIZE_BYTES"]),
        disk_bytes=int(config["RUN_DISK_BYTES"]),
        open_files=int(config["RUN_OPEN_FILES"]),
    )


def compile_limits() -> Limits:
    """The compile step's limits: the run's, with its own time and memory."""
    config = current_app.config
    timeout = float(config["COMPILE_TIMEOUT_SECONDS"])
    return default_limits().with_overrides(
        timeout_seconds=timeout,
        cpu_seconds=int(timeout),
        memory_bytes=int(config["COMPILE_MEMORY_BYTES"]),
        file_size_bytes=64 * 1024 * 1024,
        disk_bytes=64 * 1024 * 1024,
    )


def limits_for(language: Language) -> Limits:
    """The configured limits, with what the language needs more of."""
    return default_limits().raised(language.limit_overrides)


def language_named(name: str) -> Language:
    """The installed language called name, or a 422 that lists the ones there are."""
    language = BY_NAME.get(name)
    if language is None or not language.is_installed():
        names = ", ".join(sorted(l.name for l in installed()))
        raise APIError(
            "unknown_language", f"Language {name!r} is not available here; available: {names}.", 422
        )
    return language


def describe(language: Language) -> dict[str, object]:
    return {
        "name": language.name,
        "version": language.version(),
        "source_file": language.source_file,
        "limits": limits_for(language).as_dict(),
    }
