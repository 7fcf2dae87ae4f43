"""gunicorn settings: threads, not processes, carry the long-polls (each holds a thread while it waits)."""
import gc
import os
import shutil
import signal
import tempfile
import time

from gunicorn.workers import gthread

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# one worker process per core (at most 4): a request's Python runs under one process's GIL, so one
# worker used one core of two (autosave capacity measured in docs/scaling.md). Each worker owns a
# runner; runs share the machine-wide slots, and SQLite's writers queue on one file lock (app/storage/retry.py)
workers = int(os.environ.get("WEB_WORKERS") or min(4, os.cpu_count() or 1))
# several workers over one SQLite file: each tells the others of its runs' events (app/live/backbone.py),
# so an events stream answered by any worker is live
os.environ.setdefault("ENGINE_BACKBONE_LOCAL", "true" if workers > 1 else "false")


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker, telling the master it is alive once a second instead of on every
    wake of its poller: each tell is a utime() of a file, and under 50 autosave clients that was
    2.4% of a worker's CPU (py-spy). The master only acts on a silence of `timeout` (60 s)."""

    _last_notified = 0.0

    def notify(self) -> None:
        now = time.monotonic()
        if now - self._last_notified >= 1.0:
            self._last_notified = now
            super().notify()


worker_class = ThreadWorker
# hundreds of long-polls and event streams wait at once; an idle thread costs little memory
threads = int(os.environ.get("WEB_THREADS", "512"))
# open connections a worker keeps (gthread answers "Connection: close" once more than
# worker_connections - threads of them are idle between requests): 1,000 editors holding a keep-alive
# connection each over two workers needs ~500 idle per worker, and gunicorn's default (1,000 - 512
# threads = 488) closed one connection in three, each reconnect costing a TCP handshake and accept
worker_connections = int(os.environ.get("WEB_WORKER_CONNECTIONS") or threads + 4096)
# a long-poll lasts at most 30 s
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
# SIGTERM: runs under way get this long to finish (longer than the default run timeout)
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
accesslog = os.environ.get("WEB_ACCESS_LOG") or None


# gunicorn's control socket defaults to one path per user, which every engine (and test server)
# on the host would share; set WEB_CONTROL_SOCKET to a path to have one
if os.environ.get("WEB_CONTROL_SOCKET"):
    control_socket = os.environ["WEB_CONTROL_SOCKET"]
else:
    control_socket_disable = True


def _runner(worker):  # noqa: ANN001, ANN202 (gunicorn objects)
    app = getattr(worker, "wsgi", None)
    engine = getattr(app, "extensions", {}).get("engine") if app else None
    return engine.runner if engine is not None else None


def post_worker_init(worker):  # noqa: ANN001 (gunicorn hook)
    """Tell the runner the moment SIGTERM arrives: it stops claiming before gunicorn drains requests.

    Also move the loaded app's objects (~110,000: Flask, SQLAlchemy, the schemas) out of the
    garbage collector's reach: they live as long as the worker, and a full collection walking them
    held the GIL ~70 ms (measured) in the middle of whatever requests were under way."""
    gc.freeze()
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):  # noqa: ANN001, ANN202
        runner = _runner(worker)
        if runner is not None:
            # non-blocking: sets a flag; POST run answers 503 shutting_down from here on
            runner.begin_shutdown()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def worker_int(worker):  # noqa: ANN001 (gunicorn hook: SIGINT / SIGQUIT, the quick stop)
    """Stop claiming at once; worker_exit still waits for the runs under way."""
    runner = _runner(worker)
    if runner is not None:
        runner.begin_shutdown()


def worker_exit(server, worker):  # noqa: ANN001 (gunicorn hook)
    """Stop claiming runs and let the ones under way end before the process goes; queued ones stay
    QUEUED in the database for the next start."""
    runner = _runner(worker)
    if runner is not None:
        runner.shutdown()


# prometheus_client's multiprocess mode: each worker writes its metrics to files in this directory
# and GET /metrics, served by any worker, sums them (app/metrics.py); one fresh directory per server
_metrics_dir = None


def on_starting(server):  # noqa: ANN001 (gunicorn hook)
    """Make this server's metrics directory before any worker starts (they inherit the variable).

    prometheus_client picks its mode when first imported, so nothing here imports it before this.
    """
    global _metrics_dir
    _metrics_dir = os.path.join(tempfile.gettempdir(), f"live-code-engine-metrics-{os.getpid()}")
    # a directory left by an earlier server with the same pid holds stale counts
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def child_exit(server, worker):  # noqa: ANN001 (gunicorn hook)
    """A worker is gone: drop its live gauges (busy workers, warm sandboxes) from the sums; its counts stay."""
    if _metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, _metrics_dir)


def on_exit(server):  # noqa: ANN001 (gunicorn hook)
    if _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
