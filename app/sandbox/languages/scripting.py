"""Interpreted languages: the source runs as it is (TypeScript is first compiled to JavaScript)."""
from __future__ import annotations

from . import Language

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
# -c put "" first on sys.path; a cold start puts the script's directory
sys.path[0] = os.path.dirname(_path)
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
    # -E -s keep PYTHON* variables and the user site out of the learner's program (so the
    # flags say what those variables would: -u streams output as it is printed, -B writes no .pyc);
    # not -I, which since 3.11 also drops the script's directory from sys.path: siblings import
    run=("/usr/bin/python3", "-E", "-s", "-u", "-B", "{source}"),
    warm=("/usr/bin/python3", "-E", "-s", "-u", "-B", "-c", PYTHON_BOOTSTRAP, "{control_fd}"),
    version_command=("/usr/bin/python3", "--version"),
    memory_error_markers=("MemoryError",),
    smoke_program='print("OK")',
    display_name="Python {major}.{minor}",
    template='print("Hello, world!")\n',
)

JAVASCRIPT = Language(
    name="javascript",
    source_file="main.js",
    run=("/usr/bin/node", "--max-old-space-size={heap_mb}", "{source}"),
    graded_run=("/usr/bin/node", "{source}"),
    warm=("/usr/bin/node", "--max-old-space-size={heap_mb}", "-e", NODE_BOOTSTRAP, "{control_fd}"),
    version_command=("/usr/bin/node", "--version"),
    address_space_limit=False,
    memory_error_markers=("JavaScript heap out of memory",),
    smoke_program='console.log("OK")',
    display_name="JavaScript (Node.js {major})",
    template='console.log("Hello, world!");\n',
)


# Node 20 has no type stripping (--experimental-strip-types came in Node 22.6), so TypeScript is
# compiled by Debian's tsc; --skipLibCheck trusts the standard library's declarations, which
# cuts tsc's start from ~2.8 s to ~1.1 s on this machine while the learner's code is still checked
# node's own globals and modules, as "any": Debian ships no @types/node, and without them every
# require(), process.stdin or `import ... from "fs"` would be a type error
NODE_GLOBALS = """\
declare var require: (id: string) => any;
declare var module: any;
declare var exports: any;
declare var process: any;
declare var Buffer: any;
declare var __dirname: string;
declare var __filename: string;
""" + "".join(
    f'declare module "{name}";\n'
    for name in (
        "fs", "path", "readline", "os", "util", "events", "assert", "crypto", "child_process",
        "process", "buffer", "stream", "string_decoder", "timers", "url", "worker_threads", "zlib",
    )
)
TYPESCRIPT = Language(
    name="typescript",
    source_file="main.ts",
    compile=(
        "/usr/bin/node", "--max-old-space-size={heap_mb}", "/usr/share/nodejs/typescript/lib/tsc.js",
        "--pretty", "false", "--skipLibCheck", "--target", "es2020", "--module", "commonjs",
        "--rootDir", ".", "--outDir", "{build}", "{sources}", "{build}/node-globals.d.ts",
    ),
    run=("/usr/bin/node", "--max-old-space-size={heap_mb}", "{build}/main.js"),
    graded_run=("/usr/bin/node", "{build}/main.js"),
    version_command=("/usr/bin/node", "/usr/share/nodejs/typescript/lib/tsc.js", "--version"),
    address_space_limit=False,
    memory_error_markers=("JavaScript heap out of memory",),
    source_suffixes=(".ts",),
    build_files=(("node-globals.d.ts", NODE_GLOBALS),),
    smoke_program='console.log("OK");\n',
    display_name="TypeScript {major}.{minor} (Node.js)",
    template='const greeting: string = "Hello, world!";\nconsole.log(greeting);\n',
)

RUBY = Language(
    name="ruby",
    source_file="main.rb",
    run=("/usr/bin/ruby", "{source}"),
    version_command=("/usr/bin/ruby", "--version"),
    memory_error_markers=("failed to allocate memory", "NoMemoryError"),
    smoke_program='puts "OK"\n',
    display_name="Ruby {major}.{minor}",
    template='puts "Hello, world!"\n',
)

PHP = Language(
    name="php",
    source_file="main.php",
    # PHP's own memory cap set to the run's, so running out says so; errors to stderr, not stdout
    run=("/usr/bin/php", "-d", "memory_limit={heap_mb}M", "-d", "display_errors=stderr", "{source}"),
    version_command=("/usr/bin/php", "--version"),
    memory_error_markers=("Allowed memory size", "Out of memory"),
    extra_binds=("/etc/php",),
    smoke_program='<?php echo "OK\\n";\n',
    display_name="PHP {major}.{minor}",
    template='<?php\necho "Hello, world!\\n";\n',
)

BASH = Language(
    name="bash",
    source_file="main.sh",
    run=("/usr/bin/bash", "{source}"),
    version_command=("/usr/bin/bash", "--version"),
    memory_error_markers=("cannot allocate memory", "xmalloc"),
    smoke_program="echo OK\n",
    display_name="Bash {major}.{minor}",
    template='echo "Hello, world!"\n',
)
