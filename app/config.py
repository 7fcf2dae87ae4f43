"""Every setting with its default. Override any of them with an ENGINE_<NAME> environment variable
(JSON values: numbers, true/false, strings) or in instance/config.py."""
from __future__ import annotations

import os
import tempfile


class Config:
    # storage: any SQLAlchemy URL; the default is a SQLite file in instance/
    SQLALCHEMY_DATABASE_URI: str | None = None
    # how long one statement waits for SQLite's write lock before "database is locked"; short,
    # because app/db_retry.py retries on top of it with jittered backoff (sqlite's own wait has none)
    DATABASE_BUSY_TIMEOUT_SECONDS = 2.0
    # a request's whole budget for retrying a locked database; past it the answer is 503 + Retry-After
    DATABASE_RETRY_SECONDS = 8.0
    # the first backoff and the most one backoff may grow to (full jitter: uniform in [0, that])
    DATABASE_RETRY_BASE_SECONDS = 0.05
    DATABASE_RETRY_MAX_BACKOFF_SECONDS = 1.0
    # the runner's budget for writing a result: longer, since giving up loses a finished run
    RUNNER_DATABASE_RETRY_SECONDS = 60.0
    # connections kept per process; extra ones open and close on demand (long-polls hold none)
    DATABASE_POOL_SIZE = 16

    # the bounded run pool: threads per engine process, and slots across all processes
    RUN_WORKERS = os.cpu_count() or 2
    RUN_SLOTS = os.cpu_count() or 2
    # slots are machine-wide (each owns a uid and a cgroup): every engine on the host shares this
    SLOT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "live-code-engine-slots")
    # executions waiting to start, across the engine; past it POST run gets 503
    QUEUE_MAX = 500

    # fairness and backpressure per client (docs/reliability.md); 0 turns a limit off
    # runs a session may start in any 60 s window; past it POST run gets 429 + Retry-After
    RUNS_PER_MINUTE_PER_SESSION = 10
    # runs of one session QUEUED or RUNNING at once; one noisy tab cannot fill the queue
    ACTIVE_RUNS_PER_SESSION = 2
    # history kept per session; adding one past it deletes the session's oldest finished runs
    EXECUTIONS_KEPT_PER_SESSION = 100
    # one-shot POST /executions per client IP in any 60 s window (429 + Retry-After); off by default:
    # behind a learning platform every learner arrives from the platform's one address (with
    # access control on, the per-user limits below apply instead)
    ONE_SHOT_RUNS_PER_MINUTE_PER_IP = 0
    # with access control on, one user's runs across all their sessions and one-shots: runs
    # started in any 60 s window, and runs QUEUED or RUNNING at once (429 + Retry-After)
    RUNS_PER_MINUTE_PER_USER = 60
    ACTIVE_RUNS_PER_USER = 8

    # retention: finished executions older than this are deleted, and sessions idle this long
    # (no autosave, no run) go with their executions; pruned every RETENTION_INTERVAL_SECONDS
    EXECUTION_RETENTION_SECONDS = 24 * 3600
    SESSION_IDLE_RETENTION_SECONDS = 7 * 24 * 3600
    RETENTION_INTERVAL_SECONDS = 300

    # default limits of one run (languages may raise some, see app/sandbox/languages.py)
    RUN_TIMEOUT_SECONDS = 5.0
    RUN_CPU_SECONDS = 5
    RUN_MEMORY_BYTES = 256 * 1024 * 1024
    RUN_PROCESSES = 64
    OUTPUT_LIMIT_BYTES = 100 * 1024
    RUN_FILE_SIZE_BYTES = 16 * 1024 * 1024
    RUN_DISK_BYTES = 32 * 1024 * 1024
    RUN_OPEN_FILES = 256
    # the most a run may ask for in its "limits" (422 limit_too_high above); a language whose
    # default is higher (Java's memory) may ask up to its default
    RUN_TIMEOUT_SECONDS_MAX = 20.0
    RUN_MEMORY_BYTES_MAX = 1024 * 1024 * 1024
    RUN_PROCESSES_MAX = 256
    OUTPUT_LIMIT_BYTES_MAX = 1024 * 1024
    # command-line arguments of a run ("args"): how many, and their UTF-8 bytes together
    RUN_ARGS_MAX_COUNT = 32
    RUN_ARGS_MAX_BYTES = 8 * 1024

    # request size limits
    MAX_CONTENT_LENGTH = 1024 * 1024
    SOURCE_MAX_BYTES = 256 * 1024
    # a program's other files beside its entry file ("files"): how many, and their bytes together
    FILES_MAX_COUNT = 16
    FILES_MAX_BYTES = 256 * 1024
    STDIN_MAX_BYTES = 256 * 1024

    # long-poll: the longest ?wait= accepted, and how often each process's watcher looks (one
    # query for all its waiters) for executions another engine process finished; in-process
    # completions wake a waiter at once
    LONG_POLL_MAX_SECONDS = 30
    LONG_POLL_RECHECK_SECONDS = 0.1

    # sandbox: "bubblewrap" refuses to run code without it; "none" is for development only
    ISOLATION = "bubblewrap"
    SANDBOX_UID_BASE = 61000
    SANDBOX_CGROUP_NAME = "live-code-engine"
    # warm sandboxes kept ready per language in each engine process (0 or {} turns them off),
    # and the machine-wide number of slots they may hold between them
    WARM_POOL = {"python": 2, "javascript": 1}
    WARM_SLOTS = 16
    # compiled languages: the compile step's own limits, and the artifact cache shared by the host
    COMPILE_TIMEOUT_SECONDS = 15.0
    COMPILE_MEMORY_BYTES = 512 * 1024 * 1024
    COMPILE_CACHE_DIR = os.path.join(tempfile.gettempdir(), "live-code-engine-cache")
    COMPILE_CACHE_BYTES = 256 * 1024 * 1024

    # runs an engine starts in the background of create_app(); tests may turn it off
    RUNNER_ENABLED = True

    # logs (app/logs.py): the least severe level written to stderr
    LOG_LEVEL = "INFO"
    # "json": one object per line for log shippers; "text": the classic line, for a human at a terminal
    LOG_FORMAT = "json"

    # access control (app/auth.py): off, everything is open to every client (said in the log at
    # startup); on, every /code-sessions and /executions request needs "Authorization: Bearer <JWT>",
    # and a session or execution is visible only to the user (the token's sub) who made it
    AUTH_ENABLED = False
    # the accepted signing algorithms; HS* check against the secret, RS*/ES*/PS*/EdDSA against the public key
    AUTH_JWT_ALGORITHMS = ["HS256"]
    AUTH_JWT_SECRET: str | None = None
    # PEM text, or the path of a PEM file
    AUTH_JWT_PUBLIC_KEY: str | None = None
    # when set, a token's aud (and iss) must match
    AUTH_JWT_AUDIENCE: str | None = None
    AUTH_JWT_ISSUER: str | None = None
    # clock skew tolerated on exp, nbf and iat
    AUTH_JWT_LEEWAY_SECONDS = 30
    # with access control on, also require a token for /health* and /metrics (off: probes and
    # scrapers need no token; they show no user's data)
    AUTH_PROTECT_HEALTH = False
    AUTH_PROTECT_METRICS = False

    RESTX_MASK_SWAGGER = False
    RESTX_ERROR_404_HELP = False
    JSON_SORT_KEYS = False
