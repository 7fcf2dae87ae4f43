"""The browser editor at /, driven in headless Chromium against a real gunicorn: type, autosave, reload, run, watch."""
from __future__ import annotations

import time

from support.browser import (  # noqa: F401 (browser, page and server are fixtures)
    OUTPUT,
    RUN_MS,
    STEP_MS,
    browser,
    editor_text,
    finished,
    output_text,
    page,
    saved,
    server,
    sync_api,
    wait_for,
)
from support.http import call

# typed line by line as a person would; it flushes by hand so this test is about the page, not
# the interpreter's buffering (test_events covers that)
PROGRAM = [
    "import time",
    'print("tick one", flush=True)',
    "time.sleep(1.5)",
    'print("tick two", flush=True)',
]


def test_the_editor_is_served_at_the_root_with_its_assets(client):
    rv = client.get("/")
    assert rv.status_code == 200
    assert rv.mimetype == "text/html"
    page = rv.get_data(as_text=True)
    assets = ["/web/editor.css", "/web/vendor/xterm.css", "/web/vendor/codemirror.js", "/web/problems.js", "/web/output.js", "/web/editor.js"]
    for asset in assets:
        assert f'"{asset}"' in page
        with client.get(asset) as rv:
            assert rv.status_code == 200 and rv.data
    # vendored: nothing is fetched from another host
    assert "http://" not in page and "https://" not in page


def test_type_autosave_reload_run_and_watch_live_output(server, page):
    page.goto(server.url + "/")
    saved(page)
    session_id = page.url.split("session=")[1]
    assert page.locator("#language option").count() >= 1
    assert page.locator("#language").input_value() == "python"
    # syntax highlighting: the string in the starter code has a colour of its own
    colours = page.evaluate(
        """() => {
            const line = document.querySelector('.cm-content .cm-line');
            const word = [...line.querySelectorAll('span')].find((span) => span.textContent.startsWith('"Hello'));
            return [getComputedStyle(line).color, word && getComputedStyle(word).color];
        }"""
    )
    assert colours[1] is not None and colours[0] != colours[1], colours

    page.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    for line in PROGRAM:
        page.keyboard.type(line)
        # close any completion list, so Enter is a new line and not "accept"
        page.keyboard.press("Escape")
        page.keyboard.press("Enter")
    page.wait_for_selector('#save-state[data-state="dirty"], #save-state[data-state="saving"]', timeout=5_000)
    saved(page)
    status, stored = call(server.url, "GET", f"/code-sessions/{session_id}")
    assert stored["source_code"] == "\n".join(PROGRAM) + "\n"
    assert stored["version"] >= 2

    page.reload()
    saved(page)
    assert page.url.endswith(f"session={session_id}")
    assert editor_text(page).strip() == "\n".join(PROGRAM)

    page.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+Enter")
    wait_for(page, "window.LiveEditor.output.text().includes('tick one')")
    # the first line is on screen while the program still sleeps
    seen_live = page.evaluate("() => [document.getElementById('status').dataset.status, window.LiveEditor.output.text()]")
    assert seen_live[0] == "RUNNING", seen_live
    assert "tick two" not in seen_live[1]
    first_line_at = time.monotonic()

    wait_for(page, "document.getElementById('status').dataset.status === 'COMPLETED'")
    assert time.monotonic() - first_line_at > 0.5
    wait_for(page, "window.LiveEditor.output.settled")
    assert output_text(page) == "tick one\ntick two"
    assert page.locator("#verdict").inner_text().startswith("Finished in ")
    assert page.locator("#verdict").get_attribute("role") == "status"
    assert page.locator("#truncated").is_hidden()
    # the history is reloaded at the end of the run: it shows this one run, completed
    page.wait_for_selector('#history li .badge[data-status="COMPLETED"]')
    assert page.locator("#history li").count() == 1

    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "editor.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scrolling on a phone"
    page.screenshot(path=str(OUTPUT / "editor-phone.png"), full_page=True)
    assert page.errors == []


def test_stderr_is_told_apart_and_a_conflict_offers_to_reload(server, page):
    status, session = call(server.url, "POST", "/code-sessions", {"language": "python", "source_code": 'import sys\nsys.exit("bad")\n'})
    assert status == 201
    page.goto(f"{server.url}/?session={session['session_id']}")
    saved(page)
    page.locator("#run").click()
    wait_for(page, "document.getElementById('status').dataset.status === 'FAILED'")
    finished(page)
    assert output_text(page) == "bad"
    # stderr is red in the terminal (palette colour 1), and the result is said in words
    colour = page.evaluate(
        "() => { const cell = window.LiveEditor.output.terminal.buffer.active.getLine(0).getCell(0);"
        " return [cell.isFgPalette(), cell.getFgColor()]; }"
    )
    assert colour == [True, 1], colour
    assert page.locator("#verdict").inner_text().startswith("Ended with exit code 1")

    # another tab saves first: this page's next save is stale
    status, theirs = call(
        server.url, "PATCH", f"/code-sessions/{session['session_id']}", {"source_code": 'print("theirs")\n', "version": session["version"]}
    )
    assert status == 200
    page.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+End")
    page.keyboard.type("# mine")
    page.wait_for_selector('#save-state[data-state="conflict"]')
    assert page.locator("#conflict").is_visible()
    page.locator("#conflict-reload").click()
    saved(page)
    assert editor_text(page).strip() == 'print("theirs")'
    assert page.errors == []


def test_the_tests_panel_shows_each_verdict_and_how_many_hidden_tests_passed(server, page):
    status, suite = call(server.url, "POST", "/test-suites", {"test_cases": [
        {"name": "adds", "stdin": "1 2", "expected_output": "3"},
        {"name": "negative", "stdin": "-1 -2", "expected_output": "-3"},
        {"name": "big", "stdin": "5 5", "expected_output": "10", "hidden": True},
        {"name": "zero", "stdin": "0 0", "expected_output": "1", "hidden": True},
    ]})
    assert status == 201, suite
    status, session = call(server.url, "POST", "/code-sessions", {"language": "python", "source_code": "a, b = map(int, input().split())\nprint(abs(a + b))\n"})
    page.goto(f"{server.url}/?session={session['session_id']}&suite={suite['test_suite_id']}")
    saved(page)
    page.locator("#tests-run").click()
    wait_for(page, "document.getElementById('tests-summary').textContent.includes('hidden tests passed')")
    assert page.locator("#tests-list li").count() == 4
    assert page.locator("#tests-summary").inner_text().startswith("2 of 4 passed")
    assert "1 of 2 hidden tests passed" in page.locator("#tests-summary").inner_text()
    verdicts = page.locator("#tests-list .test-verdict").evaluate_all("(nodes) => nodes.map((n) => n.dataset.verdict)")
    assert verdicts == ["PASSED", "WRONG_ANSWER", "PASSED", "WRONG_ANSWER"]
    # the visible failure shows its input and outputs; the hidden one shows nothing of its own
    failed = page.locator('#tests-list li[data-index="1"]')
    assert failed.locator("pre").count() == 3 and "expected '-3', got '3'" in failed.inner_text()
    assert page.locator('#tests-list li[data-index="3"] pre').count() == 0
    assert page.errors == []
