"""Prometheus metrics at GET /metrics: runs, queue, run pool, warm pool and HTTP, summed over every
gunicorn worker.

Under gunicorn, app/gunicorn_conf.py sets PROMETHEUS_MULTIPROC_DIR before the workers start:
prometheus_client then keeps each process's values in files there and a scrape, served by any
worker, reads them all. Without it (the Flask test client, `flask run`) each app keeps its own
registry. The queue gauges are read from the database at scrape time, so they need neither.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import NamedTuple

from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import disable_created_metrics, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import select

from . import logs
from .storage import models
from .storage.database import db
from .storage.models import Execution

log = logging.getLogger(__name__)

# a run's wall time: most are well under a second, the default limit is 5 s, a language may allow more
RUN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# waiting for a worker: milliseconds when idle, up to minutes when the queue is long
QUEUE_WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# requests: most take milliseconds; long-polls hold up to 30 s
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# how often each worker copies its run pool and warm pool state into the shared files
SYNC_SECONDS = 1.0
# the route label of requests no URL rule matched (their raw paths would be unbounded label values)
UNMATCHED_ROUTE = "(unmatched)"


class Metrics:
    """One app's metrics; at app.extensions["metrics"]."""

    def __init__(self, multiprocess_dir: str | None) -> None:
        self.multiprocess_dir = multiprocess_dir
        # in multiprocess mode values go to files and a scrape collects them from there; a registry
        # of this app's own otherwise, so that apps built side by side (tests) do not share counts
        own = None if multiprocess_dir else CollectorRegistry()
        self.runs = Counter(
            "engine_runs", "Executions that reached a final status", ["language", "status"], registry=own
        )
        self.run_seconds = Histogram(
            "engine_run_duration_seconds", "Wall time of a run in the sandbox (execution_time_ms)",
            ["language"], buckets=RUN_BUCKETS, registry=own,
        )
        self.queue_wait_seconds = Histogram(
            "engine_run_queue_wait_seconds", "Time from queued to started", ["language"],
            buckets=QUEUE_WAIT_BUCKETS, registry=own,
        )
        self.http_requests = Counter(
            "engine_http_requests", "HTTP requests by route template and status", ["method", "route", "status"],
            registry=own,
        )
        self.http_seconds = Histogram(
            "engine_http_request_duration_seconds", "Time to the response's headers (a stream's body goes on after)",
            ["method", "route", "status"], buckets=HTTP_BUCKETS, registry=own,
        )
        # process state, summed over the live workers: each process sets its own values
        self.workers_busy = Gauge(
            "engine_run_workers_busy", "Run pool threads running an execution", registry=own, multiprocess_mode="livesum"
        )
        self.workers_idle = Gauge(
            "engine_run_workers_idle", "Run pool threads free for the next execution", registry=own,
            multiprocess_mode="livesum",
        )
        self.warm_ready = Gauge(
            "engine_warm_pool_ready", "Warm sandboxes started and waiting for a run", ["language"], registry=own,
            multiprocess_mode="livesum",
        )
        self.warm_target = Gauge(
            "engine_warm_pool_target", "Warm sandboxes each language is kept at", ["language"], registry=own,
            multiprocess_mode="livesum",
        )
        self.warm_hits = Counter("engine_warm_pool_hits", "Runs that took a warm sandbox", registry=own)
        self.warm_misses = Counter(
            "engine_warm_pool_misses", "Runs of a warm language that found none ready and started cold", registry=own
        )
        self._warm_seen = (0, 0)
        self._sync_lock = threading.Lock()
        # (method, route, status) -> its request counter and duration histogram: labels() takes a lock
        # and converts every value on each call (profiled: half of the per-request metrics cost)
        self._http_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        if multiprocess_dir:
            self.registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.registry, path=multiprocess_dir)
        else:
            self.registry = own
        self.registry.register(DatabaseCollector())

    def http_series(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        """The request counter and duration histogram of these labels (bounded: routes x methods x statuses)."""
        key = (method, route, status)
        series = self._http_series.get(key)
        if series is None:
            labels = (method, route, str(status))
            # a race makes the same children twice: labels() returns the same ones
            series = self._http_series[key] = (self.http_requests.labels(*labels), self.http_seconds.labels(*labels))
        return series

    def count_request(self, method: str, route: str, status: int, started: float | None) -> None:
        """Count a request and its duration (started: its time.perf_counter() at the start)."""
        count, seconds = self.http_series(method, route, status)
        count.inc()
        if started is not None:
            seconds.observe(time.perf_counter() - started)

    def sync(self, engine: object) -> None:
        """Copy this process's run pool and warm pool state into the metrics."""
        runner = engine.runner
        busy = runner.busy
        self.workers_busy.set(busy)
        self.workers_idle.set(max(runner.workers - busy, 0))
        pool = engine.sandbox.warm_pool
        if pool is None:
            return
        # no RSS: it scans the machine's process table, every second in every worker (profiled)
        state = pool.describe(rss=False)
        for language, size in state["sizes"].items():
            self.warm_target.labels(language).set(size)
            self.warm_ready.labels(language).set(state["ready"].get(language, 0))
        with self._sync_lock:
            # the pool counts since it started; counters only take the increase (files outlive a worker)
            hits, misses = state["hits"], state["misses"]
            seen_hits, seen_misses = self._warm_seen
            if hits > seen_hits:
                self.warm_hits.inc(hits - seen_hits)
            if misses > seen_misses:
                self.warm_misses.inc(misses - seen_misses)
            self._warm_seen = (max(hits, seen_hits), max(misses, seen_misses))

    def scrape(self) -> bytes:
        engine = current_app.extensions.get("engine")
        if engine is not None:
            self.sync(engine)
        return generate_latest(self.registry)


class DatabaseCollector:
    """Queue depth and running count, read from the database at scrape time: true for every process."""

    def collect(self) -> Iterator[Metric]:
        counts = models.active_counts()
        db.session.rollback()
        yield GaugeMetricFamily("engine_queue_depth", "Executions QUEUED, waiting for a worker", counts.get(models.QUEUED, 0))
        yield GaugeMetricFamily("engine_runs_running", "Executions RUNNING on any engine process", counts.get(models.RUNNING, 0))


def init_app(app: Flask) -> None:
    """Serve GET /metrics, and time and count every request."""
    disable_created_metrics()
    multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    state = Metrics(multiprocess_dir)
    app.extensions["metrics"] = state
    app.add_url_rule("/metrics", "metrics", _serve_metrics, methods=["GET"])
    app.before_request(_begin)
    app.after_request(_end)
    if multiprocess_dir:
        # other workers' run pools change while this one serves the scrape: each publishes its own
        threading.Thread(target=_sync_forever, args=(app, state), name="metrics-sync", daemon=True).start()


class Moved(NamedTuple):
    """What the metrics and the log line of a move need of the execution (a row of the same names will do)."""

    session_id: str | None
    language: str | None
    queued_at: datetime | None
    started_at: datetime | None
    execution_time_ms: int | None = None
    compile_time_ms: int | None = None
    exit_code: int | None = None
    error: str | None = None


def execution_moved(execution_id: str, status: str, known: Moved | None = None) -> None:
    """Count and log an execution's move to status; the runner calls it after each move it made.

    Without `known`, reads the row once for it; never raises, since a run's result matters more
    than its metrics.
    """
    try:
        row = known if known is not None else _read_moved(execution_id)
        if row is None:
            # deleted in between (its session went): nothing left to describe
            logs.execution_moved(execution_id, None, None, None, status)
            return
        state = current_app.extensions.get("metrics")
        queue_wait = _seconds_between(row.queued_at, row.started_at)
        if status == models.RUNNING:
            from_status = models.QUEUED
            if state is not None and queue_wait is not None:
                state.queue_wait_seconds.labels(row.language).observe(queue_wait)
            logs.execution_moved(execution_id, row.session_id, row.language, from_status, status, queue_wait_ms=_ms(queue_wait))
            return
        from_status = models.RUNNING if row.started_at is not None else models.QUEUED
        if state is not None:
            state.runs.labels(row.language, status).inc()
            if row.execution_time_ms is not None:
                state.run_seconds.labels(row.language).observe(row.execution_time_ms / 1000)
        logs.execution_moved(
            execution_id, row.session_id, row.language, from_status, status, row.error,
            queue_wait_ms=_ms(queue_wait), execution_time_ms=row.execution_time_ms,
            compile_time_ms=row.compile_time_ms, exit_code=row.exit_code,
        )
    except Exception as error:  # noqa: BLE001 (observability must not fail a run)
        log.warning("execution %s -> %s not recorded in metrics: %s", execution_id, status, error)


def _read_moved(execution_id: str) -> Moved | None:
    with db.engine.connect() as connection:
        return connection.execute(
            select(*(getattr(Execution, name) for name in Moved._fields)).where(Execution.id == execution_id)
        ).one_or_none()


def _serve_metrics() -> Response:
    # the text format every Prometheus version reads (the names here need none of 1.0.0's escaping)
    return Response(current_app.extensions["metrics"].scrape(), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


def _begin() -> None:
    g.metrics_started = time.perf_counter()


def _end(response: Response) -> Response:
    started = g.get("metrics_started")
    state = current_app.extensions["metrics"]
    # the URL rule, not the path: ids in labels would make a new series per execution
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
    state.count_request(request.method, route, response.status_code, started)
    return response


def _sync_forever(app: Flask, state: Metrics) -> None:
    while True:
        time.sleep(SYNC_SECONDS)
        engine = app.extensions.get("engine")
        if engine is None:
            continue
        if not engine.runner.accepting:
            # shutting down: this process's gauges go with it (gunicorn_conf.child_exit)
            return
        try:
            state.sync(engine)
        except Exception as error:  # noqa: BLE001 (try again on the next tick)
            log.warning("metrics sync failed: %s", error)


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
