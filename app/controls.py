"""Stop and stdin requests for the runs this process has in flight.

A request that lands in the process running the program reaches it at once (deliver_cancel,
deliver_stdin); every request is also stored in the database first (executions.cancel_requested_at,
execution_stdin rows), and relay() hands this process's runs what other processes stored. relay()
is called by the runner's watcher on every tick while runs are in flight here; on PostgreSQL the
backbone (app/live/backbone.py) carries each request to the process running it at once, and the tick
becomes a slow fallback.
"""
from __future__ import annotations

import threading
import time

from sqlalchemy import and_, bindparam, or_, select

from .storage.database import db
from .storage.models import Execution, ExecutionStdin
from .sandbox import Control

# ids per relay query (SQLite allows a few thousand bound parameters)
RELAY_BATCH = 200
# stops delivered for a run not (yet) registered here are remembered this long, at most this many:
# a run registered within that time starts stopped (a stop that came between its claim and its start)
EARLY_STOP_SECONDS = 60.0
EARLY_STOPS_MAX = 10_000

# which of these runs a stop was stored for: built once (every run's start reads it once, profiled
# at a quarter of the worker's own path when built each time through the ORM)
_EXECUTIONS = Execution.__table__
_STOPPED = select(_EXECUTIONS.c.id).where(
    _EXECUTIONS.c.id.in_(bindparam("ids", expanding=True)), _EXECUTIONS.c.cancel_requested_at.is_not(None)
)


class Controls:
    """The Control of every run in flight in this process, by execution id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, Control] = {}
        # stops that found no run registered here: execution id -> when (time.monotonic())
        self._early_stops: dict[str, float] = {}

    def register(self, execution_id: str, control: Control) -> None:
        """Track the run's control; a stop delivered here before (between its claim and now) stops it at once."""
        with self._lock:
            self._runs[execution_id] = control
            stopped_at = self._early_stops.pop(execution_id, None)
        if stopped_at is not None and time.monotonic() - stopped_at < EARLY_STOP_SECONDS:
            control.cancel()

    def unregister(self, execution_id: str) -> None:
        with self._lock:
            self._runs.pop(execution_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)

    def deliver_cancel(self, execution_id: str) -> bool:
        """Stop the run if this process runs it; True if it does. Otherwise the stop is remembered a
        while: the run may be claimed here and not yet registered (register() stops it then)."""
        with self._lock:
            control = self._runs.get(execution_id)
            if control is None:
                self._remember_stop(execution_id)
                return False
        control.cancel()
        return True

    def _remember_stop(self, execution_id: str) -> None:
        now = time.monotonic()
        if len(self._early_stops) >= EARLY_STOPS_MAX:
            self._early_stops = {i: at for i, at in self._early_stops.items() if now - at < EARLY_STOP_SECONDS}
            if len(self._early_stops) >= EARLY_STOPS_MAX:
                self._early_stops.pop(next(iter(self._early_stops)))
        self._early_stops[execution_id] = now

    def deliver_stdin(self, execution_id: str, seq: int, data: str, eof: bool) -> bool:
        """Hand chunk seq to the run if this process runs it; True if it does."""
        control = self._get(execution_id)
        if control is None:
            return False
        control.send(seq, data.encode(), eof)
        return True

    def deliver_stdin_first(self, execution_id: str, seq: int, data: str, eof: bool, room_bytes: int) -> bool:
        """Hand chunk seq to the run before it is stored, if this process runs it and it is the very next chunk
        and fits; True if handed over (the learner's reply does not wait for the database write)."""
        control = self._get(execution_id)
        return control is not None and control.send_next(seq, data.encode(), eof, room_bytes)

    def stop_interactive(self, reason: str) -> None:
        """Stop every interactive run in flight here, each ending with reason (an engine shutting down)."""
        with self._lock:
            runs = [control for control in self._runs.values() if control.interactive]
        for control in runs:
            control.cancel(reason)

    def relay(self, only: list[str] | None = None) -> None:
        """Deliver the stop and stdin requests other processes stored for runs in flight here (in an app context);
        only: for these runs alone."""
        with self._lock:
            runs = {
                execution_id: control
                for execution_id, control in self._runs.items()
                if not control.cancelled and (only is None or execution_id in only)
            }
        ids = list(runs)
        try:
            for start in range(0, len(ids), RELAY_BATCH):
                batch = ids[start : start + RELAY_BATCH]
                stopped = db.session.connection().execute(_STOPPED, {"ids": batch}).scalars().all()
                for execution_id in stopped:
                    runs[execution_id].cancel()
                # each run's chunks from the first it has not received
                wanted = [
                    and_(ExecutionStdin.execution_id == execution_id, ExecutionStdin.seq >= runs[execution_id].next_seq)
                    for execution_id in batch
                    if runs[execution_id].interactive and execution_id not in stopped
                ]
                if not wanted:
                    continue
                chunks = db.session.execute(
                    select(ExecutionStdin.execution_id, ExecutionStdin.seq, ExecutionStdin.data, ExecutionStdin.eof)
                    .where(or_(*wanted))
                    .order_by(ExecutionStdin.seq)
                ).all()
                for execution_id, seq, data, eof in chunks:
                    runs[execution_id].send(seq, data.encode(), eof)
        finally:
            db.session.rollback()

    def _get(self, execution_id: str) -> Control | None:
        with self._lock:
            return self._runs.get(execution_id)
