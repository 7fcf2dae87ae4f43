"""The one watcher of a process: runs that end in another engine process, announced to this one's hub."""
from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import or_, select

from ..storage import models
from ..storage.database import db
from ..storage.models import Execution
from .backbone import Backbone
from .hub import Hub

log = logging.getLogger(__name__)

# ids per watcher query (SQLite allows a few thousand bound parameters)
WATCH_BATCH = 500

# (wanted, do): each tick, in an app context, do() runs when wanted() says there is something to do
Chore = tuple[Callable[[], bool], Callable[[], None]]


class Watcher:
    """Publishes "final" in this process's hub when a watched run ends in another process.

    Every waiter of the process (long-polls, event streams) enters watch(); one query per tick
    serves them all. This process's own runs publish their end themselves. With the backbone
    connected, other processes' events arrive as notifications and the database is only a slow
    fallback (a notification lost with a connection).
    """

    def __init__(self, app: Flask, hub: Hub, instance_id: str, chores: tuple[Chore, ...] = ()) -> None:
        self.app = app
        self.hub = hub
        self.instance_id = instance_id
        self.chores = chores
        self.backbone: Backbone | None = None
        self._watched: Counter[str] = Counter()
        self._announced: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch_forever, name="watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @contextmanager
    def watch(self, execution_id: str) -> Iterator[None]:
        """While inside, a "final" event is published here when another process finishes the execution."""
        with self._lock:
            self._watched[execution_id] += 1
        try:
            yield
        finally:
            with self._lock:
                self._watched[execution_id] -= 1
                if self._watched[execution_id] <= 0:
                    del self._watched[execution_id]
                    self._announced.discard(execution_id)

    def _watch_forever(self) -> None:
        tick = float(self.app.config["LONG_POLL_RECHECK_SECONDS"])
        fallback = float(self.app.config["BACKBONE_FALLBACK_SECONDS"])
        while not self._stop.wait(fallback if self.backbone is not None and self.backbone.connected else tick):
            with self._lock:
                ids = [i for i in self._watched if i not in self._announced]
            chores = [do for wanted, do in self.chores if wanted()]
            if not ids and not chores:
                continue
            try:
                with self.app.app_context():
                    try:
                        for do in chores:
                            do()
                        if ids:
                            self._announce_finished(ids)
                    finally:
                        db.session.remove()
            except Exception:
                # waiters fall back to reading the database themselves; try again next tick
                log.exception("watcher failed; retrying on the next tick")

    def _announce_finished(self, ids: list[str]) -> None:
        """One query for every waiter in this process: publish "final" for those another process ended."""
        for start in range(0, len(ids), WATCH_BATCH):
            rows = db.session.execute(
                select(Execution.id, Execution.status).where(
                    Execution.id.in_(ids[start : start + WATCH_BATCH]),
                    Execution.status.in_(models.TERMINAL),
                    # this process's own runs publish their end themselves
                    or_(Execution.claimed_by.is_(None), Execution.claimed_by != self.instance_id),
                )
            ).all()
            for execution_id, status in rows:
                with self._lock:
                    if execution_id not in self._watched:
                        continue
                    self._announced.add(execution_id)
                self.hub.publish(execution_id, "final", status)
