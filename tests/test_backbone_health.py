"""/health says whether the live backbone between engine processes is in force, which one, and its state."""
from __future__ import annotations

import pytest
from support.postgres import query
from support.servers import LiveServer
from support.wait import wait_until


def test_one_process_over_sqlite_has_no_backbone_and_says_why(client):
    backbone = client.get("/health").json["live_backbone"]
    assert backbone["transport"] is None and backbone["state"] == "off" and backbone["connected"] is False
    assert "one process" in backbone["why"]
    # without one, other processes' news is read from the database at the watcher's tick
    assert backbone["fallback_read_seconds"] == 0.1


def test_the_workers_of_one_box_report_their_socket_backbone(tmp_path):
    server = LiveServer(tmp_path / "engine.db", tmp_path / "server.log", workers=2, WARM_POOL={})
    server.start()
    try:
        answered_by = set()
        for _ in range(12):
            status, health, _ = server.call("GET", "/health")
            assert status == 200, health
            backbone = health["live_backbone"]
            assert backbone["transport"] == "unix_datagram_sockets", backbone
            assert backbone["state"] == "listening" and backbone["connected"] is True
            assert backbone["fallback_read_seconds"] == 5.0
            answered_by.add(backbone["listening_for_s"] is not None)
        assert answered_by == {True}
    finally:
        server.stop()


@pytest.fixture
def on_postgres(config, postgres_database):
    config["SQLALCHEMY_DATABASE_URI"] = postgres_database
    config["RUNNER_ENABLED"] = False
    return postgres_database


def test_an_instance_over_postgresql_reports_listen_notify_and_a_lost_connection(on_postgres, client):
    backbone = client.get("/health").json["live_backbone"]
    assert backbone["transport"] == "postgresql_listen_notify", backbone
    assert backbone["state"] == "listening" and backbone["connections_lost"] == 0

    # the database drops the listening connection: /health counts the loss, and the backbone listens again
    database = on_postgres.rsplit("/", 1)[1]
    query(
        on_postgres.replace(f"/{database}", "/postgres"),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'LISTEN%%'",
        database,
    )

    def relistened() -> dict | None:
        state = client.get("/health").json["live_backbone"]
        return state if state["connections_lost"] >= 1 and state["state"] == "listening" else None

    state = wait_until(relistened, 15, "the backbone listening again after the loss")
    assert state["connected"] is True and state["fallback_read_seconds"] == 5.0
