"""The benchmark harness runs end to end in its --quick form and writes its JSON (no timing is asserted)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_writes_results(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--languages", "python", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert str(out) in done.stdout

    results = json.loads(out.read_text())
    for key in ("date", "machine", "engine", "floors", "hello_latency", "throughput", "autosave", "memory", "diagnostics", "ratios"):
        assert key in results, key
    assert results["quick"] is True
    assert {"logical_cores", "ram_gib", "kernel", "python"} <= results["machine"].keys()
    assert "spawn" in results["floors"]["python"]
    assert results["hello_latency"]["python"]["latency_ms"]["n"] >= 1
    # the paced series and its floor, paced the same way
    assert results["hello_latency"]["python"]["paced"]["latency_ms"]["n"] >= 1
    assert results["floors"]["python"]["spawn_paced"]["n"] >= 1
    assert results["ratios"]["python_paced_hello_median_over_paced_spawn_median"] > 0
    assert {"capacity", "trivial_route", "http_server_alone", "editors"} <= results["autosave"].keys()
    # the editors' connections are opened before the window: none is opened again inside it
    editors = results["autosave"]["editors"]
    assert editors["connections_opened"] == editors["editors"] and editors["latency_from_send_ms"]["n"] == editors["requests"]
    assert {"idle_mib", "after_sessions_mib", "flood"} <= results["memory"].keys()
    assert "autosave_over_trivial_route" in results["ratios"]
    # the seed-style peer: measured beside the engine, or skipped with the reason (never a failure)
    peer = results["autosave"]["peer"]
    assert "skipped" in peer or peer["capacity"]["requests"] > 0, peer
    # graded runs: 50 cases, every verdict checked by the bench itself
    graded = results["grading"]["python"]
    assert graded["failures"] == [] and graded["graded_end_to_end_ms"]["n"] >= 1, graded
    assert graded["bare"]["50_spawns_ms"]["n"] == 1 and graded["x_target_unit"] > 0 and graded["target_x"] == 10
    assert "cases" in graded["phases_ms_median"], graded
    # the interactive section: stdin round trips and cancels measured
    assert results["interactive"]["stdin_round_trip_ms"]["n"] >= 1
    assert results["interactive"]["cancel_to_final_ms"]["n"] >= 1
    # every check answered with the linter's findings, beside the linter's own bare runs
    for language in ("python", "javascript"):
        assert results["diagnostics"][language]["failures"] == 0, results["diagnostics"][language]
        assert results["diagnostics"][language]["latency_ms"]["n"] >= 1
        assert results["diagnostics"][language]["bare_tool_ms"]["n"] >= 1
