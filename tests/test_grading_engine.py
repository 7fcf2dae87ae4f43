"""The grader without HTTP: the order of its events, and the learner's sandbox kept open until released."""
from __future__ import annotations

import time

import pytest

from app.grading.grader import Case, Grader, Suite
from app.sandbox import BY_NAME, Limits, Sandbox, Settings
from support.slots import slot_processes


def test_each_case_is_published_once_in_order_and_the_sandbox_ends_at_release(slot):
    sandbox = Sandbox(Settings(fork_server=False))
    cases = tuple(Case(f"c{n}", f"{n} {n}\n", str(2 * n), hidden=n % 2 == 1) for n in range(8))
    suite = Suite({"type": "tokens"}, 2000, None, 30000, cases)
    published: list[dict] = []
    grader = Grader(
        sandbox, BY_NAME["python"], b"a, b = map(int, input().split())\nprint(a + b)\n", suite, Limits(), slot,
        published.append, 8192, Limits(),
    )
    try:
        graded = grader.grade()
        # every case judged and published once, in order, before the grade is returned (each case
        # is handed to the supervisor before the one before it is judged: never out of order)
        assert [test["index"] for test in published] == list(range(8))
        assert [test["verdict"] for test in published] == ["PASSED"] * 8
        assert graded.grade.passed == 8 and graded.grade.complete
        assert all("stdin" not in test for test in published if test["hidden"])
        if sandbox.available and sandbox.isolation.name == "bubblewrap":
            # the learner's sandbox outlives the grade until released: the worker writes the
            # final result first
            assert slot_processes(sandbox, slot)
        graded.release()
        assert not slot_processes(sandbox, slot)
        # once is enough; a second release does nothing
        graded.release()
    finally:
        sandbox.clear_slot(slot)
        sandbox.close()


def test_a_supervisor_gone_between_cases_ends_its_sandbox_so_a_retry_starts_afresh(slot):
    from app.sandbox.grading import Supervisor, SupervisorLost

    sandbox = Sandbox(Settings(fork_server=False))
    limits = Limits(timeout_seconds=30.0, cpu_seconds=31)
    supervisor = Supervisor(sandbox, BY_NAME["python"], limits, slot, b"print(input())\n", None)
    try:
        assert supervisor.run_case(0, b"one\n", 2.0, 2, 1000).stdout == b"one\n"
        # its whole sandbox ended from outside, between two cases
        supervisor.kill()
        deadline = time.monotonic() + 5
        while supervisor._running.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        # the socket's other end is closed: the send fails, and the supervisor counts as gone (the
        # grader's retry then starts a fresh sandbox instead of sending to this one again)
        with pytest.raises(SupervisorLost):
            supervisor.send(1, b"two\n", 2.0, 2, 1000)
        assert not supervisor.alive
    finally:
        supervisor.close()
        sandbox.clear_slot(slot)
        sandbox.close()


def test_a_supervisor_whose_interpreter_has_other_bytecode_compiles_its_text(slot, monkeypatch):
    # the engine hands the supervisor's code compiled (marshal) with its text: a sandbox interpreter
    # of another bytecode version (another magic number) compiles the text instead
    from app.sandbox import grading

    blob = grading.SUPERVISOR_BLOB
    monkeypatch.setattr(grading, "SUPERVISOR_BLOB", b"\0\0\0\0" + blob[4:])
    sandbox = Sandbox(Settings(fork_server=False))
    limits = Limits(timeout_seconds=30.0, cpu_seconds=31)
    try:
        with grading.Supervisor(sandbox, BY_NAME["python"], limits, slot, b"print(input()[::-1])\n", None) as supervisor:
            assert supervisor.run_case(0, b"abc\n", 2.0, 2, 1000).stdout == b"cba\n"
    finally:
        sandbox.clear_slot(slot)
        sandbox.close()
