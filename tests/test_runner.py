"""The runner through its public face (start, offer, reap_abandoned, is_running, counts): the races
between the direct start and the dispatcher, and between a claim and the reaper."""
from __future__ import annotations

import socket
import threading
from datetime import timedelta

from sqlalchemy import event
from support.client import wait_terminal
from support.wait import wait_until

from app.controls import Controls
from app.sandbox import Control
from app.storage import models
from app.storage.database import db
from app.storage.models import Execution, utcnow


def _queued(app, source: str = "print(1)") -> Execution:
    """A QUEUED execution inserted straight into the database, as the services would (no offer yet)."""
    with app.app_context():
        execution = Execution(language="python", source_code=source, owner="test-client")
        db.session.add(execution)
        db.session.commit()
        db.session.refresh(execution)
        db.session.expunge(execution)
        db.session.remove()
    return execution


def _row(app, execution_id: str) -> Execution:
    with app.app_context():
        row = db.session.get(Execution, execution_id)
        db.session.expunge(row)
        db.session.remove()
    return row


def test_a_run_another_engine_claimed_first_is_let_go_by_the_worker_it_was_offered_to(app):
    runner = app.extensions["engine"].runner
    execution = _queued(app)
    with app.app_context():
        lease = utcnow() + timedelta(minutes=5)
        assert models.move(execution.id, models.RUNNING, claimed_by="another-engine", lease_expires_at=lease)
        db.session.remove()

    runner.offer(execution, others_waiting=False)

    wait_until(lambda: (runner.busy, runner.slots.held) == (0, 0), 10, "the worker lets go")
    assert not runner.is_running(execution.id)
    row = _row(app, execution.id)
    assert (row.status, row.claimed_by, row.attempts) == (models.RUNNING, "another-engine", 1)


def test_a_run_offered_twice_goes_to_one_worker(app):
    """The direct start and the dispatcher may both choose the same run: only one worker gets it."""
    runner = app.extensions["engine"].runner
    execution = _queued(app, "import time\ntime.sleep(0.5)\nprint('once')")

    runner.offer(execution, others_waiting=False)
    runner.offer(execution, others_waiting=False)

    assert runner.busy == 1
    assert runner.is_running(execution.id)
    final = wait_terminal(app.test_client(), execution.id)
    assert (final["status"], final["stdout"]) == ("COMPLETED", "once\n")
    assert _row(app, execution.id).attempts == 1
    wait_until(lambda: runner.busy == 0, 10, "the worker is free again")


def test_the_reaper_never_ends_a_run_this_process_is_just_claiming(app, client):
    """The reaper runs on the dispatcher's thread while a run is claimed.

    It looks the moment the claim is committed (a direct start's is its insert, already RUNNING; a
    queued run's is its worker's UPDATE): the row is RUNNING and ours, and the run must be known
    here as held, or the reaper would end it FAILED("interrupted") under the worker.
    """
    runner = app.extensions["engine"].runner
    reaped: list[int] = []

    def reap():
        with app.app_context():
            reaped.append(runner.reap_abandoned())
            db.session.remove()

    reaper = threading.Thread(target=reap)

    def on_commit(session):
        # the first commit of the request is its insert; on a worker thread, its claim
        if reaper.ident is None:
            reaper.start()
            # a reaper that decides to end the run waits here for this process's SQLite write
            # lock, which the worker holds until its commit returns: give up waiting, let it write
            reaper.join(timeout=5)

    session_class = type(db.session.session_factory())
    event.listen(session_class, "after_commit", on_commit)
    try:
        rv = client.post("/executions", json={"language": "python", "source_code": "print('still mine')"})
        assert rv.status_code == 202
        final = wait_terminal(client, rv.json["execution_id"])
    finally:
        event.remove(session_class, "after_commit", on_commit)
    reaper.join()

    assert reaped == [0]
    assert (final["status"], final["stdout"]) == ("COMPLETED", "still mine\n"), final


def test_the_reaper_ends_a_run_whose_engine_process_is_gone(config, request):
    # the runner not started: its own dispatcher would reap the run first
    config["RUNNER_ENABLED"] = False
    app = request.getfixturevalue("app")
    runner = app.extensions["engine"].runner
    execution = _queued(app)
    # a process of this host that does not exist (pid_max is at most 2**22)
    dead = f"{socket.gethostname()}:{2**22 + 1}:deadbeef"
    with app.app_context():
        assert models.move(execution.id, models.RUNNING, claimed_by=dead, lease_expires_at=utcnow() + timedelta(minutes=5))
        db.session.remove()

    with app.app_context():
        assert runner.reap_abandoned() == 1
        db.session.remove()

    row = _row(app, execution.id)
    assert (row.status, row.error) == (models.FAILED, "interrupted")


def test_a_stop_delivered_between_a_claim_and_the_runs_start_stops_it_when_it_starts():
    # the backbone's stop for a run claimed here but not yet registered (its worker between the
    # claim and the sandbox): the worker no longer reads the database for it, so it must be kept
    controls = Controls()
    assert controls.deliver_cancel("claimed-not-started") is False
    early, other = Control(), Control()
    controls.register("claimed-not-started", early)
    controls.register("never-stopped", other)
    assert early.cancelled and not other.cancelled
    # remembered once: a second run of the same id (none exists) would not start stopped
    controls.unregister("claimed-not-started")
    again = Control()
    controls.register("claimed-not-started", again)
    assert not again.cancelled


def test_a_run_started_directly_is_claimed_in_its_insert_and_answered_as_queued(app, client):
    runner = app.extensions["engine"].runner
    rv = client.post("/executions", json={"language": "python", "source_code": "print('direct')"})
    assert rv.status_code == 202
    # the answer is the run as queued, whatever its row says a moment later
    assert (rv.json["status"], rv.json["started_at"]) == ("QUEUED", None)
    final = wait_terminal(client, rv.json["execution_id"])
    assert (final["status"], final["stdout"]) == ("COMPLETED", "direct\n"), final
    row = _row(app, rv.json["execution_id"])
    # claimed once, by this process, from its insert: started when queued
    assert (row.attempts, row.claimed_by) == (1, runner.instance_id)
    assert row.started_at == row.queued_at
