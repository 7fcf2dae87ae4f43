"""The editor against a learner's worst programs, in headless Chromium: a print flood, a crash, a
compile error, a forgotten input, a refused run, a queued run, and the run history. Screenshots go
to test-output/."""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.browser import (  # noqa: F401 (fixtures)
    OUTPUT,
    browser,
    finished,
    output_text,
    page,
    saved,
    server,
    wait_for,
)
from support.http import call
from support.servers import Server, gunicorn

# the classic: a while loop that forgot its i += 1; the engine stops it at its output cap
# (after a pause, so the page's stream is open and the flood comes live, chunk by chunk)
FLOOD = "import time\ntime.sleep(0.5)\ni = 0\nwhile i < 10:\n    print('all work and no play makes Jack a dull boy', i)\n"
# the page must answer within this throughout (a setTimeout probe's longest gap) ...
RESPONSIVE_MS = 200
# ... and have drawn the whole flood this long after its first chunk arrived
FLOOD_RENDERED_MS = 2000
TRACEBACK = 'def half(x):\n    return 1 / x\n\nprint("start")\nhalf(0)\n'
CPP_MISSING_SEMICOLON = '#include <iostream>\n\nint main() {\n    std::cout << "hi" << std::endl\n    return 0;\n}\n'
NODE_CRASH = "function f() {\n  null.x;\n}\nf();\n"


def open_session(server: Server, page, language: str, source: str) -> str:
    status, session = call(server.url, "POST", "/code-sessions", {"language": language, "source_code": source})
    assert status == 201, session
    page.goto(f"{server.url}/?session={session['session_id']}")
    saved(page)
    return session["session_id"]


def screenshot(page, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / name))


def markers(page) -> list[tuple[int, str]]:
    """The editor's gutter markers: (line number, severity), read from CodeMirror's lint state."""
    return [tuple(marker) for marker in page.evaluate(
        """() => {
            const view = window.LiveEditor.editor.view;
            const found = [];
            for (const marker of document.querySelectorAll('.cm-gutter-lint .cm-gutterElement')) {
                const inner = marker.querySelector('.cm-lint-marker');
                if (!inner) continue;
                const line = view.state.doc.lineAt(view.lineBlockAtHeight(marker.offsetTop).from).number;
                const severity = ['error', 'warning', 'info'].find((s) => inner.classList.contains('cm-lint-marker-' + s));
                found.push([line, severity]);
            }
            return found;
        }"""
    )]


def test_a_print_flood_never_freezes_the_page_and_renders_within_two_seconds(server, page):
    open_session(server, page, "python", FLOOD)
    # a probe of the page's event loop: the longest gap between timers asked for every 10 ms
    page.evaluate(
        """() => {
            window.probe = { longest: 0, stop: false, firstOutput: null, chunks: 0 };
            let last = performance.now();
            const tick = () => {
                const now = performance.now();
                window.probe.longest = Math.max(window.probe.longest, now - last);
                last = now;
                if (!window.probe.stop) setTimeout(tick, 10);
            };
            setTimeout(tick, 10);
            // the first output to reach the page: a chunk, or the final result when the run was over
            // before the stream opened (the whole flood then comes in the final event)
            const arrived = () => { if (window.probe.firstOutput === null) window.probe.firstOutput = performance.now(); };
            window.LiveEditor.on('output', () => { window.probe.chunks += 1; arrived(); });
            window.LiveEditor.on('run-finished', arrived);
        }"""
    )
    page.locator("#run").click()
    finished(page)
    probe = page.evaluate("() => { window.probe.stop = true; return {...window.probe, settledAt: performance.now()}; }")
    screenshot(page, "editor-flood.png")

    assert probe["firstOutput"] is not None
    print(
        f"longest event-loop gap {probe['longest']:.0f} ms; flood drawn {probe['settledAt'] - probe['firstOutput']:.0f} ms "
        f"after its first chunk; {probe['chunks']} chunk events"
    )
    assert probe["longest"] < RESPONSIVE_MS, probe
    # settledAt is an upper bound: finished() polls
    assert probe["settledAt"] - probe["firstOutput"] < FLOOD_RENDERED_MS, probe
    assert page.locator("#verdict").inner_text().startswith("Printed too much"), page.locator("#verdict").inner_text()
    shown = output_text(page)
    assert shown.startswith("all work and no play makes Jack a dull boy 0\n")
    # the whole capped output is there: 100 KiB of 45-byte lines
    assert shown.count("\n") >= 100 * 1024 // 45 - 2
    assert page.errors == []


def test_a_traceback_marks_its_lines_and_links_to_them(server, page):
    open_session(server, page, "python", TRACEBACK)
    page.locator("#run").click()
    finished(page)
    assert page.locator("#verdict").inner_text() == "Stopped by ZeroDivisionError: division by zero"
    # the line that raised is an error, the call that led there is marked too
    assert sorted(markers(page)) == [(2, "error"), (5, "info")]
    assert page.locator(".cm-lintRange-error").count() >= 1
    shown = output_text(page)
    assert 'File "main.py", line 2, in half' in shown and "/box/" not in shown

    # a file:line in the output is a link: clicking it puts the cursor on that line
    page.locator("#editor .cm-content").click()
    page.keyboard.press("ControlOrMeta+Home")
    box = link_box(page, 'File "main.py", line 2')
    page.mouse.move(box["x"], box["y"])
    page.mouse.click(box["x"], box["y"])
    wait_for(page, "window.LiveEditor.editor.view.state.doc.lineAt(window.LiveEditor.editor.view.state.selection.main.head).number === 2")
    screenshot(page, "editor-traceback.png")
    assert page.errors == []


def link_box(page, text: str) -> dict:
    """Where text is drawn in the output terminal (the middle of it), for the mouse."""
    return page.evaluate(
        """(text) => {
            const terminal = window.LiveEditor.output.terminal;
            const buffer = terminal.buffer.active;
            const screen = document.querySelector('#output .xterm-screen').getBoundingClientRect();
            const cellWidth = screen.width / terminal.cols, cellHeight = screen.height / terminal.rows;
            for (let y = buffer.viewportY; y < buffer.viewportY + terminal.rows; y++) {
                const line = buffer.getLine(y);
                const at = line ? line.translateToString(true).indexOf(text) : -1;
                if (at >= 0) {
                    return { x: screen.left + (at + text.length / 2) * cellWidth, y: screen.top + (y - buffer.viewportY + 0.5) * cellHeight };
                }
            }
            return null;
        }""",
        text,
    )


def test_a_cpp_compile_error_marks_its_line_and_says_how_long_it_took(server, page):
    open_session(server, page, "cpp", CPP_MISSING_SEMICOLON)
    page.locator("#run").click()
    finished(page)
    assert page.locator("#verdict").inner_text().startswith("Compile error in ")
    assert " 0 ms" not in page.locator("#verdict").inner_text()
    assert markers(page) == [(4, "error")]
    assert page.locator(".cm-lintRange-error").count() == 1
    screenshot(page, "editor-cpp-compile-error.png")
    assert page.errors == []


def test_a_node_crash_shows_the_learners_frames_only(server, page):
    open_session(server, page, "javascript", NODE_CRASH)
    page.locator("#run").click()
    finished(page)
    shown = output_text(page)
    assert "at f (main.js:2:8)" in shown
    assert "node:internal" not in shown and "[eval]" not in shown and "/box/" not in shown, shown
    assert sorted(markers(page)) == [(2, "error"), (4, "info")]
    assert page.errors == []


def test_a_run_short_of_input_opens_the_input_box_with_a_hint_and_the_box_is_kept(server, page):
    session_id = open_session(server, page, "python", "a = input()\nb = input()\nprint(int(a) + int(b))\n")
    page.locator("#stdin-box summary").click()
    page.locator("#stdin").fill("1\n")
    page.locator("#run").click()
    finished(page)
    assert page.locator("#verdict").inner_text().startswith("Stopped by EOFError")
    assert page.locator("#input-hint").is_visible()
    assert "more input" in page.locator("#input-hint").inner_text()
    assert page.evaluate("document.getElementById('stdin-box').open")
    # the input is kept with the session across a reload
    page.locator("#stdin").fill("1\n2\n")
    page.reload()
    saved(page)
    assert page.locator("#stdin").input_value() == "1\n2\n"
    assert page.evaluate("document.getElementById('stdin-box').open")
    page.locator("#run").click()
    finished(page)
    assert output_text(page) == "3"
    assert page.locator("#input-hint").is_hidden()
    screenshot(page, "editor-input.png")
    assert page.url.endswith(session_id)
    assert page.errors == []


def test_history_rows_tell_runs_apart_and_a_past_run_opens_with_its_own_code(server, page):
    session_id = open_session(server, page, "python", "print(int(input()) * 2)\n")
    page.locator("#stdin-box summary").click()
    page.locator("#stdin").fill("21\n")
    page.locator("#run").click()
    finished(page)
    status, _ = call(server.url, "PATCH", f"/code-sessions/{session_id}", {"source_code": "print(1 / 0)\n"})
    assert status == 200
    page.reload()
    saved(page)
    page.locator("#run").click()
    finished(page)
    page.wait_for_function("document.querySelectorAll('#history li').length === 2")

    newest, oldest = (page.locator("#history li").nth(n).inner_text() for n in range(2))
    assert "Python" in newest and "ZeroDivisionError" in newest, newest
    assert "Python" in oldest and "Finished in" in oldest and "42" in oldest, oldest

    page.locator("#history li button").nth(1).click()
    page.wait_for_selector("#past-run:not([hidden])")
    assert page.locator("#past-run-code").inner_text() == "print(int(input()) * 2)\n"
    assert page.locator("#past-run-stdin").inner_text() == "21\n"
    assert "differs" in page.locator("#past-run-title").inner_text()
    wait_for(page, "window.LiveEditor.output.settled")
    assert output_text(page) == "42"
    screenshot(page, "editor-history.png")
    # the learner's own code is untouched until they ask for the old one
    assert page.evaluate("window.LiveEditor.editor.getCode()") == "print(1 / 0)\n"
    page.locator("#past-run-restore").click()
    assert page.evaluate("window.LiveEditor.editor.getCode()") == "print(int(input()) * 2)\n"
    saved(page)
    assert page.errors == []


def test_the_picker_names_languages_and_switching_with_real_code_asks(server, page):
    open_session(server, page, "python", "for n in range(3):\n    print(n)\n")
    labels = page.locator("#language option").all_inner_texts()
    assert any(label.startswith("Python 3.") for label in labels), labels
    assert any(label.startswith("C++17 (g++ ") for label in labels), labels
    page.locator("#language").select_option("cpp")
    page.wait_for_selector("#switch-language:not([hidden])")
    assert page.locator("#language").input_value() == "python"
    page.locator("#switch-keep").click()
    wait_for(page, "window.LiveEditor.session().language === 'cpp'")
    assert page.locator("#language").input_value() == "cpp"
    assert page.evaluate("window.LiveEditor.editor.getCode()") == "for n in range(3):\n    print(n)\n"
    # New starts in the language being used
    with page.expect_navigation():
        page.locator("#new-session").click()
    saved(page)
    assert page.locator("#language").input_value() == "cpp"
    assert "#include <iostream>" in page.evaluate("window.LiveEditor.editor.getCode()")
    # Python indents four spaces
    page.locator("#language").select_option("python")
    wait_for(page, "window.LiveEditor.session().language === 'python'")
    page.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("if True:")
    page.keyboard.press("Enter")
    page.keyboard.type("x")
    assert page.evaluate("window.LiveEditor.editor.getCode()") == "if True:\n    x"
    assert page.errors == []


@pytest.fixture(scope="module")
def busy_server() -> Iterator[Server]:
    # one worker and one run a minute per session: a run can be seen queued, and refused
    with gunicorn(Path(tempfile.mkdtemp(prefix="editor-busy-")), RUN_WORKERS=1, RUN_SLOTS=1, RUNS_PER_MINUTE_PER_SESSION=1) as running:
        yield running


def test_a_queued_run_counts_and_a_refused_run_keeps_the_output_and_counts_down(busy_server, page):
    # the sleeper holds the only runner until its wall limit (5 s): longer than opening the page takes under load
    status, sleeper = call(busy_server.url, "POST", "/executions", {"language": "python", "source_code": "import time\ntime.sleep(60)\n"})
    assert status == 202
    open_session(busy_server, page, "python", 'print("the output to keep")\n')
    page.locator("#run").click()
    # the only runner sleeps: this run waits, and says so with a clock
    wait_for(page, "document.getElementById('verdict').textContent.startsWith('Waiting for a free runner')")
    wait_for(page, "/^[0-9.]+ s$/.test(document.getElementById('time').textContent) && parseFloat(document.getElementById('time').textContent) > 0.3")
    screenshot(page, "editor-queued.png")
    assert page.locator("#stop").is_visible()
    finished(page)
    assert output_text(page) == "the output to keep"

    # a second run within the minute is refused: the output stays, and Run counts down
    page.locator("#run").click()
    wait_for(page, "document.getElementById('error').textContent.includes('you can run again in')")
    assert page.locator("#run").is_disabled()
    assert output_text(page) == "the output to keep"
    screenshot(page, "editor-refused.png")
    assert page.errors == []


CONVERSATION = 'name = input("Name? ")\nprint("hi", name)\nage = input("Age? ")\nprint(age, "next")\n'


def test_the_console_takes_what_the_learner_types_into_the_output(server, page):
    open_session(server, page, "python", CONVERSATION)
    page.locator("#run").click()
    # the program reads with an empty Input box: the run is interactive, and asks in the output
    wait_for(page, "window.LiveEditor.output.text().includes('Name?') && document.getElementById('verdict').textContent.startsWith('Waiting for your input')")
    page.locator("#output").click()
    page.keyboard.type("bob")
    page.keyboard.press("Enter")
    wait_for(page, "window.LiveEditor.output.text().includes('hi bob')")
    page.keyboard.type("42")
    page.keyboard.press("Enter")
    finished(page)
    assert page.locator("#verdict").inner_text().startswith("Finished in")
    # what was typed is shown once, where it was typed
    assert output_text(page) == "Name? bob\nhi bob\nAge? 42\n42 next"
    screenshot(page, "editor-console.png")

    # lines typed faster than the program reads them all arrive, in order
    open_session(server, page, "python", "for _ in range(3):\n    print(input().upper())\n")
    page.locator("#run").click()
    wait_for(page, "document.getElementById('verdict').textContent.startsWith('Waiting for your input')")
    page.locator("#output").click()
    for word in ("one", "two", "three"):
        page.keyboard.type(word)
        page.keyboard.press("Enter")
    finished(page)
    # the program's lines are whole (a line being typed is set aside while output is written)
    shown = output_text(page).split("\n")
    assert [line for line in shown if line.isupper()] == ["ONE", "TWO", "THREE"], shown
    assert [line for line in shown if line.islower()] == ["one", "two", "three"], shown
    assert page.errors == []


def test_stop_and_ctrl_c_end_a_run(server, page):
    open_session(server, page, "python", "import time\nwhile True:\n    print('still going', flush=True)\n    time.sleep(0.2)\n")
    page.locator("#run").click()
    wait_for(page, "window.LiveEditor.output.text().includes('still going')")
    page.locator("#stop").click()
    finished(page)
    assert page.locator("#verdict").inner_text().startswith("Stopped by you"), page.locator("#verdict").inner_text()
    assert page.locator("#stop").is_hidden()
    assert "still going" in output_text(page)

    # Ctrl+C in the output does the same, for a console run waiting for input too
    open_session(server, page, "python", "input('Waiting: ')\n")
    page.locator("#run").click()
    wait_for(page, "window.LiveEditor.output.text().includes('Waiting:') && document.getElementById('verdict').textContent.startsWith('Waiting for your input')")
    page.locator("#output").click()
    page.keyboard.press("Control+c")
    finished(page)
    assert page.locator("#verdict").inner_text().startswith("Stopped by you")
    assert page.errors == []


def test_keep_mine_shows_the_other_tabs_text_before_overwriting_it(server, page):
    session_id = open_session(server, page, "python", 'print("base")\n')
    status, session = call(server.url, "GET", f"/code-sessions/{session_id}")
    status, _ = call(server.url, "PATCH", f"/code-sessions/{session_id}", {"source_code": 'print("theirs")\n', "version": session["version"]})
    assert status == 200
    page.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+End")
    page.keyboard.type("# mine")
    page.wait_for_selector('#save-state[data-state="conflict"]')
    page.locator("#conflict-overwrite").click()
    # the first click shows what would be lost, and overwrites nothing yet
    page.wait_for_selector("#conflict-theirs:not([hidden])")
    assert page.locator("#conflict-theirs-code").inner_text() == 'print("theirs")\n'
    assert call(server.url, "GET", f"/code-sessions/{session_id}")[1]["source_code"] == 'print("theirs")\n'
    screenshot(page, "editor-conflict.png")
    page.locator("#conflict-overwrite").click()
    saved(page)
    assert call(server.url, "GET", f"/code-sessions/{session_id}")[1]["source_code"] == 'print("base")\n# mine'
    assert page.errors == []


def test_the_dark_theme_follows_the_system_and_the_page_is_labelled(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    page = context.new_page()
    try:
        open_session(server, page, "python", 'print("in the dark")\n')
        colours = page.evaluate(
            "() => [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.querySelector('.cm-editor')).backgroundColor]"
        )
        assert all(brightness(colour) < 80 for colour in colours), colours
        page.locator("#run").click()
        finished(page)
        screenshot(page, "editor-dark.png")
        # a labelled input, a verdict announced politely, an output that is not a live region
        assert page.locator("label[for=stdin]").count() == 1
        assert page.locator("#verdict").get_attribute("role") == "status"
        assert page.locator("#output [aria-live]").count() == 0 and page.locator("#output").get_attribute("aria-live") is None
        # the output pane is no keyboard trap: Tab goes on to the next control
        page.locator("#output").click()
        page.keyboard.press("Tab")
        assert not page.evaluate("document.getElementById('output').contains(document.activeElement)")
    finally:
        context.close()


def brightness(css_colour: str) -> float:
    red, green, blue = (float(part) for part in css_colour[css_colour.index("(") + 1 : -1].split(",")[:3])
    return (red + green + blue) / 3


def test_carriage_returns_and_colours_are_a_terminals(server, page):
    source = (
        "import time\n"
        "for n in (10, 50, 100):\n"
        "    print(f'\\rloading {n}%', end='', flush=True)\n"
        "    time.sleep(0.05)\n"
        "print()\n"
        "print('\\x1b[32mgreen\\x1b[0m plain')\n"
    )
    open_session(server, page, "python", source)
    page.locator("#run").click()
    finished(page)
    assert output_text(page) == "loading 100%\ngreen plain"
    colour = page.evaluate(
        "() => { const cell = window.LiveEditor.output.terminal.buffer.active.getLine(1).getCell(0);"
        " return [cell.isFgPalette(), cell.getFgColor()]; }"
    )
    assert colour == [True, 2], colour
    assert page.errors == []


def test_the_pane_keeps_the_start_and_the_end_of_a_huge_output(server, page):
    open_session(server, page, "python", 'print("x")\n')
    # more than any one run may print by default: fed to the pane directly, as a long run's chunks would be
    page.evaluate(
        """() => {
            const pane = window.LiveEditor.output;
            pane.reset();
            for (let chunk = 0; chunk < 200; chunk++) {
                let text = '';
                for (let line = 0; line < 100; line++) text += `line ${chunk * 100 + line}\\n`;
                pane.write('stdout', text);
            }
        }"""
    )
    wait_for(page, "window.LiveEditor.output.settled")
    shown = output_text(page)
    assert shown.startswith("line 0\nline 1\n")
    assert shown.endswith("line 19998\nline 19999")
    assert "characters of output not shown" in shown
    lines = shown.count("\n")
    assert lines < 11_000, lines
    assert page.locator("#dropped").is_visible()
    assert "not shown" in page.locator("#dropped").inner_text()
    assert page.errors == []


# stderr as the engine gives it (captured from real runs), and what the editor must make of it
PARSED = [
    ("java", "Main.java:3: error: incompatible types: String cannot be converted to int\n        int x = \"s\";\n                ^\n1 error\n",
     [{"line": 3, "column": 17, "severity": "error"}]),
    ("java", "Exception in thread \"main\" java.lang.ArrayIndexOutOfBoundsException: Index 2 out of bounds for length 1\n\tat Main.main(Main.java:4)\n",
     [{"line": 4, "column": None, "severity": "error"}]),
    ("cpp", "main.cpp: In function 'int main()':\nmain.cpp:3:35: error: expected ';' before 'return'\n", [{"line": 3, "column": 35, "severity": "error"}]),
    ("python", '  File "/box/main.py", line 1\n    print("a"\n         ^\nSyntaxError: \'(\' was never closed\n', [{"line": 1, "column": 6, "severity": "error"}]),
    ("javascript", "/box/main.js:3\n  foo(;\n      ^\n\nSyntaxError: Unexpected token ';'\n    at internalCompileFunction (node:internal/vm:76:18)\n", [{"line": 3, "column": None, "severity": "error"}]),
]


def test_errors_of_every_language_point_at_the_learners_lines_and_results_read_as_words(server, page):
    open_session(server, page, "python", 'print("x")\n')
    for language, stderr, expected in PARSED:
        files = {"java": "Main.java", "cpp": "main.cpp", "python": "main.py", "javascript": "main.js"}
        found = page.evaluate("([l, s, f]) => Problems.parse(l, s, f)", [language, stderr, files[language]])
        assert [{key: problem[key] for key in ("line", "column", "severity")} for problem in found] == expected, (language, found)
    limits = {"timeout_seconds": 5.0, "memory_bytes": 256 * 1024 * 1024, "output_bytes": 102400, "cpu_seconds": 5}
    cases = [
        ({"status": "TIMEOUT", "error": "timeout", "execution_time_ms": 5006}, "Timed out after 5 s"),
        ({"status": "FAILED", "error": "memory_limit", "exit_code": 137}, "Ran out of memory (256 MiB)"),
        ({"status": "FAILED", "error": "signal", "exit_code": 139}, "Crashed: segmentation fault"),
        ({"status": "FAILED", "error": "compile_error", "compile_time_ms": 837, "exit_code": 1}, "Compile error in 0.8 s"),
        ({"status": "COMPLETED", "error": None, "execution_time_ms": 38}, "Finished in 38 ms"),
    ]
    for execution, words in cases:
        said = page.evaluate("(e) => Problems.describe(e).text", {**execution, "limits": limits})
        assert said.startswith(words), (execution, said)
    assert "SIGSEGV" in page.evaluate("(e) => Problems.describe(e).text", {"status": "FAILED", "error": "signal", "exit_code": 139})
    assert page.errors == []
