"""The curl scripts in examples/ against a real gunicorn: each must exit 0, as it does after `make run`."""
from __future__ import annotations

import os
import subprocess

import pytest

from support.servers import ROOT, free_port, gunicorn

SCRIPTS = ("flow.sh", "stdin.sh", "long_poll.sh", "events.sh", "multi_file.sh", "interactive.sh")
# each script long-polls with its own deadlines; this only stops a hung one
SCRIPT_SECONDS = 90


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # the settings `make run` uses
    with gunicorn(tmp_path_factory.mktemp("examples")) as server:
        yield server


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_script_passes(server, script):
    path = ROOT / "examples" / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    done = subprocess.run(
        [str(path)], env=dict(os.environ, BASE_URL=server.url), capture_output=True, text=True, timeout=SCRIPT_SECONDS
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.rstrip().endswith("OK"), done.stdout


def test_example_fails_when_the_engine_does_not_answer(tmp_path):
    done = subprocess.run(
        [str(ROOT / "examples" / "flow.sh")],
        env=dict(os.environ, BASE_URL=f"http://127.0.0.1:{free_port()}"),
        capture_output=True,
        text=True,
        timeout=SCRIPT_SECONDS,
    )
    assert done.returncode != 0
    assert "no answer" in done.stderr
