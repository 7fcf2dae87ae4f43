"""Graded runs: 50 cases of an a+b program graded end to end (POST -> final result through the
long-poll), against 50 bare cold spawns of the same program and against one; every verdict checked.

Targets (issue 16): Python 50 cases in at most 10x one bare cold spawn of /usr/bin/python3; C++
the same; Java at most 30x; JavaScript at most 40x.
"""
from __future__ import annotations

import random
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .floors import JAVA_FLAGS
from .load import Connection, summarize
from .server import HOST, Server

CASES = 50
# the most a 50-case grade may take, in bare cold spawns of /usr/bin/python3
TARGET_X_ONE_SPAWN = {"python": 10, "cpp": 10, "java": 30, "javascript": 40}


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
        ("/usr/bin/g++", "-std=c++17", "-O2", "-pipe", "-o", "main", "main.cpp"),
        ("./main",),
    ),
    "java": Program(
        "import java.util.*;\npublic class Main { public static void main(String[] x) { Scanner s = new Scanner(System.in);"
        " System.out.println(s.nextLong() + s.nextLong()); } }\n",
        "Main.java",
        ("/usr/bin/javac", *(f"-J{flag}" for flag in JAVA_FLAGS), "-encoding", "UTF-8", "-d", ".", "Main.java"),
        ("/usr/bin/java", *JAVA_FLAGS, "-cp", ".", "Main"),
    ),
    "javascript": Program(
        'const [a, b] = require("fs").readFileSync(0, "utf8").trim().split(/\\s+/).map(Number);\nconsole.log(a + b);\n',
        "main.js",
        None,
        ("/usr/bin/node", "main.js"),
    ),
}


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
                done = subprocess.run(program.run, cwd=workdir, input=case["stdin"], capture_output=True, text=True, timeout=30)
                one.append(time.perf_counter() - spawn_started)
                if done.stdout != case["expected_output"]:
                    raise RuntimeError(f"bare {program.run[0]}: {done.stdout!r:.80} for {case['stdin']!r}")
            all_cases.append(time.perf_counter() - started)
    return {"one_spawn_ms": summarize(one), f"{len(inputs)}_spawns_ms": summarize(all_cases)}


async def grade_once(conn: Connection, language: str, source: str, suite_id: str) -> tuple[float, dict]:
    started = time.perf_counter()
    rv = await conn.request("POST", "/executions", {"language": language, "source_code": source, "test_suite_id": suite_id})
    if rv.status != 202:
        raise RuntimeError(f"POST /executions: {rv.status} {rv.body[:200]!r}")
    execution = rv.json()
    while execution["status"] not in ("COMPLETED", "FAILED", "TIMEOUT"):
        rv = await conn.request("GET", f"/executions/{execution['execution_id']}?wait=30", timeout=45)
        execution = rv.json()
    return time.perf_counter() - started, execution


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
    for language in languages:
        program = PROGRAMS.get(language)
        if program is None:
            continue
        # the first grade compiles (compiled languages) and warms the path; the series repeats one source
        first_seconds, first = await grade_once(conn, language, program.source, suite_id)
        seconds: list[float] = []
        failures = [problem] if (problem := problems_of(first, CASES)) else []
        engine_ms: list[int] = []
        for _ in range(repeats):
            took, execution = await grade_once(conn, language, program.source, suite_id)
            problem = problems_of(execution, CASES)
            if problem:
                failures.append(problem)
                continue
            seconds.append(took)
            engine_ms.append(execution["execution_time_ms"])
        floor = bare_spawns(program, inputs, rounds=1)
        graded = summarize(seconds)
        one = floor["one_spawn_ms"]["median"]
        results[language] = {
            "cases": CASES,
            "graded_end_to_end_ms": graded,
            "first_grade_ms": round(first_seconds * 1000, 1),
            "first_compile_ms": first.get("compile_time_ms"),
            # the cases' own wall time in the engine (compile and queueing excluded)
            "cases_wall_ms_median": sorted(engine_ms)[len(engine_ms) // 2] if engine_ms else None,
            "bare": floor,
            # the measure: the whole grade against one bare cold spawn of /usr/bin/python3
            "x_one_python_spawn": round(graded["median"] / python_spawn, 1) if graded["median"] and python_spawn else None,
            "x_one_bare_spawn_of_this_language": round(graded["median"] / one, 1) if graded["median"] and one else None,
            "x_bare_spawns_of_every_case": round(graded["median"] / floor[f"{CASES}_spawns_ms"]["median"], 3)
            if graded["median"]
            else None,
            "target_x_one_python_spawn": TARGET_X_ONE_SPAWN.get(language),
            "failures": failures[:3],
        }
        target = TARGET_X_ONE_SPAWN.get(language)
        ratio = results[language]["x_one_python_spawn"]
        results[language]["target_met"] = bool(ratio is not None and target and ratio <= target)
    await conn.close()
    return results
