"""Group commit (app/storage/group_commit.py): saves that queue behind a transaction are written together,
every waiter gets its own answer (or its own error), and nothing is left waiting."""
from __future__ import annotations

import threading
import time

from sqlalchemy import text

from app.storage.database import db
from app.storage.group_commit import GroupCommit


def _table(app) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text("CREATE TABLE saves (n INTEGER PRIMARY KEY)"))


def _saved(app) -> list[int]:
    with app.app_context(), db.engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT n FROM saves ORDER BY n"))]


def _in_threads(app, count: int, target) -> list[threading.Thread]:  # noqa: ANN001
    def each(n: int) -> None:
        with app.app_context():
            target(n)

    threads = [threading.Thread(target=each, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    return threads


def test_saves_queued_behind_a_commit_share_the_next_one_and_each_gets_its_own_answer(app):
    _table(app)
    group = GroupCommit(limit=64)
    first_may_commit = threading.Event()
    connections: dict[int, int] = {}
    answers: dict[int, object] = {}

    def save(n: int):  # noqa: ANN202
        def work(connection):  # noqa: ANN001, ANN202
            if n == 0:
                first_may_commit.wait(10)
            connection.execute(text("INSERT INTO saves (n) VALUES (:n)"), {"n": n})
            connections[n] = id(connection)
            return n * 10

        answers[n] = group.run(work)

    leader = _in_threads(app, 1, save)
    deadline = time.monotonic() + 10
    while not group._leader.locked() and time.monotonic() < deadline:
        time.sleep(0.01)
    followers = _in_threads(app, 10, lambda n: save(n + 1))
    while len(group._queue) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    first_may_commit.set()
    for thread in leader + followers:
        thread.join(10)
        assert not thread.is_alive(), "a save was left waiting"

    assert answers == {n: n * 10 for n in range(11)}
    assert _saved(app) == list(range(11))
    # the ten that queued while the first held the transaction were written in one transaction
    assert len({connections[n] for n in range(1, 11)}) == 1


def test_a_failing_save_fails_alone_and_the_others_of_its_batch_are_written(app):
    _table(app)
    group = GroupCommit(limit=64)
    outcomes: dict[int, object] = {}

    def save(n: int) -> None:
        def work(connection):  # noqa: ANN001, ANN202
            if n == 7:
                raise ValueError("refused")
            connection.execute(text("INSERT INTO saves (n) VALUES (:n)"), {"n": n})
            return n

        try:
            outcomes[n] = group.run(work)
        except ValueError as error:
            outcomes[n] = error

    for thread in _in_threads(app, 30, save):
        thread.join(20)
        assert not thread.is_alive(), "a save was left waiting"

    assert isinstance(outcomes.pop(7), ValueError)
    assert outcomes == {n: n for n in range(30) if n != 7}
    assert _saved(app) == [n for n in range(30) if n != 7]
    # the lead was given back: a later save is its own leader and is written
    with app.app_context():
        assert group.run(lambda connection: connection.execute(text("INSERT INTO saves (n) VALUES (99)")).rowcount) == 1
    assert not group._leader.locked() and not group._queue
