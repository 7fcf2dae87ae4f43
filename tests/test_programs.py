"""Programs of several files, command-line arguments and a run's own limits, through the HTTP API."""
from __future__ import annotations

import uuid

import pytest

from support.client import wait_terminal

# each entry file uses a sibling that prints "hello from <language>"; the sibling's name is how
# that language finds it (a module, a class, a source compiled beside the entry)
MULTI_FILE = {
    "python": (
        "from helpers.greet import greet\ngreet()\n",
        {"helpers/__init__.py": "", "helpers/greet.py": "def greet():\n    print('hello from python')\n"},
    ),
    "javascript": (
        'require("./lib/greet").greet();\n',
        {"lib/greet.js": 'exports.greet = () => console.log("hello from javascript");\n'},
    ),
    "typescript": (
        'import { greet } from "./greet";\ngreet("typescript");\n',
        {"greet.ts": "export function greet(name: string): void { console.log(`hello from ${name}`); }\n"},
    ),
    "ruby": ("require_relative 'greet'\ngreet\n", {"greet.rb": "def greet\n  puts 'hello from ruby'\nend\n"}),
    "php": ("<?php\nrequire 'greet.php';\ngreet();\n", {"greet.php": '<?php\nfunction greet() { echo "hello from php\\n"; }\n'}),
    "bash": ("source ./greet.sh\ngreet\n", {"greet.sh": "greet() { echo 'hello from bash'; }\n"}),
    "c": (
        '#include "greet.h"\nint main(void) { greet(); return 0; }\n',
        {"greet.h": "void greet(void);\n", "greet.c": '#include <stdio.h>\nvoid greet(void) { puts("hello from c"); }\n'},
    ),
    "cpp": (
        '#include "greet.hpp"\nint main() { greet(); }\n',
        {"greet.hpp": "void greet();\n", "src/greet.cpp": '#include <iostream>\nvoid greet() { std::cout << "hello from cpp\\n"; }\n'},
    ),
    "go": (
        "package main\n\nfunc main() { greet() }\n",
        {"greet.go": 'package main\n\nimport "fmt"\n\nfunc greet() { fmt.Println("hello from go") }\n'},
    ),
    "rust": (
        "mod greet;\nfn main() { greet::greet(); }\n",
        {"greet.rs": 'pub fn greet() { println!("hello from rust"); }\n'},
    ),
    "java": (
        "public class Main { public static void main(String[] a) { Greeter.greet(); } }\n",
        {"Greeter.java": 'public class Greeter { static void greet() { System.out.println("hello from java"); } }\n'},
    ),
    "csharp": (
        "class Program { static void Main() { Greeter.Greet(); } }\n",
        {"Greeter.cs": 'class Greeter { public static void Greet() { System.Console.WriteLine("hello from csharp"); } }\n'},
    ),
    "sql": (".read schema.sql\nSELECT name FROM t;\n", {"schema.sql": "CREATE TABLE t (name TEXT);\nINSERT INTO t VALUES ('hello from sql');\n"}),
}


def run(client, **body) -> dict:
    rv = client.post("/executions", json=body)
    assert rv.status_code == 202, rv.json
    return wait_terminal(client, rv.json["execution_id"])


@pytest.mark.parametrize("language", list(MULTI_FILE))
def test_the_entry_file_finds_its_siblings(client, language):
    source, files = MULTI_FILE[language]
    done = run(client, language=language, source_code=source, files=files)
    assert done["status"] == "COMPLETED", done
    assert f"hello from {language}" in done["stdout"]
    assert done["file_names"] == sorted(files)


def test_an_error_in_another_file_names_that_file_and_line(client):
    files = {"util.py": "def boom():\n    raise ValueError('from util')\n"}
    done = run(client, language="python", source_code="import util\nutil.boom()\n", files=files)
    assert done["status"] == "FAILED"
    assert 'util.py", line 2' in done["stderr"]
    compiled = run(client, language="c", source_code="int helper(void);\nint main(void) { return helper(); }\n",
                   files={"helper.c": "int helper(void) {\n  return nope;\n}\n"})
    assert compiled["error"] == "compile_error"
    assert "helper.c:2:" in compiled["stderr"]


def test_the_compile_cache_key_covers_every_file(client):
    source = f"#include <stdio.h>\nint value(void);\nint main(void) {{ printf(\"%d\\n\", value()); }}\n// {uuid.uuid4()}\n"
    first = run(client, language="c", source_code=source, files={"value.c": "int value(void) { return 1; }\n"})
    again = run(client, language="c", source_code=source, files={"value.c": "int value(void) { return 1; }\n"})
    changed = run(client, language="c", source_code=source, files={"value.c": "int value(void) { return 2; }\n"})
    assert (first["stdout"], again["stdout"], changed["stdout"]) == ("1\n", "1\n", "2\n")
    assert first["compile_time_ms"] > 0 and again["compile_time_ms"] == 0 and changed["compile_time_ms"] > 0


@pytest.mark.parametrize(
    "name",
    ["../escape.py", "/etc/passwd", ".hidden.py", "dir/.hidden", "a/../b.py", "a//b.py", "a\\b.py", "", "main.py",
     "x" * 101, "a/b/c/d/e.py", "new\nline.py", "a b.py"],
)
def test_an_unsafe_file_name_is_a_clear_422(client, name):
    rv = client.post("/executions", json={"language": "python", "source_code": "", "files": {name: "x"}})
    assert rv.status_code == 422, rv.json
    assert rv.json["error"] == "invalid_file_name"


def test_a_file_cannot_also_be_a_folder_and_the_set_is_bounded(client, app):
    for files in ({"a": "", "a/b.py": ""}, {"main.py/x.py": ""}):
        rv = client.post("/executions", json={"language": "python", "source_code": "", "files": files})
        assert rv.status_code == 422 and rv.json["error"] == "invalid_file_name", rv.json
    many = {f"f{i}.py": "" for i in range(app.config["FILES_MAX_COUNT"] + 1)}
    rv = client.post("/executions", json={"language": "python", "source_code": "", "files": many})
    assert rv.status_code == 422 and rv.json["error"] == "too_many_files"
    big = {"big.py": "#" * (app.config["FILES_MAX_BYTES"] + 1)}
    rv = client.post("/code-sessions", json={"language": "python", "files": big})
    assert rv.status_code == 413 and rv.json["error"] == "files_too_large"
    rv = client.post("/executions", json={"language": "python", "source_code": "", "files": {"a.py": 3}})
    assert rv.status_code == 422 and rv.json["error"] == "validation_error"


def test_a_session_autosaves_every_file_and_its_runs_snapshot_them(client):
    rv = client.post("/code-sessions", json={"language": "python", "source_code": "import greet",
                                             "files": {"greet.py": "print('one')"}})
    assert rv.status_code == 201, rv.json
    session = rv.json
    assert session["files"] == {"greet.py": "print('one')"}
    sid = session["session_id"]
    first = client.post(f"/code-sessions/{sid}/run", json={}).json
    rv = client.patch(f"/code-sessions/{sid}", json={"files": {"greet.py": "print('two')"}, "version": session["version"]})
    assert rv.status_code == 200, rv.json
    assert rv.json["files"] == {"greet.py": "print('two')"} and rv.json["version"] == session["version"] + 1
    assert client.get(f"/code-sessions/{sid}").json["files"] == {"greet.py": "print('two')"}
    second = client.post(f"/code-sessions/{sid}/run", json={}).json
    assert wait_terminal(client, first["execution_id"])["stdout"] == "one\n"
    assert wait_terminal(client, second["execution_id"])["stdout"] == "two\n"
    rv = client.patch(f"/code-sessions/{sid}", json={"files": {"../x": ""}})
    assert rv.status_code == 422 and rv.json["error"] == "invalid_file_name"
    assert client.patch(f"/code-sessions/{sid}", json={"files": {}}).json["files"] == {}


@pytest.mark.parametrize(
    "language, source",
    [
        ("python", "import sys\nprint(sys.argv[1:])"),
        ("javascript", "console.log(JSON.stringify(process.argv.slice(2)))"),
        ("c", '#include <stdio.h>\nint main(int argc, char **argv) { for (int i = 1; i < argc; i++) printf("%s|", argv[i]); }'),
        ("java", 'public class Main { public static void main(String[] a) { System.out.print(String.join("|", a)); } }'),
        ("bash", 'printf "%s|" "$@"'),
    ],
)
def test_arguments_reach_the_program_unchanged(client, language, source):
    args = ["one", "two words", "--flag=$HOME", "ü"]
    done = run(client, language=language, source_code=source, args=args)
    assert done["status"] == "COMPLETED", done
    assert done["args"] == args
    for arg in args:
        assert arg in done["stdout"] or repr(arg) in done["stdout"]


def test_bad_arguments_are_a_clear_422(client, app):
    too_many = ["x"] * (app.config["RUN_ARGS_MAX_COUNT"] + 1)
    for body, code in (
        ({"args": too_many}, "too_many_args"),
        ({"args": ["a\u0000b"]}, "invalid_args"),
        ({"args": "not a list"}, "validation_error"),
        ({"args": [1]}, "validation_error"),
    ):
        rv = client.post("/executions", json={"language": "python", "source_code": "", **body})
        assert rv.status_code == 422 and rv.json["error"] == code, (body, rv.json)
    rv = client.post("/executions", json={"language": "sql", "source_code": "", "args": ["x"]})
    assert rv.status_code == 422 and rv.json["error"] == "args_not_supported"


def test_a_run_is_held_to_the_limits_it_asked_for(client):
    loop = run(client, language="python", source_code="while True: pass", limits={"timeout_seconds": 0.5})
    assert loop["status"] == "TIMEOUT"
    assert loop["limits"]["timeout_seconds"] == 0.5 and loop["limits"]["cpu_seconds"] == 1
    assert loop["execution_time_ms"] < 1500
    small = run(client, language="python", source_code="print('x' * 5000)", limits={"output_bytes": 1000})
    assert small["error"] == "output_limit" and small["limits"]["output_bytes"] == 1000
    default = run(client, language="python", source_code="print(1)")
    assert default["limits"]["output_bytes"] > 1000


def test_a_session_run_takes_limits_and_arguments(client):
    sid = client.post("/code-sessions", json={"language": "python", "source_code": "import sys; print(sys.argv[1])"}).json["session_id"]
    rv = client.post(f"/code-sessions/{sid}/run", json={"args": ["hi"], "limits": {"memory_bytes": 128 * 1024 * 1024}})
    assert rv.status_code == 202, rv.json
    done = wait_terminal(client, rv.json["execution_id"])
    assert done["stdout"] == "hi\n" and done["limits"]["memory_bytes"] == 128 * 1024 * 1024


def test_limits_above_the_maximum_or_of_the_wrong_type_are_a_clear_422(client, app):
    too_high = {
        "timeout_seconds": app.config["RUN_TIMEOUT_SECONDS_MAX"] + 1,
        "memory_bytes": app.config["RUN_MEMORY_BYTES_MAX"] + 1,
        "processes": app.config["RUN_PROCESSES_MAX"] + 1,
        "output_bytes": app.config["OUTPUT_LIMIT_BYTES_MAX"] + 1,
    }
    for name, value in too_high.items():
        rv = client.post("/executions", json={"language": "python", "source_code": "", "limits": {name: value}})
        assert rv.status_code == 422 and rv.json["error"] == "limit_too_high", rv.json
        assert name in rv.json["message"]
    for limits in ({"timeout_seconds": "5"}, {"memory_bytes": 1.5}, {"processes": 0}, {"cpu_seconds": 9}, {"timeout_seconds": True}, []):
        rv = client.post("/executions", json={"language": "python", "source_code": "", "limits": limits})
        assert rv.status_code == 422 and rv.json["error"] == "validation_error", (limits, rv.json)
