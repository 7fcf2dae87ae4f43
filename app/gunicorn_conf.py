"""gunicorn settings: threads, not processes, carry the long-polls (each holds a thread while it waits)."""
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# one process holds the run pool; more processes share the machine-wide slots and the database
workers = int(os.environ.get("WEB_WORKERS", "1"))
worker_class = "gthread"
# hundreds of long-polls and event streams wait at once; an idle thread costs little memory
threads = int(os.environ.get("WEB_THREADS", "512"))
# a long-poll lasts at most 30 s
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
# SIGTERM: runs under way get this long to finish (longer than the default run timeout)
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
accesslog = os.environ.get("WEB_ACCESS_LOG") or None


def worker_exit(server, worker):  # noqa: ANN001 (gunicorn hook)
    """Stop claiming runs and let the ones under way end before the process goes."""
    app = getattr(worker, "wsgi", None)
    engine = getattr(app, "extensions", {}).get("engine") if app else None
    if engine is not None:
        engine.runner.shutdown()
