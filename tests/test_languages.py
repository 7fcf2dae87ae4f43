"""Every language through the same API, sandbox and limits: hello, stdin, errors, limits, compile cache."""
from __future__ import annotations

import uuid

import pytest

from app.sandbox import languages

PROGRAMS = {
    "python": {
        "hello": 'print("hello")',
        "echo": "import sys\nfor line in sys.stdin: print(line.strip().upper())",
        "crash": "raise ValueError('boom')",
        "loop": "while True: pass",
        "memory": "x = []\nwhile True: x.append(bytearray(10**7))",
    },
    "javascript": {
        "hello": 'console.log("hello")',
        "echo": 'const s = require("fs").readFileSync(0, "utf8");\nfor (const l of s.trim().split("\\n")) console.log(l.toUpperCase())',
        "crash": 'throw new Error("boom")',
        "loop": "while (true) {}",
        "memory": "const a = [];\nwhile (true) a.push(new Array(1e6).fill(1));",
    },
    "cpp": {
        "hello": '#include <iostream>\nint main() { std::cout << "hello" << std::endl; }',
        "echo": "#include <iostream>\n#include <string>\n#include <cctype>\n"
        "int main() { std::string s; while (std::getline(std::cin, s)) {"
        " for (auto& c : s) c = std::toupper(c); std::cout << s << '\\n'; } }",
        "crash": "#include <cstdlib>\nint main() { std::exit(3); }",
        "loop": "int main() { volatile int x = 0; while (true) x++; }",
        "memory": "#include <vector>\nint main() { std::vector<char*> v; while (true) {"
        " char* p = new char[10000000]; for (int i = 0; i < 10000000; i += 4096) p[i] = 1; v.push_back(p); } }",
        "compile_error": "int main() {\n  return undefined_name;\n}",
    },
    "java": {
        "hello": 'public class Main { public static void main(String[] a) { System.out.println("hello"); } }',
        "echo": "import java.util.*;\npublic class Main { public static void main(String[] a) {"
        " Scanner s = new Scanner(System.in); while (s.hasNextLine()) System.out.println(s.nextLine().toUpperCase()); } }",
        "crash": 'public class Main { public static void main(String[] a) { throw new RuntimeException("boom"); } }',
        "loop": "public class Main { public static void main(String[] a) { while (true) {} } }",
        "memory": "import java.util.*;\npublic class Main { public static void main(String[] a) {"
        " List<long[]> l = new ArrayList<>(); while (true) l.add(new long[1000000]); } }",
        "compile_error": 'public class Main {\n  public static void main(String[] a) {\n    int x = "s";\n  }\n}',
    },
}
COMPILED = [name for name in PROGRAMS if languages.BY_NAME[name].compile]


@pytest.fixture(params=list(PROGRAMS))
def language(request) -> str:
    if not languages.BY_NAME[request.param].is_installed():
        pytest.fail(f"{request.param} is not installed: `make test` installs every toolchain")
    return request.param


def test_languages_lists_every_installed_toolchain_with_its_real_version(client):
    rv = client.get("/languages")
    assert rv.status_code == 200
    listed = {entry["name"]: entry for entry in rv.json["languages"]}
    assert set(listed) == set(PROGRAMS)
    for entry in listed.values():
        assert entry["version"] and entry["version"][0].isdigit()
        assert entry["limits"]["timeout_seconds"] > 0
    assert listed["java"]["limits"]["memory_bytes"] > listed["python"]["limits"]["memory_bytes"]


def test_hello(run_code, language):
    done = run_code(PROGRAMS[language]["hello"], language=language)
    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == "hello\n"
    assert done["exit_code"] == 0


def test_stdin_echo(run_code, language):
    done = run_code(PROGRAMS[language]["echo"], stdin="one\ntwo\n", language=language)
    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == "ONE\nTWO\n"


def test_runtime_error_is_failed_with_its_exit_code(run_code, language):
    done = run_code(PROGRAMS[language]["crash"], language=language)
    assert done["status"] == "FAILED"
    assert done["error"] == "nonzero_exit"
    assert done["exit_code"] not in (0, None)


def test_infinite_loop_times_out(run_code, language):
    done = run_code(PROGRAMS[language]["loop"], language=language)
    assert done["status"] == "TIMEOUT"
    assert done["error"] in ("timeout", "cpu_time_limit")


def test_memory_bomb_is_contained(run_code, language, client):
    done = run_code(PROGRAMS[language]["memory"], language=language)
    assert done["status"] == "FAILED"
    assert done["error"] == "memory_limit"
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("name", COMPILED)
def test_compile_error_shows_the_learners_file_and_line(run_code, name):
    done = run_code(PROGRAMS[name]["compile_error"], language=name)
    assert done["status"] == "FAILED"
    assert done["error"] == "compile_error"
    source_file = languages.BY_NAME[name].source_file
    assert f"{source_file}:" in done["stderr"]
    assert ":2:" in done["stderr"] or ":3:" in done["stderr"] or f"{source_file}:3" in done["stderr"]
    assert "/box" not in done["stderr"] and "/tmp" not in done["stderr"]
    assert done["compile_time_ms"] > 0


@pytest.mark.parametrize("name", COMPILED)
def test_unchanged_code_is_not_compiled_again(run_code, name):
    # a comment with a unique value makes the first run a certain cache miss
    source = PROGRAMS[name]["hello"] + f"\n// {uuid.uuid4()}\n"
    first = run_code(source, language=name)
    second = run_code(source, language=name)
    assert first["status"] == second["status"] == "COMPLETED"
    assert first["compile_time_ms"] > 0
    assert second["compile_time_ms"] == 0
    assert second["stdout"] == "hello\n"


def test_a_session_in_an_uninstalled_language_gets_a_clear_4xx(client):
    rv = client.post("/code-sessions", json={"language": "cobol"})
    assert rv.status_code == 422
    assert rv.json["error"] == "unknown_language"
