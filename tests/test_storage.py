"""The storage layer on both backends: a SQLite file and a real PostgreSQL server (tests/support/postgres.py).

Migrations (fresh, concurrent, and adopting a database made before migrations), the core API flow,
version conflicts, idempotency, admission limits under concurrency, exactly-once claims, retention.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask

from app import create_app
from app.storage import retention, schema
from app.storage.retry import is_transient
from app.storage.database import db
from app.storage.models import RUNNING, Execution, move, utcnow
from support.client import wait_terminal


@pytest.fixture
def make_app(config, any_database) -> Iterator[Callable[..., Flask]]:
    """Factory: an engine over this test's database (SQLite file or PostgreSQL), with setting overrides."""
    apps: list[Flask] = []

    def make(**overrides: object) -> Flask:
        app = create_app({**config, "SQLALCHEMY_DATABASE_URI": any_database, "WARM_POOL": {}, **overrides})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["engine"].runner.shutdown()
        with app.app_context():
            db.engine.dispose()


def schema_differences(engine: sa.Engine) -> list:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), db.metadata)


def revision(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(sa.text("SELECT version_num FROM alembic_version"))]


def in_threads(count: int, work: Callable[[int], object], seconds: float = 60) -> list[object]:
    """Run work(0..count-1) at once, each on its own thread (released together); their results, or a failure past the deadline."""
    start = threading.Barrier(count)
    results: list[object] = [None] * count
    errors: list[BaseException] = []

    def one(n: int) -> None:
        try:
            start.wait(10)
            results[n] = work(n)
        except BaseException as error:  # noqa: BLE001 (reported by the test thread)
            errors.append(error)

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), f"threads still busy after {seconds} s"
    assert not errors, errors
    return results


def test_a_fresh_database_is_migrated_to_the_current_schema(make_app, any_database):
    app = make_app(RUNNER_ENABLED=False)
    with app.app_context():
        assert revision(db.engine) == [schema.head()]
        assert schema_differences(db.engine) == []
        assert db.engine.dialect.name == any_database.split(":")[0].split("+")[0]


def test_engines_starting_at_once_migrate_once(any_database):
    engines = [sa.create_engine(any_database) for _ in range(4)]
    try:
        results = in_threads(4, lambda n: schema.upgrade(engines[n]), seconds=30)
        head = schema.head()
        # exactly one of them found an empty database; the others waited and found it at head
        assert sorted(before or "" for before, _ in results) == ["", head, head, head]
        assert all(after == head for _, after in results)
        assert revision(engines[0]) == [head]
        assert schema_differences(engines[0]) == []
    finally:
        for engine in engines:
            engine.dispose()


def build_old_database(url: str) -> dict[str, str]:
    """The schema the first release made with db.create_all() (no alembic_version, no owner, attempts
    or owner_user_id columns), with a finished run and a queued one; their ids."""
    old = sa.MetaData()
    sessions = sa.Table(
        "code_sessions", old,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("language", sa.String(32), nullable=False),
        sa.Column("source_code", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False, index=True),
    )
    executions = sa.Table(
        "executions", old,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("session_id", sa.String(36), sa.ForeignKey("code_sessions.id", ondelete="CASCADE")),
        sa.Column("language", sa.String(32), nullable=False),
        sa.Column("source_code", sa.Text, nullable=False),
        sa.Column("stdin", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stdout", sa.Text, nullable=False),
        sa.Column("stderr", sa.Text, nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("execution_time_ms", sa.Integer),
        sa.Column("compile_time_ms", sa.Integer),
        sa.Column("stdout_truncated", sa.Boolean, nullable=False),
        sa.Column("stderr_truncated", sa.Boolean, nullable=False),
        sa.Column("error", sa.String(64)),
        sa.Column("limits", sa.Text),
        sa.Column("queued_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("lease_expires_at", sa.DateTime),
        sa.Index("ix_executions_session_queued", "session_id", "queued_at"),
        sa.Index("ix_executions_status_queued", "status", "queued_at"),
        sa.UniqueConstraint("session_id", "idempotency_key", name="uq_executions_idempotency"),
    )
    ids = {"session": "6f1c2c3e-0000-4000-8000-000000000001", "done": "6f1c2c3e-0000-4000-8000-000000000002",
           "queued": "6f1c2c3e-0000-4000-8000-000000000003"}
    now = utcnow()
    engine = sa.create_engine(url)
    try:
        old.create_all(engine)
        with engine.begin() as connection:
            connection.execute(sessions.insert(), [{
                "id": ids["session"], "language": "python", "source_code": "print(input())", "status": "ACTIVE",
                "version": 7, "created_at": now - timedelta(hours=1), "updated_at": now,
            }])
            row = {
                "session_id": ids["session"], "language": "python", "source_code": "print(input())", "idempotency_key": None,
                "stdout_truncated": False, "stderr_truncated": False, "error": None, "limits": None,
                "started_at": None, "finished_at": None, "claimed_by": None, "lease_expires_at": None,
                "exit_code": None, "execution_time_ms": None, "compile_time_ms": None,
            }
            connection.execute(executions.insert(), [
                {**row, "id": ids["done"], "stdin": "old", "status": "COMPLETED", "stdout": "old\n", "stderr": "",
                 "exit_code": 0, "execution_time_ms": 12, "queued_at": now - timedelta(minutes=5),
                 "started_at": now - timedelta(minutes=5), "finished_at": now - timedelta(minutes=5)},
                {**row, "id": ids["queued"], "stdin": "left waiting", "status": "QUEUED", "stdout": "", "stderr": "",
                 "queued_at": now - timedelta(seconds=5)},
            ])
    finally:
        engine.dispose()
    return ids


def test_a_database_made_before_migrations_is_adopted_with_its_rows(make_app, any_database):
    ids = build_old_database(any_database)
    app = make_app()
    client = app.test_client()

    rv = client.get(f"/code-sessions/{ids['session']}")
    assert rv.status_code == 200, rv.json
    assert (rv.json["source_code"], rv.json["version"]) == ("print(input())", 7)
    rv = client.get(f"/executions/{ids['done']}")
    assert rv.status_code == 200, rv.json
    assert (rv.json["status"], rv.json["stdout"]) == ("COMPLETED", "old\n")
    # the run that was waiting when the old engine stopped runs now, once
    assert wait_terminal(client, ids["queued"])["stdout"] == "left waiting\n"
    with app.app_context():
        assert revision(db.engine) == [schema.head()]
        assert schema_differences(db.engine) == []
        rows = {row.id: row for row in db.session.scalars(sa.select(Execution))}
        assert rows[ids["queued"]].attempts == 1
        assert rows[ids["done"]].attempts == 0
        # old runs are charged to their session, as new ones are
        assert {row.owner for row in rows.values()} == {ids["session"]}
    # and the old session takes new runs and autosaves
    rv = client.patch(f"/code-sessions/{ids['session']}", json={"source_code": "print(2)", "version": 7})
    assert rv.status_code == 200 and rv.json["version"] == 8


def test_the_core_flow(make_app):
    client = make_app().test_client()
    rv = client.post("/code-sessions", json={"language": "python", "source_code": "print('a')"})
    assert rv.status_code == 201
    session_id = rv.json["session_id"]
    rv = client.patch(f"/code-sessions/{session_id}", json={"source_code": "print(input() * 2)"}, headers={"If-Match": '"1"'})
    assert rv.status_code == 200 and rv.json["version"] == 2
    rv = client.post(f"/code-sessions/{session_id}/run", json={"stdin": "ab"})
    assert rv.status_code == 202 and rv.json["status"] == "QUEUED"
    execution_id = rv.json["execution_id"]
    done = wait_terminal(client, execution_id)
    assert (done["status"], done["stdout"], done["exit_code"]) == ("COMPLETED", "abab\n", 0)
    assert done["stdout_truncated"] is False
    assert done["queued_at"] <= done["started_at"] <= done["finished_at"]
    rv = client.get(f"/executions/{execution_id}/events")
    assert rv.status_code == 200 and "event: final" in rv.get_data(as_text=True)
    rv = client.get(f"/code-sessions/{session_id}/executions")
    assert rv.status_code == 200 and rv.headers["X-Total-Count"] == "1"
    assert [e["execution_id"] for e in rv.json] == [execution_id]
    assert client.delete(f"/code-sessions/{session_id}").status_code == 204
    assert client.get(f"/code-sessions/{session_id}").status_code == 404
    # the session's executions went with it
    assert client.get(f"/executions/{execution_id}").status_code == 404


def test_concurrent_autosaves_on_one_version_one_wins(make_app):
    app = make_app(RUNNER_ENABLED=False)
    session_id = app.test_client().post("/code-sessions", json={"source_code": ""}).json["session_id"]

    def save(n: int) -> tuple[int, object]:
        rv = app.test_client().patch(f"/code-sessions/{session_id}", json={"source_code": f"print({n})", "version": 1})
        return rv.status_code, rv.json

    answers = in_threads(6, save)
    assert sorted(status for status, _ in answers) == [200] + [409] * 5, answers
    assert all(body["current_version"] == 2 for status, body in answers if status == 409)
    assert app.test_client().get(f"/code-sessions/{session_id}").json["version"] == 2


def test_one_idempotency_key_queues_one_run_however_many_ask(make_app):
    app = make_app(RUNNER_ENABLED=False)
    session_id = app.test_client().post("/code-sessions", json={"source_code": "print(1)"}).json["session_id"]

    def run(_: int) -> tuple[int, str]:
        rv = app.test_client().post(f"/code-sessions/{session_id}/run", json={}, headers={"Idempotency-Key": "k-1"})
        return rv.status_code, rv.json.get("execution_id")

    answers = in_threads(6, run)
    assert {status for status, _ in answers} == {202}, answers
    assert len({execution_id for _, execution_id in answers}) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Execution)) == 1


def test_admission_limits_hold_under_concurrent_requests(make_app):
    app = make_app(RUNNER_ENABLED=False, ACTIVE_RUNS_PER_SESSION=2)
    session_id = app.test_client().post("/code-sessions", json={"source_code": "print(1)"}).json["session_id"]
    answers = in_threads(8, lambda _: app.test_client().post(f"/code-sessions/{session_id}/run", json={}).status_code)
    assert sorted(answers) == [202, 202] + [429] * 6


def test_each_queued_execution_is_claimed_exactly_once(make_app):
    app = make_app(RUNNER_ENABLED=False)
    client = app.test_client()
    ids = [client.post("/executions", json={"language": "python", "source_code": f"print({n})"}).json["execution_id"] for n in range(12)]

    def claim_all(n: int) -> list[str]:
        with app.app_context():
            try:
                return [i for i in ids if move(i, RUNNING, started_at=utcnow(), claimed_by=f"claimer-{n}")]
            finally:
                db.session.remove()

    won = in_threads(4, claim_all)
    assert sorted(i for claimed in won for i in claimed) == sorted(ids)
    with app.app_context():
        rows = db.session.scalars(sa.select(Execution)).all()
        assert {row.attempts for row in rows} == {1}
        assert {row.status for row in rows} == {RUNNING}


def test_a_postgres_claim_skips_a_row_another_claim_holds(config, postgres_database):
    app = create_app({**config, "SQLALCHEMY_DATABASE_URI": postgres_database, "RUNNER_ENABLED": False, "WARM_POOL": {}})
    client = app.test_client()
    queued = client.post("/executions", json={"language": "python", "source_code": "print(1)"}).json["execution_id"]
    holder = sa.create_engine(postgres_database)

    def claim(claimer: str) -> bool:
        with app.app_context():
            try:
                return move(queued, RUNNING, started_at=utcnow(), claimed_by=claimer)
            finally:
                db.session.remove()

    try:
        with holder.connect() as connection:
            # another instance's claim under way: the row locked, not yet committed
            connection.execute(sa.text("SELECT id FROM executions WHERE id = :id FOR UPDATE"), {"id": queued})
            # SKIP LOCKED: this claim loses at once, where a plain UPDATE would wait for the lock's end
            assert in_threads(1, lambda _: claim("waiting"), seconds=5) == [False]
            connection.rollback()
        # the lock gone, the claim wins, once
        assert claim("first") and not claim("second")
    finally:
        holder.dispose()
        app.extensions["engine"].runner.shutdown()
        with app.app_context():
            db.engine.dispose()


def test_retention_prunes_old_runs_and_idle_sessions(make_app):
    app = make_app(RUNNER_ENABLED=False, EXECUTIONS_KEPT_PER_SESSION=3)
    client = app.test_client()
    idle = client.post("/code-sessions", json={}).json["session_id"]
    busy = client.post("/code-sessions", json={"source_code": "print(1)"}).json["session_id"]
    runs = [client.post(f"/code-sessions/{busy}/run", json={}).json["execution_id"] for _ in range(3)]
    one_shot = client.post("/executions", json={"language": "python", "source_code": "print(2)"}).json["execution_id"]
    with app.app_context():
        now = utcnow()
        db.session.execute(sa.update(Execution).values(status="COMPLETED"))
        db.session.execute(sa.update(Execution).where(Execution.id == one_shot).values(queued_at=now - timedelta(days=2)))
        db.session.execute(
            sa.text("UPDATE code_sessions SET updated_at = :when WHERE id = :id"), {"when": now - timedelta(days=8), "id": idle}
        )
        db.session.commit()

    # the history cap: a fourth run of the session makes room by deleting its oldest finished one
    newest = client.post(f"/code-sessions/{busy}/run", json={}).json["execution_id"]
    rv = client.get(f"/code-sessions/{busy}/executions")
    assert {e["execution_id"] for e in rv.json} == {*runs[1:], newest}

    with app.app_context():
        pruned = retention.prune()
        assert (pruned.executions, pruned.sessions) == (1, 1)
    assert client.get(f"/executions/{one_shot}").status_code == 404
    assert client.get(f"/code-sessions/{idle}").status_code == 404
    assert client.get(f"/code-sessions/{busy}").status_code == 200
    assert client.get(f"/executions/{newest}").status_code == 200


def test_postgres_lock_and_serialization_errors_count_as_transient(postgres_database):
    engine = sa.create_engine(postgres_database)
    try:
        schema.upgrade(engine)
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO code_sessions (id, language, source_code, status, version, created_at, updated_at) "
                "VALUES ('s', 'python', '', 'ACTIVE', 1, now(), now())"
            ))
        bump = sa.text("UPDATE code_sessions SET version = version + 1 WHERE id = 's'")
        with engine.connect() as holder, engine.connect() as waiter:
            holder.execute(bump)
            # 55P03: a lock wait that outlasts lock_timeout
            waiter.execute(sa.text("SET lock_timeout = '50ms'"))
            with pytest.raises(sa.exc.OperationalError) as lock_error:
                waiter.execute(bump)
            waiter.rollback()
            holder.commit()
            # 40001: a snapshot that went stale before its write
            waiter.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            waiter.execute(sa.text("SELECT version FROM code_sessions WHERE id = 's'"))
            holder.execute(bump)
            holder.commit()
            with pytest.raises(sa.exc.OperationalError) as stale_error:
                waiter.execute(bump)
            waiter.rollback()
        # so db_retry retries them (and a request past its budget gets 503, never 500)
        assert lock_error.value.orig.sqlstate == "55P03" and is_transient(lock_error.value)
        assert stale_error.value.orig.sqlstate == "40001" and is_transient(stale_error.value)
    finally:
        engine.dispose()
