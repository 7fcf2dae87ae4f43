"""Group commit: concurrent autosaves of one process written in one SQLite transaction.

Under load every save queued for SQLite's one write lock and held it through its transaction while
the process's other request threads took the GIL from it, so the lock was held far longer than the
statements took (profiled: most request threads waited on the writer queue). Here the first save to
find no transaction under way leads: it takes what has queued meanwhile (its own save included),
runs each on one connection in one transaction, commits once, and hands every waiter its own
result. A save is acknowledged only after the commit that holds it, so durability is unchanged,
and each save's conditional UPDATE still sees the saves before it (the 409 check stays exact).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection

from .retry import DatabaseBusy, retrying
from .database import db

T = TypeVar("T")


@dataclass
class _Pending(Generic[T]):
    work: Callable[[Connection], T]
    done: bool = False
    result: T | None = None
    error: BaseException | None = None


class GroupCommit:
    """One per app (per database): run(work) runs work(connection) in a shared transaction and returns its result."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()

    def run(self, work: Callable[[Connection], T]) -> T:
        mine: _Pending[T] = _Pending(work)
        with self._queue_lock:
            self._queue.append(mine)
        while not mine.done:
            with self._leader:
                if mine.done:
                    break
                with self._queue_lock:
                    batch, self._queue = self._queue[: self.limit], self._queue[self.limit :]
                self._commit(batch)
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[return-value]

    def _commit(self, batch: list[_Pending]) -> None:
        def together() -> list[object]:
            with db.engine.begin() as connection:
                return [pending.work(connection) for pending in batch]

        try:
            results = retrying(together)
        except DatabaseBusy as busy:
            for pending in batch:
                pending.error, pending.done = busy, True
            return
        except Exception as error:  # noqa: BLE001 (handed to the requests that made the saves)
            if len(batch) == 1:
                batch[0].error, batch[0].done = error, True
                return
            # one save failed: none of the batch was written; each goes again alone
            for pending in batch:
                self._alone(pending)
            return
        for pending, result in zip(batch, results):
            pending.result, pending.done = result, True

    @staticmethod
    def _alone(pending: _Pending) -> None:
        def once() -> object:
            with db.engine.begin() as connection:
                return pending.work(connection)

        try:
            pending.result = retrying(once)
        except Exception as error:  # noqa: BLE001 (handed to the request that made the save)
            pending.error = error
        pending.done = True
