"""The floors: what doing the same work bare, outside the engine, costs, alone and in parallel."""
from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .load import summarize

JAVA_FLAGS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss8m", "-XX:ReservedCodeCacheSize=32m")


@dataclass(frozen=True)
class Hello:
    """A language's hello world: the program the engine runs, and the fastest bare way to do the same.

    steps run in order in a scratch directory holding source_file; interpreters need one step and
    no file (the code is inline), compiled languages compile then run, with the engine's flags.
    """

    source: str
    steps: tuple[tuple[str, ...], ...]
    source_file: str | None = None
    comment: str = "//"
    expected: str = "hello\n"
    # environment beyond the bench's own, as the engine gives the language
    env: tuple[tuple[str, str], ...] = ()

    def fresh_source(self) -> str:
        """The program with a unique comment, as if just edited: no cache of any engine has seen it."""
        return f"{self.source.rstrip()}\n{self.comment} {uuid.uuid4().hex}\n"

    @property
    def compiled(self) -> bool:
        return len(self.steps) > 1

    def installed(self) -> bool:
        return all(os.access(step[0], os.X_OK) for step in self.steps if step[0].startswith("/"))

    def command(self) -> str:
        return " && ".join(" ".join(step) for step in self.steps)


HELLO: dict[str, Hello] = {
    # Debian's interpreter, not a pyenv shim (a shim is a shell script that execs another process)
    "python": Hello('print("hello")', (("/usr/bin/python3", "-c", 'print("hello")'),), comment="#"),
    "javascript": Hello('console.log("hello")', (("/usr/bin/node", "-e", 'console.log("hello")'),)),
    "cpp": Hello(
        '#include <iostream>\nint main() { std::cout << "hello" << std::endl; }\n',
        (("/usr/bin/g++", "-std=c++17", "-O2", "-pipe", "-o", "main", "main.cpp"), ("./main",)),
        "main.cpp",
    ),
    "java": Hello(
        'public class Main { public static void main(String[] a) { System.out.println("hello"); } }\n',
        (
            ("/usr/bin/javac", *(f"-J{flag}" for flag in JAVA_FLAGS), "-encoding", "UTF-8", "-d", ".", "Main.java"),
            ("/usr/bin/java", *JAVA_FLAGS, "-cp", ".", "Main"),
        ),
        "Main.java",
    ),
    # the rest: the engine's own command for each (app/sandbox/languages/), run bare in a scratch directory
    "c": Hello(
        '#include <stdio.h>\nint main(void) { printf("hello\\n"); return 0; }\n',
        (("/usr/bin/gcc", "-std=c17", "-O2", "-pipe", "-o", "main", "main.c", "-lm"), ("./main",)),
        "main.c",
    ),
    "go": Hello(
        'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n',
        (("/usr/bin/go", "build", "-o", "main", "main.go"), ("./main",)),
        "main.go",
        # as in the sandbox: offline, no cgo; the build cache is the bench's own (the engine's is
        # new each run, but a new source misses it either way: the standard library is prebuilt)
        env=(
            ("GOCACHE", os.path.join(tempfile.gettempdir(), "bench-floor-go-cache")), ("GOFLAGS", "-mod=mod"),
            ("GOPROXY", "off"), ("CGO_ENABLED", "0"),
        ),
    ),
    "rust": Hello(
        'fn main() { println!("hello"); }\n',
        (("/usr/bin/rustc", "--edition", "2021", "-O", "-o", "main", "main.rs"), ("./main",)),
        "main.rs",
    ),
    "typescript": Hello(
        'console.log("hello");\n',
        (
            ("/usr/bin/node", "/usr/share/nodejs/typescript/lib/tsc.js", "--pretty", "false", "--skipLibCheck",
             "--target", "es2020", "--module", "commonjs", "--outDir", "out", "main.ts"),
            ("/usr/bin/node", "out/main.js"),
        ),
        "main.ts",
    ),
    "csharp": Hello(
        'class Program { static void Main() { System.Console.WriteLine("hello"); } }\n',
        (("/usr/bin/mono", "/usr/lib/mono/4.5/mcs.exe", "-optimize+", "-out:main.exe", "main.cs"), ("/usr/bin/mono", "main.exe")),
        "main.cs",
    ),
    "ruby": Hello('puts "hello"', (("/usr/bin/ruby", "-e", 'puts "hello"'),), comment="#"),
    "php": Hello('<?php echo "hello\\n";', (("/usr/bin/php", "-r", 'echo "hello\\n";'),)),
    "bash": Hello("echo hello", (("/usr/bin/bash", "-c", "echo hello"),), comment="#"),
    # the SQL as an argument: the bare sqlite3 then exits without reading stdin (the engine's has none)
    "sql": Hello(
        "SELECT 'hello' AS greeting;",
        (("/usr/bin/sqlite3", "-bail", "-box", ":memory:", "SELECT 'hello' AS greeting;"),),
        comment="--",
        expected="┌──────────┐\n│ greeting │\n├──────────┤\n│ hello    │\n└──────────┘\n",
    ),
}
STEP_TIMEOUT_SECONDS = 30


def spawn_once(hello: Hello, workdir: Path) -> float:
    """Seconds the bare steps take from the first spawn to the last exit; raises if the output is wrong."""
    started = time.perf_counter()
    for step in hello.steps:
        done = subprocess.run(
            step, cwd=workdir, capture_output=True, text=True, timeout=STEP_TIMEOUT_SECONDS, check=False,
            env={**os.environ, **dict(hello.env)} if hello.env else None,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{step[0]}: exit {done.returncode}: {done.stderr[-200:]}")
    seconds = time.perf_counter() - started
    if done.stdout != hello.expected:
        raise RuntimeError(f"{hello.steps[-1][0]}: stdout {done.stdout!r:.80}")
    return seconds


def _scratch(hello: Hello) -> tempfile.TemporaryDirectory:
    scratch = tempfile.TemporaryDirectory(prefix="bench-floor-")
    if hello.source_file:
        (Path(scratch.name) / hello.source_file).write_text(hello.source)
    return scratch


def cold_spawn(hello: Hello, count: int, budget_seconds: float, warmup: int = 3, gap_seconds: float = 0.0) -> dict[str, object]:
    """Median and p95 (ms) of up to count sequential spawns within budget_seconds, after warmup ones;
    with gap_seconds, an untimed pause before each."""
    with _scratch(hello) as workdir:
        for _ in range(warmup):
            spawn_once(hello, Path(workdir))
        times: list[float] = []
        stop_at = time.perf_counter() + budget_seconds
        while len(times) < count and (not times or time.perf_counter() < stop_at):
            time.sleep(gap_seconds)
            times.append(spawn_once(hello, Path(workdir)))
    return {"command": hello.command(), **{f"{k}_ms": v for k, v in summarize(times).items() if k != "n"}, "n": len(times)}


def parallel_spawn(hello: Hello, count: int, parallelism: int, budget_seconds: float) -> dict[str, object]:
    """Spawns per second with parallelism of them at a time, over up to count spawns within budget_seconds."""
    stop_at = time.perf_counter() + budget_seconds
    scratches = [_scratch(hello) for _ in range(parallelism)]
    free = list(range(parallelism))

    def one(index: int) -> bool | None:
        # past the budget the rest are skipped, but every thread gets at least one
        if index >= parallelism and time.perf_counter() > stop_at:
            return None
        # each thread compiles in its own directory
        slot = free.pop()
        try:
            spawn_once(hello, Path(scratches[slot].name))
            return True
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            return False
        finally:
            free.append(slot)

    started = time.perf_counter()
    # the spawned processes' CPU (user + system, counted as each is reaped): the floor in CPU,
    # which a loaded machine does not distort the way it does wall time
    children_before = _children_cpu_seconds()
    with ThreadPoolExecutor(parallelism) as pool:
        outcomes = [ok for ok in pool.map(one, range(count)) if ok is not None]
    wall = time.perf_counter() - started
    children_cpu = _children_cpu_seconds() - children_before
    for scratch in scratches:
        scratch.cleanup()
    done = sum(outcomes)
    return {
        "parallelism": parallelism,
        "n": len(outcomes),
        "failures": len(outcomes) - done,
        "wall_s": round(wall, 3),
        "runs_per_s": round(done / wall, 2) if wall else None,
        "cpu_ms_per_spawn": round(children_cpu * 1000 / len(outcomes), 2) if outcomes else None,
    }


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
