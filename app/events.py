"""In-process publish/subscribe of an execution's events, so waiters wake the moment something happens."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    kind: str  # "status", "stdout", "stderr" or "final"
    data: object


@dataclass(eq=False)
class Subscription:
    execution_id: str
    _events: list[Event] = field(default_factory=list)
    _condition: threading.Condition = field(default_factory=threading.Condition)

    def deliver(self, event: Event) -> None:
        with self._condition:
            self._events.append(event)
            self._condition.notify_all()

    def take(self, timeout: float) -> list[Event]:
        """Events delivered since the last take, waiting up to timeout seconds for the first."""
        with self._condition:
            if not self._events:
                self._condition.wait(timeout)
            events, self._events = self._events, []
            return events


class Hub:
    """Fan-out of execution events to the requests that wait on them in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = {}

    @contextmanager
    def subscribe(self, execution_id: str) -> Iterator[Subscription]:
        subscription = Subscription(execution_id)
        with self._lock:
            self._subscribers.setdefault(execution_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                subscribers = self._subscribers.get(execution_id, set())
                subscribers.discard(subscription)
                if not subscribers:
                    self._subscribers.pop(execution_id, None)

    def publish(self, execution_id: str, kind: str, data: object = None) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(execution_id, ()))
        event = Event(kind, data)
        for subscription in subscribers:
            subscription.deliver(event)

    def has_subscribers(self, execution_id: str) -> bool:
        with self._lock:
            return execution_id in self._subscribers

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subscribers.values())
