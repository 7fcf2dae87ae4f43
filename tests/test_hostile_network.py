"""Hostile programs against the network: connections out, DNS and UDP, listening sockets.

Every test runs twice (tests/support/hostile.py's config): with runs forked from a fork server and cold."""
from __future__ import annotations

import json
import socket
import threading
import urllib.request

import pytest
from support.client import wait_terminal
from support.hostile import (  # noqa: F401 (config is a fixture)
    assert_all_gone,
    assert_engine_serves,
    config,
    free_port,
    host_ipv4_addresses,
    listening_in_netns,
    program_processes,
    submit,
    wait_for,
)
from werkzeug.serving import make_server

CONNECT = """
import json, socket, sys
reached, errors = [], {}
for host, port in json.load(sys.stdin):
    try:
        with socket.create_connection((host, port), timeout=1):
            reached.append([host, port])
    except OSError as error:
        errors[f"{host}:{port}"] = type(error).__name__
print(json.dumps({"reached": reached, "errors": errors, "interfaces": [n for _, n in socket.if_nameindex()]}))
"""


def test_no_outbound_tcp_to_the_host_or_the_engine(app, client, run_code):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen()
    try:
        engine_port, port = server.server_port, listener.getsockname()[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{engine_port}/health", timeout=10) as rv:
            assert rv.status == 200
        targets = [["127.0.0.1", port], ["127.0.0.1", engine_port]]
        targets += [[address, port] for address in host_ipv4_addresses() if address != "127.0.0.1"]

        done = run_code(CONNECT, stdin=json.dumps(targets))

        assert done["status"] == "COMPLETED", done
        report = json.loads(done["stdout"])
        assert report["reached"] == []
        assert len(report["errors"]) == len(targets)
        assert report["interfaces"] == ["lo"]
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
        server.shutdown()
        server.server_close()
    assert_engine_serves(client)


RESOLVE = """
import json, socket
report = {}
try:
    report["resolved"] = str(socket.getaddrinfo("example.com", 80))
except OSError as error:
    report["dns_error"] = type(error).__name__
try:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"\\0" * 12, ("8.8.8.8", 53))
    report["udp"] = "sent"
except OSError as error:
    report["udp_error"] = error.errno
print(json.dumps(report))
"""


def test_no_dns_and_no_udp_out(run_code):
    done = run_code(RESOLVE)

    assert done["status"] == "COMPLETED", done
    report = json.loads(done["stdout"])
    assert "resolved" not in report and "dns_error" in report, report
    assert "udp" not in report, report


LISTEN = """
import socket, sys
port = int(sys.stdin.read())
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", port))
server.listen()
server.settimeout(1.5)
try:
    connection, peer = server.accept()
    print("accepted", peer)
except TimeoutError:
    print("nobody came")
"""


def test_a_listening_socket_inside_is_unreachable_and_gone_after(client):
    port = free_port()
    execution_id = submit(client, LISTEN, str(port))
    program = wait_for(lambda: [p for p in program_processes() if listening_in_netns(p.pid, port)], 10, "the listener")

    for address in ["127.0.0.1", *host_ipv4_addresses()]:
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=1).close()
    done = wait_terminal(client, execution_id)

    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == "nobody came\n"
    assert_all_gone(program)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert_engine_serves(client)


# ---------------------------------------------------------------- processes and privileges
