"""Every setting with its default. Override any of them with an ENGINE_<NAME> environment variable
(JSON values: numbers, true/false, strings) or in instance/config.py."""
from __future__ import annotations

import os
import tempfile

from .sandbox.limits import Limits

# a run's limit defaults are typed once, in app/sandbox/limits.py's Limits; the settings below take theirs
_LIMITS = Limits()


class Config:
    # storage: any SQLAlchemy URL; the default is a SQLite file in instance/
    SQLALCHEMY_DATABASE_URI: str | None = None
    # how long one statement waits for SQLite's write lock before "database is locked"; short,
    # because app/storage/retry.py retries on top of it with jittered backoff (sqlite's own wait has none)
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
    # (a learner who fixes and runs, fixes and runs, reaches ten a minute: 30 leaves them working)
    RUNS_PER_MINUTE_PER_SESSION = 30
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

    # code history (app/services/revisions.py): saves while typing extend the latest revision
    # until the learner pauses this long, or the revision reaches this age; a paste, a run and a
    # restore always start a new one. Past the per-session cap the oldest revisions are deleted
    REVISION_PAUSE_SECONDS = 2.0
    REVISION_MAX_AGE_SECONDS = 60.0
    REVISIONS_KEPT_PER_SESSION = 200

    # retention: finished executions older than this are deleted, and sessions idle this long
    # (no autosave, no run) go with their executions; pruned every RETENTION_INTERVAL_SECONDS
    EXECUTION_RETENTION_SECONDS = 24 * 3600
    SESSION_IDLE_RETENTION_SECONDS = 7 * 24 * 3600
    RETENTION_INTERVAL_SECONDS = 300

    # default limits of one run, from Limits (app/sandbox/limits.py; languages may raise some, see
    # app/sandbox/languages/)
    RUN_TIMEOUT_SECONDS = _LIMITS.timeout_seconds
    # CPU time of the whole run, all its processes together (cgroup cpuacct; RLIMIT_CPU per
    # process stays as a backstop, and is the limit where the host has no cpuacct controller)
    RUN_CPU_SECONDS = _LIMITS.cpu_seconds
    # at most this many cores' worth of CPU for one run (cgroup cpu bandwidth, equal weights
    # between runs), so a run of busy processes cannot starve the others; 0 for no cap
    RUN_CPU_CORES = 1.0
    RUN_MEMORY_BYTES = _LIMITS.memory_bytes
    RUN_PROCESSES = _LIMITS.processes
    OUTPUT_LIMIT_BYTES = _LIMITS.output_bytes
    RUN_FILE_SIZE_BYTES = _LIMITS.file_size_bytes
    RUN_DISK_BYTES = _LIMITS.disk_bytes
    RUN_OPEN_FILES = _LIMITS.open_files
    # the most a run may ask for in its "limits" (422 limit_too_high above); a language whose
    # default is higher (Java's memory) may ask up to its default
    RUN_TIMEOUT_SECONDS_MAX = 20.0
    RUN_MEMORY_BYTES_MAX = 1024 * 1024 * 1024
    RUN_PROCESSES_MAX = 256
    OUTPUT_LIMIT_BYTES_MAX = 1024 * 1024
    # command-line arguments of a run ("args"): how many, and their UTF-8 bytes together
    RUN_ARGS_MAX_COUNT = 32
    RUN_ARGS_MAX_BYTES = 8 * 1024

    # interactive runs ("interactive": true: stdin stays open, POST /executions/{id}/stdin feeds it)
    # have workers (per process) and slots (machine-wide, a uid and cgroup range of their own) apart
    # from batch runs: learners thinking about their answer never hold a batch run's slot
    INTERACTIVE_RUN_WORKERS = 8
    INTERACTIVE_RUN_SLOTS = 8
    # the wall clock (RUN_TIMEOUT_SECONDS) does not run while the program waits for input; these
    # end an interactive run instead (TIMEOUT, error input_idle_limit / interactive_time_limit):
    # waiting for input this long with none coming, and the whole run, waiting included
    INTERACTIVE_INPUT_IDLE_SECONDS = 120.0
    INTERACTIVE_TIME_LIMIT_SECONDS = 900.0
    # the transcript (interleaved stdin, stdout, stderr) kept with an interactive run, in characters
    INTERACTIVE_TRANSCRIPT_MAX_CHARS = 128 * 1024

    # request size limits
    MAX_CONTENT_LENGTH = 1024 * 1024
    SOURCE_MAX_BYTES = 256 * 1024
    # a program's other files beside its entry file ("files"): how many, and their bytes together
    FILES_MAX_COUNT = 16
    FILES_MAX_BYTES = 256 * 1024
    # stdin of a run: the run request's, plus for an interactive run all it is sent while it runs
    STDIN_MAX_BYTES = 256 * 1024

    # long-poll: the longest ?wait= accepted, and how often each process's watcher looks (one
    # query for all its waiters) for executions another engine process finished; in-process
    # completions wake a waiter at once
    LONG_POLL_MAX_SECONDS = 30
    LONG_POLL_RECHECK_SECONDS = 0.1

    # event streams (GET /executions/{id}/events, app/live/stream.py). Each open stream holds one
    # web thread (gunicorn gthread has 512): at most this many at once, so autosaves, runs and
    # long-polls always find a thread; past it a stream gets 503
    EVENTS_MAX_STREAMS = 256
    # a stream ends after its final event, or after this long (the client reconnects with Last-Event-ID)
    EVENTS_MAX_SECONDS = 300.0
    # a comment line this often keeps proxies from closing an idle stream, and finds clients that left
    EVENTS_KEEPALIVE_SECONDS = 15.0
    # how often a stream re-reads its execution's status while no run of this process feeds it (a
    # run of another engine process, or one still queued); a run of this process wakes it at once,
    # and the process's watcher (app/live/watcher.py) wakes it when another process ends the run
    EVENTS_RECHECK_SECONDS = 0.5
    # the same while this process runs it: only a reaper in another process could end it unseen
    EVENTS_LOCAL_RECHECK_SECONDS = 2.0
    # what EventSource waits before it reconnects, in milliseconds
    EVENTS_RETRY_MS = 1000

    # live output: a run's chunks are coalesced into events (app/output_batching.py) so a print
    # loop cannot send the page thousands of tiny ones. An event goes out this long after the first
    # byte it holds (so at most ~50 a second per run, and live output stays live), or at once when
    # it holds OUTPUT_EVENT_MAX_CHARS characters (the page parses each event in one piece)
    OUTPUT_FLUSH_SECONDS = 0.02
    OUTPUT_EVENT_MAX_CHARS = 16 * 1024
    # SQLite: autosaves that arrive while another is being written are written together in one
    # transaction (app/storage/group_commit.py), at most this many; each is acknowledged after that commit
    AUTOSAVE_GROUP_COMMIT_MAX = 64
    # an editor's plain autosave (PATCH /code-sessions/<id> of code, version, reason, language) is
    # served by a WSGI lane in front of Flask (app/api/autosave_lane.py, docs/autosave.md): the same
    # save, answer, log line and metrics for less CPU; anything else, and every error, goes to Flask
    AUTOSAVE_FAST_LANE = True
    # engine processes tell each other of run events, ends, stops and stdin: LISTEN/NOTIFY on
    # PostgreSQL, sockets on SQLite (BACKBONE_LOCAL) (app/live/backbone.py, docs/scaling.md); off, they
    # learn only ends, stops and stdin, by reading the database every LONG_POLL_RECHECK_SECONDS
    BACKBONE_ENABLED = True
    # with the backbone listening, the database is still read this often, for what a lost
    # connection may have missed (never the way news normally arrives)
    BACKBONE_FALLBACK_SECONDS = 5.0
    # SQLite: the same backbone between the processes of one box over Unix datagram sockets beside
    # the database file; app/gunicorn_conf.py turns it on when it starts more than one worker
    BACKBONE_LOCAL = False

    # sandbox: "bubblewrap" refuses to run code without it; "none" is for development only
    ISOLATION = "bubblewrap"
    SANDBOX_UID_BASE = 61000
    SANDBOX_CGROUP_NAME = "live-code-engine"
    # the syscall filter (seccomp, docs/security.md) on every sandboxed program; turn it off only
    # to diagnose a program the filter breaks (/health then says "syscall_filter": null)
    SANDBOX_SYSCALL_FILTER = True
    # Python runs fork from a fork server per slot (an interpreter started once in the slot's
    # sandbox, each run cloned into fresh namespaces: docs/security.md, "The fork server"); false
    # starts a fresh sandbox per run (a warm one where WARM_POOL has it). /health says which.
    # The slot's process caps are raised by the server's own two processes: a run's program may
    # start exactly as many processes as after a cold start (docs/fork-server.md)
    FORK_SERVER = True
    # runs one fork server serves before a fresh one takes its place (it is also replaced at
    # once on any doubt: a process left behind, an unexpected child, a report that does not come)
    FORK_SERVER_RUNS = 500
    # > 0: each engine process tries the run slots it used last first, and leaves a slot another
    # process released less than this long ago to it (its fork server is there: a run of this
    # process would end it). 0 (the default): any free slot, lowest first (app/slots.py)
    RUN_SLOT_KEEP_SECONDS = 0.0
    # warm sandboxes kept ready per language in each engine process (0 or {} turns them off),
    # and the machine-wide number of slots they may hold between them
    WARM_POOL = {"python": 2, "javascript": 1}
    WARM_SLOTS = 16
    # compiled languages: the compile step's own limits, and the artifact cache shared by the host
    COMPILE_TIMEOUT_SECONDS = 15.0
    COMPILE_MEMORY_BYTES = 512 * 1024 * 1024
    COMPILE_CACHE_DIR = os.path.join(tempfile.gettempdir(), "live-code-engine-cache")
    COMPILE_CACHE_BYTES = 256 * 1024 * 1024

    # diagnostics (POST /diagnostics): linters run in the sandbox, in slots of their own range;
    # past DIAGNOSTICS_SLOTS checks at once (per machine) a check waits this long, then answers "busy"
    DIAGNOSTICS_SLOTS = 2
    DIAGNOSTICS_SLOT_WAIT_SECONDS = 1.0
    # pre-started linter sandboxes (app/sandbox/lint_pool.py) kept ready per linter that can wait
    # for its input (ruff, oxlint) in each engine process, from its first check on; 0 turns them
    # off (every check then starts its own sandbox: ~15-30 ms more). Each serves one check.
    DIAGNOSTICS_WARM_SANDBOXES = 2
    # the machine-wide slots they may hold between them, right after DIAGNOSTICS_SLOTS' range
    # (a process that finds none free checks cold): enough for gunicorn's default 4 workers x 2
    # linters x DIAGNOSTICS_WARM_SANDBOXES
    DIAGNOSTICS_WARM_SLOTS = 16
    # a check that finds none ready (a burst of checks) waits this long for the one being started
    # before it starts a sandbox of its own: a cold check is slower, and its CPU slows the refill
    DIAGNOSTICS_WARM_WAIT_SECONDS = 0.1
    # a process that has had no check for this long ends its pre-started sandboxes (and frees their
    # memory, ~20 MiB each) until its next check, which then waits for them or starts cold; 0: never
    DIAGNOSTICS_WARM_IDLE_SECONDS = 600.0
    # the largest program checked (413 above): linters take time in proportion to it
    DIAGNOSTICS_SOURCE_MAX_BYTES = 64 * 1024
    # the ruff and oxlint executables; None finds them beside the engine's Python (the virtualenv), then on PATH
    DIAGNOSTICS_RUFF_PATH: str | None = None
    DIAGNOSTICS_OXLINT_PATH: str | None = None

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

    # with access control on, who is an operator (may create test suites and read hidden cases):
    # a token whose claim AUTH_OPERATOR_CLAIM equals AUTH_OPERATOR_VALUE, or lists it (a roles array)
    AUTH_OPERATOR_CLAIM = "role"
    AUTH_OPERATOR_VALUE = "operator"

    # graded runs (POST /test-suites, app/grading/): a suite's size, bounded so that one suite
    # cannot hold a worker for long or fill the database (a request body is at most MAX_CONTENT_LENGTH)
    GRADE_MAX_CASES = 200
    # each case's stdin and expected output, in bytes of UTF-8
    GRADE_CASE_IO_MAX_BYTES = 256 * 1024
    # a suite's checker program, in bytes of UTF-8
    GRADE_CHECKER_MAX_BYTES = 64 * 1024
    # per-case wall time: the default, and the most a suite may ask for
    GRADE_TIME_LIMIT_MS = 2000
    GRADE_MAX_TIME_LIMIT_MS = 10_000
    # all cases of one graded run together (past it the rest are SKIPPED and complete is false)
    GRADE_TOTAL_TIME_LIMIT_MS = 30_000
    GRADE_MAX_TOTAL_TIME_LIMIT_MS = 120_000
    # the most memory a suite may give a case (its default is the language's run limit)
    GRADE_MAX_MEMORY_BYTES = 1024 * 1024 * 1024
    # a visible case's actual output is shown up to this many bytes (the cap of the output itself
    # is OUTPUT_LIMIT_BYTES, as for a run)
    GRADE_SHOWN_OUTPUT_BYTES = 8 * 1024
    # a checker program's wall time per case, and for all the cases of a graded run together (the
    # cases it does not reach are SKIPPED): a run's claim must cover its checking too
    GRADE_CHECKER_TIMEOUT_SECONDS = 5.0
    GRADE_CHECKER_TOTAL_SECONDS = 60.0

    RESTX_MASK_SWAGGER = False
    RESTX_ERROR_404_HELP = False
    JSON_SORT_KEYS = False
