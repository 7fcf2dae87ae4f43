"""Every language through the same API, sandbox and limits: hello, stdin, errors, limits, compile cache."""
from __future__ import annotations

import re
import uuid

import pytest

from app.sandbox import languages
from support.client import wait_terminal

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
    "c": {
        "hello": '#include <stdio.h>\nint main(void) { printf("hello\\n"); return 0; }',
        "echo": "#include <stdio.h>\n#include <ctype.h>\nint main(void) { int c;"
        " while ((c = getchar()) != EOF) putchar(toupper(c)); return 0; }",
        "crash": "#include <stdlib.h>\nint main(void) { exit(3); }",
        "loop": "int main(void) { volatile int x = 0; for (;;) x++; }",
        "memory": "#include <stdio.h>\n#include <stdlib.h>\nint main(void) { for (;;) {"
        " char *p = malloc(10000000); if (!p) { perror(\"malloc\"); return 1; }"
        " for (int i = 0; i < 10000000; i += 4096) p[i] = 1; } }",
        "compile_error": "int main(void) {\n  return undefined_name;\n}",
    },
    "go": {
        "hello": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }',
        "echo": 'package main\n\nimport (\n\t"bufio"\n\t"fmt"\n\t"os"\n\t"strings"\n)\n\n'
        "func main() {\n\ts := bufio.NewScanner(os.Stdin)\n\tfor s.Scan() {\n\t\tfmt.Println(strings.ToUpper(s.Text()))\n\t}\n}",
        "crash": 'package main\n\nimport "os"\n\nfunc main() { os.Exit(3) }',
        "loop": "package main\n\nfunc main() {\n\tx := 0\n\tfor {\n\t\tx++\n\t}\n}",
        "memory": "package main\n\nvar keep [][]byte\n\nfunc main() {\n\tfor {\n\t\tb := make([]byte, 10<<20)\n"
        "\t\tfor i := range b {\n\t\t\tb[i] = 1\n\t\t}\n\t\tkeep = append(keep, b)\n\t}\n}",
        "compile_error": "package main\nfunc main() {\n\tx := undefinedName\n}",
    },
    "rust": {
        "hello": 'fn main() { println!("hello"); }',
        "echo": "use std::io::BufRead;\nfn main() { for line in std::io::stdin().lock().lines() {"
        ' println!("{}", line.unwrap().to_uppercase()); } }',
        "crash": "fn main() { std::process::exit(3); }",
        "loop": "fn main() { loop {} }",
        "memory": "fn main() { let mut v: Vec<Vec<u8>> = Vec::new(); loop { v.push(vec![1u8; 10_000_000]); } }",
        "compile_error": 'fn main() {\n    let x: i32 = "s";\n}',
    },
    "typescript": {
        "hello": 'const greeting: string = "hello";\nconsole.log(greeting);',
        "echo": 'const s: string = require("fs").readFileSync(0, "utf8");\n'
        'for (const l of s.trim().split("\\n")) console.log(l.toUpperCase());',
        "crash": 'throw new Error("boom");',
        "loop": "while (true) {}",
        "memory": "const a: number[][] = [];\nwhile (true) a.push(new Array(1e6).fill(1));",
        "compile_error": "const x: number = 1;\nconst y: string = x;\n",
    },
    "ruby": {
        "hello": 'puts "hello"',
        "echo": "STDIN.each_line { |l| puts l.strip.upcase }",
        "crash": 'raise "boom"',
        "loop": "while true; end",
        "memory": 'a = []\nloop { a << ("x" * 10_000_000) }',
    },
    "php": {
        "hello": '<?php echo "hello\\n";',
        "echo": '<?php while (($l = fgets(STDIN)) !== false) echo strtoupper(trim($l)), "\\n";',
        "crash": '<?php throw new Exception("boom");',
        "loop": "<?php while (true) {}",
        "memory": '<?php $a = []; while (true) $a[] = str_repeat("x", 10000000);',
    },
    "csharp": {
        "hello": 'class Program { static void Main() { System.Console.WriteLine("hello"); } }',
        "echo": "class Program { static void Main() { string l;"
        " while ((l = System.Console.ReadLine()) != null) System.Console.WriteLine(l.ToUpper()); } }",
        "crash": 'class Program { static void Main() { throw new System.Exception("boom"); } }',
        "loop": "class Program { static void Main() { while (true) {} } }",
        "memory": "class Program { static void Main() { var l = new System.Collections.Generic.List<byte[]>();"
        " while (true) { var b = new byte[10000000]; for (int i = 0; i < b.Length; i += 4096) b[i] = 1; l.Add(b); } } }",
        "compile_error": 'class Program {\n  static void Main() {\n    int x = "s";\n  }\n}',
    },
    "bash": {
        "hello": "echo hello",
        "echo": 'while read -r l; do echo "${l^^}"; done',
        "crash": "exit 3",
        "loop": "while :; do :; done",
        "memory": "x=xxxxxxxxxx; while :; do x=$x$x; done",
        "memory_limits": {"memory_bytes": 64 * 1024 * 1024},
    },
    "sql": {
        # the program is SQL; stdin is read as more SQL after it; results print as tables
        "hello": "SELECT 'hello' AS greeting;",
        "hello_stdout": "┌──────────┐\n│ greeting │\n├──────────┤\n│ hello    │\n└──────────┘\n",
        "echo": "CREATE TABLE words (w TEXT);",
        "echo_stdin": "INSERT INTO words VALUES ('one'), ('two');\nSELECT upper(w) AS w FROM words;\n",
        "echo_stdout": "┌─────┐\n│  w  │\n├─────┤\n│ ONE │\n│ TWO │\n└─────┘\n",
        "crash": "SELECT * FROM no_such_table;",
        "loop": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;",
        "memory": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000)"
        " SELECT length(group_concat(randomblob(10000))) FROM c;",
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
        assert entry["source_file"].endswith("." + entry["extension"])
        assert entry["multi_file"] and entry["graded"] and entry["interactive"]
        for name, maximum in entry["max_limits"].items():
            assert maximum >= entry["limits"][name]
    assert listed["java"]["limits"]["memory_bytes"] > listed["python"]["limits"]["memory_bytes"]
    assert listed["python"]["display_name"] == "Python " + ".".join(listed["python"]["version"].split(".")[:2])
    assert listed["cpp"]["display_name"].startswith("C++17 (g++ ")
    assert {name for name, entry in listed.items() if entry["compiles"]} == {"cpp", "java", "c", "go", "rust", "typescript", "csharp"}
    assert listed["sql"]["args"] is False and listed["python"]["args"] is True


def test_every_template_runs_and_says_hello(client):
    templates = {entry["name"]: entry["template"] for entry in client.get("/languages").json["languages"]}
    started = {}
    for name, template in templates.items():
        rv = client.post("/executions", json={"language": name, "source_code": template})
        assert rv.status_code == 202, rv.json
        started[name] = rv.json["execution_id"]
    for name, execution_id in started.items():
        done = wait_terminal(client, execution_id)
        assert done["status"] == "COMPLETED", done
        assert "Hello, world!" in done["stdout"], (name, done["stdout"])


def test_hello(run_code, language):
    program = PROGRAMS[language]
    done = run_code(program["hello"], language=language)
    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == program.get("hello_stdout", "hello\n")
    assert done["exit_code"] == 0


def test_stdin_echo(run_code, language):
    program = PROGRAMS[language]
    done = run_code(program["echo"], stdin=program.get("echo_stdin", "one\ntwo\n"), language=language)
    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == program.get("echo_stdout", "ONE\nTWO\n")


def test_runtime_error_is_failed_with_its_exit_code(run_code, language):
    done = run_code(PROGRAMS[language]["crash"], language=language)
    assert done["status"] == "FAILED"
    assert done["error"] == "nonzero_exit"
    assert done["exit_code"] not in (0, None)


def test_infinite_loop_times_out(run_code, language):
    done = run_code(PROGRAMS[language]["loop"], language=language)
    assert done["status"] == "TIMEOUT"
    assert done["error"] in ("timeout", "cpu_time_limit")


def test_memory_bomb_is_contained(language, client):
    program = PROGRAMS[language]
    # a run's own limits: a slow allocator (bash copies its string at every doubling) reaches a
    # smaller limit well within the test's 2 s
    limits = program.get("memory_limits", {})
    rv = client.post("/executions", json={"language": language, "source_code": program["memory"], "limits": limits})
    assert rv.status_code == 202, rv.json
    done = wait_terminal(client, rv.json["execution_id"])
    assert done["status"] == "FAILED", done
    assert done["error"] == "memory_limit"
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("name", COMPILED)
def test_compile_error_shows_the_learners_file_and_line(run_code, name):
    done = run_code(PROGRAMS[name]["compile_error"], language=name)
    assert done["status"] == "FAILED"
    assert done["error"] == "compile_error"
    source_file = languages.BY_NAME[name].source_file
    # file:line (gcc, javac, go, rustc) or file(line,column) (tsc, mcs), on line 2 or 3
    assert re.search(rf"{re.escape(source_file)}(:|\()[23]\b", done["stderr"]), done["stderr"]
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
