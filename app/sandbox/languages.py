"""Languages as data: how each is run, which file its source gets, how to read its version."""
from __future__ import annotations

import functools
import glob
import re
import shutil
import subprocess
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Language:
    name: str
    # the source is written to this name inside the working directory
    source_file: str
    # argv that runs the program; {source} is the source file, {build} the compiled artifacts'
    # directory and {heap_mb} three quarters of the memory limit in MiB (for runtimes with a heap flag)
    run: tuple[str, ...]
    # argv that prints the toolchain version, and the pattern that finds it
    version_command: tuple[str, ...]
    version_pattern: str = r"(\d+\.\d+(?:\.\d+)?)"
    # argv of a warm sandbox: starts the runtime with a bootstrap that reads the program from
    # {control_fd} and then runs it exactly as `run` would; None when the language has none
    warm: tuple[str, ...] | None = None
    # argv that compiles {source} into {build}; None for interpreted languages
    compile: tuple[str, ...] | None = None
    # False for runtimes that reserve far more address space than they use (V8, the JVM):
    # RLIMIT_AS would kill them at start, so their memory is held by cgroup or heap flag instead
    address_space_limit: bool = True
    # extra read-only host paths the toolchain needs inside the sandbox
    extra_binds: tuple[str, ...] = ()
    # environment the program sees, beyond the sandbox's own minimal one
    env: tuple[tuple[str, str], ...] = ()
    # environment of the run step only (not the compiler's), and what interactive runs add to it
    run_env: tuple[tuple[str, str], ...] = ()
    interactive_env: tuple[tuple[str, str], ...] = ()
    # what the runtime writes to stderr when it runs out of memory (rlimit mode only)
    memory_error_markers: tuple[str, ...] = ()
    # what the language needs more of than the configured defaults (run, then compile step)
    limit_overrides: dict[str, float | int] = field(default_factory=dict)
    compile_limit_overrides: dict[str, float | int] = field(default_factory=dict)
    # a program that prints OK, for the smoke test
    smoke_program: str = ""

    def run_argv(self, build: str, memory_bytes: int) -> list[str]:
        return _expand(self.run, self.source_file, build, memory_bytes)

    def compile_argv(self, build: str, memory_bytes: int) -> list[str]:
        return _expand(self.compile or (), self.source_file, build, memory_bytes)

    def warm_argv(self, memory_bytes: int, control_fd: int) -> list[str]:
        return _expand(self.warm or (), self.source_file, "", memory_bytes, control_fd)

    def is_installed(self) -> bool:
        tool = (self.compile or self.run)[0]
        return shutil.which(tool) is not None

    def version(self) -> str | None:
        return _read_version(self.version_command, self.version_pattern)


def _expand(argv: tuple[str, ...], source: str, build: str, memory_bytes: int, control_fd: int = -1) -> list[str]:
    heap_mb = max(16, memory_bytes * 3 // 4 // (1024 * 1024))
    values = {"source": source, "build": build, "heap_mb": heap_mb, "control_fd": control_fd}
    return [_fill(part, values) for part in argv]


def _fill(part: str, values: dict[str, object]) -> str:
    # not str.format: bootstraps are code with braces of their own
    for name, value in values.items():
        part = part.replace("{" + name + "}", str(value))
    return part


@functools.cache
def _read_version(command: tuple[str, ...], pattern: str) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else None


# reads the program from the control pipe, writes it to main.py and runs it as a cold start
# would: same __main__ module attributes, sys.argv, working directory and tracebacks
PYTHON_BOOTSTRAP = """\
import sys, os, importlib.machinery
def _receive(fd):
    data = b"".join(iter(lambda: os.read(fd, 65536), b""))
    os.close(fd)
    with open(_path, "wb") as file:
        file.write(data)
    return data
# everything that does not need the program is done before it arrives
_path = os.path.join(os.getcwd(), "main.py")
_main = type(sys)("__main__")
_main.__dict__.update(__file__=_path, __cached__=None, __builtins__=__builtins__, __annotations__={},
    __loader__=importlib.machinery.SourceFileLoader("__main__", _path))
_fd = int(sys.argv[1])
sys.argv[:] = ["main.py"]
_source = _receive(_fd)
del _receive, _fd
sys.modules["__main__"] = _main
try:
    exec(compile(_source, _path, "exec"), _main.__dict__)
except SystemExit:
    raise
except BaseException as _error:
    # the traceback a cold start prints: without this bootstrap's own frame
    _error.__traceback__ = _error.__traceback__.tb_next
    sys.excepthook(type(_error), _error, _error.__traceback__)
    sys.exit(1)
"""

NODE_BOOTSTRAP = """\
const fs = require("fs");
const fd = Number(process.argv[1]);
const source = fs.readFileSync(fd);
fs.closeSync(fd);
const main = require("path").join(process.cwd(), "main.js");
fs.writeFileSync(main, source);
process.argv[1] = main;
require("module").runMain();
"""

PYTHON = Language(
    name="python",
    source_file="main.py",
    # Debian's interpreter under /usr: fast to start and visible in the read-only sandbox;
    # -I keeps PYTHON* variables and the user site out of the learner's program (so the
    # flags say what those variables would: -u streams output as it is printed, -B writes no .pyc)
    run=("/usr/bin/python3", "-I", "-u", "-B", "{source}"),
    warm=("/usr/bin/python3", "-I", "-u", "-B", "-c", PYTHON_BOOTSTRAP, "{control_fd}"),
    version_command=("/usr/bin/python3", "--version"),
    memory_error_markers=("MemoryError",),
    smoke_program='print("OK")',
)

JAVASCRIPT = Language(
    name="javascript",
    source_file="main.js",
    run=("/usr/bin/node", "--max-old-space-size={heap_mb}", "{source}"),
    warm=("/usr/bin/node", "--max-old-space-size={heap_mb}", "-e", NODE_BOOTSTRAP, "{control_fd}"),
    version_command=("/usr/bin/node", "--version"),
    address_space_limit=False,
    memory_error_markers=("JavaScript heap out of memory",),
    smoke_program='console.log("OK")',
)

# coreutils' stdbuf library, preloaded into C/C++ programs: stdout on a pipe is otherwise fully
# buffered, so output would come in 4 KiB lumps and a prompt only after its answer. Line-buffered
# stdout streams line by line; an unbuffered stdin (interactive runs only: it costs a read per
# byte) makes glibc flush stdout before every read, so `printf("Name? "); scanf(...)` shows the
# prompt first (iostreams already do: cin is tied to cout).
STDBUF_LIBRARY = next(iter(glob.glob("/usr/libexec/coreutils/libstdbuf.so") + glob.glob("/usr/lib/*/coreutils/libstdbuf.so")), None)
STDBUF_RUN_ENV = (("LD_PRELOAD", STDBUF_LIBRARY), ("_STDBUF_O", "L")) if STDBUF_LIBRARY else ()
STDBUF_INTERACTIVE_ENV = (("_STDBUF_I", "0"),) if STDBUF_LIBRARY else ()

CPP = Language(
    name="cpp",
    source_file="main.cpp",
    compile=("/usr/bin/g++", "-std=c++17", "-O2", "-pipe", "-o", "{build}/main", "{source}"),
    run=("{build}/main",),
    version_command=("/usr/bin/g++", "--version"),
    version_pattern=r"\) (\d+\.\d+(?:\.\d+)?)",
    memory_error_markers=("std::bad_alloc",),
    run_env=STDBUF_RUN_ENV,
    interactive_env=STDBUF_INTERACTIVE_ENV,
    # cc1plus alone wants a few hundred MiB on template-heavy code
    compile_limit_overrides={"memory_bytes": 512 * 1024 * 1024},
    smoke_program='#include <iostream>\nint main() { std::cout << "OK" << std::endl; }\n',
)

# the JVM's own threads count as processes, and its heap and code cache need room
JAVA_FLAGS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss8m", "-XX:ReservedCodeCacheSize=32m")
JAVA = Language(
    name="java",
    source_file="Main.java",
    compile=(
        "/usr/bin/javac", "-J-Xmx{heap_mb}m", *(f"-J{flag}" for flag in JAVA_FLAGS),
        "-encoding", "UTF-8", "-d", "{build}", "{source}",
    ),
    run=("/usr/bin/java", "-Xmx{heap_mb}m", *JAVA_FLAGS, "-cp", "{build}", "Main"),
    version_command=("/usr/bin/javac", "-version"),
    address_space_limit=False,
    memory_error_markers=("java.lang.OutOfMemoryError",),
    extra_binds=tuple(glob.glob("/etc/java-*")),
    limit_overrides={"memory_bytes": 512 * 1024 * 1024, "processes": 128},
    compile_limit_overrides={"memory_bytes": 1024 * 1024 * 1024, "processes": 128},
    smoke_program='public class Main { public static void main(String[] a) { System.out.println("OK"); } }\n',
)

ALL: tuple[Language, ...] = (PYTHON, JAVASCRIPT, CPP, JAVA)
BY_NAME: dict[str, Language] = {language.name: language for language in ALL}


def installed() -> list[Language]:
    """The languages whose toolchain is present on this machine."""
    return [language for language in ALL if language.is_installed()]
