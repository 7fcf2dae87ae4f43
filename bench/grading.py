"""Graded runs: 50 cases of an a+b program graded end to end (POST -> final result through the
long-poll), against 50 bare cold spawns of the same program and against one; every verdict checked.

Targets (issue 16): Python 50 cases in at most 10x one bare cold spawn of /usr/bin/python3; C++
the same; Java at most 30x one bare `java` spawn; JavaScript at most 40x one bare `node` spawn.
The unit is measured in the same loop as the grades (one bare spawn after each grade), so the
machine's load weighs on both alike.
"""
from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from datetime import datetime

from app.sandbox.languages.managed import JAVA_RUN_FLAGS

from .floors import JAVA_FLAGS
from .load import Connection, summarize
from .server import CGROUP_ROOT, HOST, PRIVATE_CGROUP, Server

CASES = 50
# the most a 50-case grade may take, in bare cold spawns of the unit's program: (unit, times)
TARGETS = {"python": ("python", 10), "cpp": ("python", 10), "java": ("java", 30), "javascript": ("javascript", 40)}


@dataclass(frozen=True)
class Program:
    source: str
    source_file: str
    # compile (optional) then run, bare, in a scratch directory holding source_file
    compile: tuple[str, ...] | None
    run: tuple[str, ...]


PROGRAMS = {
    "python": Program("a, b = map(int, input().split())\nprint(a + b)\n", "main.py", None, ("/usr/bin/python3", "main.py")),
    "cpp": Program(
        "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n",
        "main.cpp",
        ("/usr/bin/g++", "-std=c++17", "-O2", "-pipe", "-static-libstdc++", "-static-libgcc", "-o", "main", "main.cpp"),
        ("./main",),
    ),
    "java": Program(
        "import java.util.*;\npublic class Main { public static void main(String[] x) { Scanner s = new Scanner(System.in);"
        " System.out.println(s.nextLong() + s.nextLong()); } }\n",
        "Main.java",
        ("/usr/bin/javac", *(f"-J{flag}" for flag in JAVA_FLAGS), "-encoding", "UTF-8", "-d", ".", "Main.java"),
        # the engine's own run flags, bare
        ("/usr/bin/java", *JAVA_RUN_FLAGS, "-cp", ".", "Main"),
    ),
    "javascript": Program(
        'const [a, b] = require("fs").readFileSync(0, "utf8").trim().split(/\\s+/).map(Number);\nconsole.log(a + b);\n',
        "main.js",
        None,
        ("/usr/bin/node", "main.js"),
    ),
}


def bare_env(workdir: Path) -> dict[str, str]:
    """The environment the engine gives a program (app/sandbox/isolation.py), not the bench's own: a
    variable of this host's such as NODE_EXTRA_CA_CERTS makes every bare node start load a CA bundle
    (~2.5x its CPU), a floor no sandboxed run pays."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8"}


def cases(count: int = CASES) -> list[dict]:
    """count a+b cases with their answers, every third one hidden."""
    rng = random.Random(16)
    made = []
    for index in range(count):
        a, b = rng.randint(-10**9, 10**9), rng.randint(-10**9, 10**9)
        made.append({"name": f"case {index + 1}", "stdin": f"{a} {b}\n", "expected_output": f"{a + b}\n", "hidden": index % 3 == 2})
    return made


def bare_spawns(program: Program, inputs: list[dict], rounds: int) -> dict[str, object]:
    """One bare cold spawn per case, in a row (compiled once beforehand): median of one, and of all of them."""
    with tempfile.TemporaryDirectory(prefix="bench-grade-floor-") as scratch:
        workdir = Path(scratch)
        (workdir / program.source_file).write_text(program.source)
        if program.compile:
            subprocess.run(program.compile, cwd=workdir, check=True, capture_output=True, timeout=120)
        one: list[float] = []
        all_cases: list[float] = []
        for _ in range(rounds):
            started = time.perf_counter()
            for case in inputs:
                spawn_started = time.perf_counter()
                done = subprocess.run(
                    program.run, cwd=workdir, input=case["stdin"], capture_output=True, text=True, timeout=30, env=bare_env(workdir)
                )
                one.append(time.perf_counter() - spawn_started)
                if done.stdout != case["expected_output"]:
                    raise RuntimeError(f"bare {program.run[0]}: {done.stdout!r:.80} for {case['stdin']!r}")
            all_cases.append(time.perf_counter() - started)
    return {"one_spawn_ms": summarize(one), f"{len(inputs)}_spawns_ms": summarize(all_cases)}


async def grade_once(conn: Connection, language: str, source: str, suite_id: str) -> tuple[float, dict, dict]:
    """One grade, POST to final result: (seconds, the execution, its phases in ms)."""
    posted_at = time.time()
    started = time.perf_counter()
    rv = await conn.request("POST", "/executions", {"language": language, "source_code": source, "test_suite_id": suite_id})
    if rv.status != 202:
        raise RuntimeError(f"POST /executions: {rv.status} {rv.body[:200]!r}")
    post_ms = (time.perf_counter() - started) * 1000
    execution = rv.json()
    while execution["status"] not in ("COMPLETED", "FAILED", "TIMEOUT"):
        rv = await conn.request("GET", f"/executions/{execution['execution_id']}?wait=30", timeout=45)
        execution = rv.json()
    seconds = time.perf_counter() - started
    return seconds, execution, phases_of(execution, posted_at, post_ms, seconds * 1000)


def _at(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def phases_of(execution: dict, posted_at: float, post_ms: float, total_ms: float) -> dict:
    """Where one grade's time went, from the execution's own timestamps (ms resolution, one host clock)."""
    queued, started, finished = (_at(execution.get(key)) for key in ("queued_at", "started_at", "finished_at"))
    if None in (queued, started, finished):
        return {}
    compile_ms = execution.get("compile_time_ms") or 0
    cases_ms = execution.get("execution_time_ms") or 0
    return {
        "post_response": post_ms,
        "queued_to_started": (started - queued) * 1000,
        "compile": compile_ms,
        "cases": cases_ms,
        # reading the suite, the sandbox's end, the final write: started -> finished, less the rest
        "around_the_cases": (finished - started) * 1000 - compile_ms - cases_ms,
        # the final write seen by the long-poll, and its answer
        "finished_to_client": total_ms - (finished - posted_at) * 1000,
    }


def sandboxes_cpu_seconds() -> float | None:
    """CPU time of every process of the bench engine's sandboxes so far, from its private cgroup tree
    (rusage would not do: a sandbox's processes are not collected up to the engine); None without it."""
    for usage in CGROUP_ROOT.glob(f"*/{PRIVATE_CGROUP}/cpuacct.usage"):
        with contextlib.suppress(OSError, ValueError):
            return int(usage.read_text()) / 1e9
    with contextlib.suppress(OSError, ValueError):
        fields = dict(line.split() for line in (CGROUP_ROOT / PRIVATE_CGROUP / "cpu.stat").read_text().splitlines())
        return int(fields["usage_usec"]) / 1e6
    return None


def engine_cpu_seconds(engine: Server) -> float | None:
    """CPU time of the engine's processes (HTTP, database, runner, grader) and of its sandboxes."""
    sandboxes = sandboxes_cpu_seconds()
    if sandboxes is None:
        return None
    return engine.cpu_seconds() + sandboxes


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_spawn_seconds(program: Program, workdir: Path, case: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        program.run, cwd=workdir, input=case["stdin"], capture_output=True, text=True, timeout=30, env=bare_env(workdir)
    )
    took = time.perf_counter() - started
    if done.stdout != case["expected_output"]:
        raise RuntimeError(f"bare {program.run[0]}: {done.stdout!r:.80} for {case['stdin']!r}")
    return took


def problems_of(execution: dict, count: int) -> str | None:
    """Why a graded run is not the all-PASSED result it must be, or None."""
    grade = execution.get("grade") or {}
    tests = grade.get("tests") or []
    if execution["status"] != "COMPLETED" or grade.get("passed") != count or len(tests) != count:
        first = next((t for t in tests if t["verdict"] != "PASSED"), None)
        told = f" first: {first['name']} {first['verdict']} {first['message'][:120]!r}" if first else ""
        return (
            f"{execution['status']} error={execution.get('error')} {execution.get('stderr', '')[:120]!r} "
            f"passed={grade.get('passed')} of {len(tests)}{told}"
        )
    wrong = [t for t in tests if t["verdict"] != "PASSED"]
    if wrong or not grade.get("complete") or grade.get("verdict") != "PASSED":
        return f"verdicts: {[t['verdict'] for t in wrong][:5]} complete={grade.get('complete')}"
    return None


async def grading_section(engine: Server, languages: list[str], repeats: int) -> dict[str, object]:
    results: dict[str, object] = {}
    conn = Connection(HOST, engine.port)
    inputs = cases()
    rv = await conn.request("POST", "/test-suites", {"test_cases": inputs, "time_limit_ms": 5000, "total_time_limit_ms": 120_000})
    if rv.status != 201:
        raise RuntimeError(f"POST /test-suites: {rv.status} {rv.body[:200]!r}")
    suite_id = rv.json()["test_suite_id"]
    # the unit: one bare cold spawn of /usr/bin/python3 (about 100-150 ms on these machines)
    python_spawn = bare_spawns(PROGRAMS["python"], inputs, rounds=1)["one_spawn_ms"]["median"]
    results["python_one_bare_spawn_ms"] = python_spawn
    with tempfile.TemporaryDirectory(prefix="bench-grade-unit-") as scratch:
        units = {}
        for name in {unit for unit, _ in TARGETS.values()}:
            workdir = Path(scratch) / name
            workdir.mkdir()
            (workdir / PROGRAMS[name].source_file).write_text(PROGRAMS[name].source)
            if PROGRAMS[name].compile:
                subprocess.run(PROGRAMS[name].compile, cwd=workdir, check=True, capture_output=True, timeout=120)
            units[name] = workdir
        for language in languages:
            program = PROGRAMS.get(language)
            if program is None:
                continue
            results[language] = await _grade_series(engine, conn, language, program, suite_id, inputs, repeats, units)
    await conn.close()
    return results


async def _grade_series(
    engine: Server,
    conn: Connection, language: str, program: Program, suite_id: str, inputs: list[dict], repeats: int, units: dict[str, Path]
) -> dict[str, object]:
    unit, target = TARGETS[language]
    # the first grade compiles (compiled languages) and warms the path; the series repeats one source
    first_seconds, first, _ = await grade_once(conn, language, program.source, suite_id)
    failures = [problem] if (problem := problems_of(first, CASES)) else []
    seconds: list[float] = []
    engine_ms: list[int] = []
    unit_spawns: list[float] = []
    # CPU, which the load of a shared machine inflates far less than wall time: the engine's and its
    # sandboxes' per grade, the bench's own child per bare spawn
    grade_cpu: list[float] = []
    unit_cpu: list[float] = []
    phases: dict[str, list[float]] = {}
    for index in range(repeats):
        cpu_before = engine_cpu_seconds(engine)
        took, execution, grade_phases = await grade_once(conn, language, program.source, suite_id)
        # the sandbox is ended just after the grade is answered
        await asyncio.sleep(0.05)
        cpu_after = engine_cpu_seconds(engine)
        if cpu_before is not None and cpu_after is not None:
            grade_cpu.append(cpu_after - cpu_before)
        # the unit right after each grade, under the same load
        spawn_cpu_before = children_cpu_seconds()
        unit_spawns.append(one_spawn_seconds(PROGRAMS[unit], units[unit], inputs[index % len(inputs)]))
        unit_cpu.append(children_cpu_seconds() - spawn_cpu_before)
        problem = problems_of(execution, CASES)
        if problem:
            failures.append(problem)
            continue
        seconds.append(took)
        engine_ms.append(execution["execution_time_ms"])
        for name, value in grade_phases.items():
            phases.setdefault(name, []).append(value)
    floor = bare_spawns(program, inputs, rounds=1)
    graded = summarize(seconds)
    one = floor["one_spawn_ms"]["median"]
    unit_ms = summarize(unit_spawns)["median"]
    ratio = round(graded["median"] / unit_ms, 1) if graded["median"] and unit_ms else None
    cpu_ms = summarize(grade_cpu)["median"]
    unit_cpu_ms = summarize(unit_cpu)["median"]
    return {
        "cases": CASES,
        "graded_end_to_end_ms": graded,
        "first_grade_ms": round(first_seconds * 1000, 1),
        "first_compile_ms": first.get("compile_time_ms"),
        # the cases' own wall time in the engine (compile and queueing excluded)
        "cases_wall_ms_median": sorted(engine_ms)[len(engine_ms) // 2] if engine_ms else None,
        "phases_ms_median": {name: round(statistics.median(values), 1) for name, values in phases.items()},
        "bare": floor,
        # the measure: the whole grade against one bare cold spawn of the target's unit
        "target_unit": f"one bare {PROGRAMS[unit].run[0]} spawn",
        "target_unit_ms": unit_ms,
        "x_target_unit": ratio,
        "target_x": target,
        "target_met": bool(ratio is not None and ratio <= target),
        # the same by CPU time: the whole grade (engine, HTTP, every sandbox process) against one
        # bare spawn's (the spawned program's alone)
        "cpu_per_grade_ms": cpu_ms,
        "target_unit_cpu_ms": unit_cpu_ms,
        "x_target_unit_cpu": round(cpu_ms / unit_cpu_ms, 1) if cpu_ms and unit_cpu_ms else None,
        "x_one_bare_spawn_of_this_language": round(graded["median"] / one, 1) if graded["median"] and one else None,
        "x_bare_spawns_of_every_case": round(graded["median"] / floor[f"{CASES}_spawns_ms"]["median"], 3)
        if graded["median"]
        else None,
        "failures": failures[:3],
    }
