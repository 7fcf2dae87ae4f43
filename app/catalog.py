"""The languages this engine runs and the limits each run gets, from configuration and language data."""
from __future__ import annotations

import math

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


# the limits a run may choose for itself, and the setting that caps each
ADJUSTABLE = {
    "timeout_seconds": "RUN_TIMEOUT_SECONDS_MAX",
    "memory_bytes": "RUN_MEMORY_BYTES_MAX",
    "processes": "RUN_PROCESSES_MAX",
    "output_bytes": "OUTPUT_LIMIT_BYTES_MAX",
}


def maximum_limits(language: Language) -> dict[str, float | int]:
    """The most a run of language may ask for: the configured maxima, or its default where that is higher."""
    defaults = limits_for(language)
    config = current_app.config
    return {
        name: max(type(getattr(defaults, name))(config[setting]), getattr(defaults, name))
        for name, setting in ADJUSTABLE.items()
    }


def requested_limits(language: Language, requested: dict[str, float | int] | None) -> Limits:
    """The limits of a run that asked for `requested`; 422 limit_too_high past a maximum."""
    limits = limits_for(language)
    if not requested:
        return limits
    maxima = maximum_limits(language)
    for name, value in requested.items():
        if value > maxima[name]:
            raise APIError(
                "limit_too_high",
                f"limits.{name} may be at most {maxima[name]:g} for {language.name}.",
                422,
                limit=name,
                maximum=maxima[name],
            )
    changes: dict[str, float | int] = {name: type(getattr(limits, name))(value) for name, value in requested.items()}
    if "timeout_seconds" in changes:
        # CPU time follows the wall clock the run asked for (a busy program uses one per second)
        changes["cpu_seconds"] = max(1, math.ceil(changes["timeout_seconds"]))
    return limits.with_overrides(**changes)


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
        "display_name": language.display(),
        "version": language.version(),
        "source_file": language.source_file,
        "extension": language.extension,
        "compiles": language.compile is not None,
        "limits": limits_for(language).as_dict(),
        "max_limits": maximum_limits(language),
        # every language runs through the one path: stdin may stay open, other files sit
        # beside the entry file, and graded runs use the same sandbox
        "interactive": True,
        "multi_file": True,
        "graded": True,
        "args": language.takes_args,
        "template": language.template,
    }
