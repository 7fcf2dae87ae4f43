"""The workers of both lanes and the runs this process has handed to one of them."""
from __future__ import annotations

import threading
from collections import Counter

from .job import Lane


class Capacity:
    """Who may hand a run to a worker, and which runs this process holds.

    A run is held from the moment a picker (the direct start or the dispatcher) hands it over until
    its worker lets go: a second picker in this process never hands over the same run, and the
    reaper leaves exactly the held runs alone (one of them may be RUNNING and ours a moment
    before its worker starts it).
    """

    def __init__(self, lanes: tuple[Lane, Lane]) -> None:
        self.lanes = lanes
        self._lock = threading.Lock()
        self._held: set[str] = set()
        # held runs not yet claimed, by owner: the fair pick counts them as running
        self._unclaimed: dict[str, str | None] = {}

    def lane(self, interactive: bool) -> Lane:
        return self.lanes[1] if interactive else self.lanes[0]

    def take(self, lane: Lane, execution_id: str, owner: str | None) -> bool:
        """Take a worker of lane for execution_id; False if none is free or the run is held already."""
        with self._lock:
            if lane.busy >= lane.workers or execution_id in self._held:
                return False
            lane.busy += 1
            self._held.add(execution_id)
            self._unclaimed[execution_id] = owner
            return True

    def claimed(self, execution_id: str) -> None:
        """The worker's claim is over (won or lost): the run no longer counts as about to start."""
        with self._lock:
            self._unclaimed.pop(execution_id, None)

    def give_back(self, lane: Lane, execution_id: str) -> None:
        with self._lock:
            lane.busy -= 1
            self._held.discard(execution_id)
            self._unclaimed.pop(execution_id, None)

    def has_free_worker(self, lane: Lane) -> bool:
        with self._lock:
            return lane.busy < lane.workers

    def busy(self, lane: Lane) -> int:
        with self._lock:
            return lane.busy

    def holds(self, execution_id: str) -> bool:
        with self._lock:
            return execution_id in self._held

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def unclaimed_by_owner(self) -> Counter[str | None]:
        with self._lock:
            return Counter(self._unclaimed.values())
