"""Every setting with its default. Override any of them with an ENGINE_<NAME> environment variable
(JSON values: numbers, true/false, strings) or in instance/config.py."""
from __future__ import annotations

import os
import tempfile


class Config:
    # storage: any SQLAlchemy URL; the default is a SQLite file in instance/
    SQLALCHEMY_DATABASE_URI: str | None = None
    DATABASE_BUSY_TIMEOUT_SECONDS = 10
    # connections kept per process; extra ones open and close on demand (long-polls hold none)
    DATABASE_POOL_SIZE = 16

    # the bounded run pool: threads per engine process, and slots across all processes
    RUN_WORKERS = os.cpu_count() or 2
    RUN_SLOTS = os.cpu_count() or 2
    # slots are machine-wide (each owns a uid and a cgroup): every engine on the host shares this
    SLOT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "live-code-engine-slots")
    # executions waiting to start, across the engine; past it POST run gets 503
    QUEUE_MAX = 500

    # default limits of one run (languages may raise some, see app/sandbox/languages.py)
    RUN_TIMEOUT_SECONDS = 5.0
    RUN_CPU_SECONDS = 5
    RUN_MEMORY_BYTES = 256 * 1024 * 1024
    RUN_PROCESSES = 64
    OUTPUT_LIMIT_BYTES = 100 * 1024
    RUN_FILE_SIZE_BYTES = 16 * 1024 * 1024
    RUN_DISK_BYTES = 32 * 1024 * 1024
    RUN_OPEN_FILES = 256

    # request size limits
    MAX_CONTENT_LENGTH = 1024 * 1024
    SOURCE_MAX_BYTES = 256 * 1024
    STDIN_MAX_BYTES = 256 * 1024

    # long-poll: the longest ?wait= accepted, and how often a waiter re-reads the database
    # for executions finished by another engine process (in-process completions wake it at once)
    LONG_POLL_MAX_SECONDS = 30
    LONG_POLL_RECHECK_SECONDS = 0.25

    # sandbox: "bubblewrap" refuses to run code without it; "none" is for development only
    ISOLATION = "bubblewrap"
    SANDBOX_UID_BASE = 61000
    SANDBOX_CGROUP_NAME = "live-code-engine"

    # runs an engine starts in the background of create_app(); tests may turn it off
    RUNNER_ENABLED = True

    RESTX_MASK_SWAGGER = False
    ERROR_404_HELP = False
    JSON_SORT_KEYS = False
