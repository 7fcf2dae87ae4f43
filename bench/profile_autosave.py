"""python -m bench.profile_autosave [--requests N]: the CPU of one autosave PATCH, by phase, in one process.

The engine's WSGI app is called directly (no socket, no gunicorn: the HTTP parse is the trivial
route's, measured beside it by the bench) with the request the bench's editors send: a ~2 KiB
source, one thread, a fresh SQLite file with the engine's pragmas. First the plain CPU per request
(time.process_time over N requests), then py-spy samples the same loop and each sample counts for
the phase of docs/autosave.md on its stack (sampling, unlike cProfile, does not inflate code made of
many small calls). The plain-Flask
PATCH /echo of bench/floor_app.py is measured the same way, for the ratio without the HTTP server.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .sections import source_of_size

# phase -> (file fragment, function name) pairs whose cumulative time makes the phase; the phases do
# not nest in one another except "view" (the rest of it is dispatch)
PHASES: dict[str, tuple[tuple[str, str], ...]] = {
    "request id + log line (logs._begin/_end/log_request)": (
        ("app/logs.py", "_begin"), ("app/logs.py", "_end"), ("app/logs.py", "log_request"), ("app/logs.py", "new_request_id"),
    ),
    "metrics (metrics._begin/_end/count_request)": (
        ("app/metrics.py", "_begin"), ("app/metrics.py", "_end"), ("app/metrics.py", "count_request"),
    ),
    "body parse + validation (payload.json_body; the lane's loads + plain_patch)": (
        ("app/api/payload.py", "json_body"), ("json/__init__.py", "loads"), ("app/api/sessions.py", "plain_patch"),
    ),
    "autosave: checks + SQL + commit (services.sessions.autosave)": (("app/services/sessions.py", "autosave"),),
    "  of which the SQLite transaction (group commit)": (("app/storage/group_commit.py", "_commit"),),
    "  of which revision check (revisions.lock_and_decide)": (("app/services/revisions.py", "lock_and_decide"),),
    "answer: body + Response (api.sessions._with_version/session_json)": (
        ("app/api/sessions.py", "_with_version"), ("app/api/sessions.py", "session_json"),
    ),
    "restx response (Api.make_response)": (("flask_restx/api.py", "make_response"),),
}


# blocks of requests, alternating engine and floor
ROUNDS = 10


def _is(frame: str, fragment: str, name: str) -> bool:
    """Whether a py-spy frame, "Class.function (path/file.py:line)", is function name in a file matching fragment."""
    function, _, where = frame.partition(" (")
    return (function == name or function.endswith("." + name)) and fragment in where


def _environ(method: str, path: str, body: bytes) -> dict:
    from werkzeug.test import EnvironBuilder

    return EnvironBuilder(method=method, path=path, data=body, content_type="application/json").get_environ()


def _call(app: Callable, environ: dict) -> int:
    status: list[str] = []
    body = app(dict(environ, **{"wsgi.input": io.BytesIO(environ["_body"])}), lambda s, h, e=None: status.append(s))
    for _ in body:
        pass
    if hasattr(body, "close"):
        body.close()
    return int(status[0].split()[0])


def _requests(app: Callable, path_of: Callable[[int], str], count: int, method: str = "PATCH") -> list[dict]:
    out = []
    for n in range(count):
        raw = json.dumps({"source_code": source_of_size(n)}).encode()
        environ = _environ(method, path_of(n), raw)
        environ["_body"] = raw
        out.append(environ)
    return out


def cpu_per_request(app: Callable, environs: list[dict]) -> float:
    started = time.process_time()
    for environ in environs:
        status = _call(app, environ)
        if status != 200:
            raise RuntimeError(f"status {status}")
    return (time.process_time() - started) / len(environs)


def phases(app: Callable, environs: list[dict], per_request: float, seconds: float) -> tuple[dict[str, float], int]:
    """Each phase's CPU per request: py-spy samples this process while it serves, and a sample counts
    for the first phase with a frame on its stack (the "of which" lines count apart, inside theirs)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(spy, os.X_OK):
        raise RuntimeError("py-spy is not installed (requirements.txt)")
    out = Path(tempfile.mkdtemp(prefix="profile-autosave-spy-")) / "stacks.txt"
    sampler = subprocess.Popen(
        [spy, "record", "--pid", str(os.getpid()), "--rate", "500", "--format", "raw", "--nonblocking",
         "--duration", str(int(seconds)), "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    n = 0
    while sampler.poll() is None:
        _call(app, environs[n % len(environs)])
        n += 1
    counts: dict[str, int] = dict.fromkeys(PHASES, 0)
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or "_call (" not in stack:
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        placed = False
        for phase, functions in PHASES.items():
            nested = phase.startswith("  ")
            if placed and not nested:
                continue
            if any(_is(frame, fragment, name) for frame in frames for fragment, name in functions):
                counts[phase] += samples
                placed = placed or not nested
    if not total:
        raise RuntimeError("py-spy took no samples")
    out_phases = {phase: per_request * count / total for phase, count in counts.items()}
    named = sum(v for k, v in out_phases.items() if not k.startswith("  "))
    out_phases["the rest: Werkzeug request, Flask + restx dispatch, routing, contexts (or the lane's)"] = per_request - named
    return out_phases, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_autosave", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10, help="how long py-spy samples the engine")
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="profile-autosave-")
    os.environ.setdefault("ENGINE_LOG_LEVEL", json.dumps("INFO"))
    from app import create_app

    # the log line goes where gunicorn sends it in the bench: a file
    sys.stderr = open(os.path.join(workdir, "engine.log"), "w")  # noqa: SIM115
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir}/engine.db", "RUNNER_ENABLED": False, "WARM_POOL": {}})
        client = app.test_client()
        sid = client.post("/code-sessions", json={"language": "python", "source_code": source_of_size(0)}).json["session_id"]
        environs = _requests(app, lambda n: f"/code-sessions/{sid}", args.requests)
        from .floor_app import app as floor

        floor_environs = _requests(floor, lambda n: f"/echo/{n}", args.requests)
        cpu_per_request(app, environs[:200])
        cpu_per_request(floor, floor_environs[:200])
        # interleaved in blocks, so that a change in the machine's load falls on both alike
        engine_blocks, floor_blocks = [], []
        block = max(1, args.requests // ROUNDS)
        for start in range(0, block * ROUNDS, block):
            engine_blocks.append(cpu_per_request(app, environs[start : start + block]))
            floor_blocks.append(cpu_per_request(floor, floor_environs[start : start + block]))
        engine_cpu, floor_cpu = statistics.median(engine_blocks), statistics.median(floor_blocks)
        breakdown, samples = phases(app, environs, engine_cpu, args.seconds)
    finally:
        sys.stderr.close()
        sys.stderr = sys.__stderr__
    print(f"load average {os.getloadavg()[0]:.2f}; {args.requests} requests timed, {samples} py-spy samples, one thread, no HTTP server")
    print(f"{'phase':<72} {'us':>8}")
    for phase, seconds in breakdown.items():
        print(f"{phase:<72} {seconds * 1e6:8.0f}")
    print(f"{'engine PATCH /code-sessions/<id>, total':<72} {engine_cpu * 1e6:8.0f}")
    print(f"{'plain Flask PATCH /echo/<id> (bench/floor_app.py), total':<72} {floor_cpu * 1e6:8.0f}")
    print(f"{'engine / plain Flask, medians of ' + str(ROUNDS) + ' interleaved blocks':<72} {engine_cpu / floor_cpu:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
