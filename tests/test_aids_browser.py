"""The editor's learner aids in headless Chromium against a real gunicorn: squiggles and problems, history and restore."""
from __future__ import annotations

from support.browser import OUTPUT, browser, editor_text, page, saved, server, sync_api  # noqa: F401 (fixtures)
from support.http import call
from support.servers import Server


def open_session(server: Server, page, source: str) -> dict:
    status, session = call(server.url, "POST", "/code-sessions", {"language": "python", "source_code": source})
    assert status == 201
    page.goto(f"{server.url}/?session={session['session_id']}")
    saved(page)
    return session


def test_a_python_error_gets_a_squiggle_and_a_problem_that_clear_when_fixed(server, page):
    # the emoji before the error: the squiggle lands on the name only if columns are UTF-16 units
    open_session(server, page, 'print("😀😀", undefined_name)\n')
    try:
        squiggle = page.wait_for_selector(".cm-lintRange-error")
    except sync_api.TimeoutError:
        raise AssertionError(f"no squiggle; the checker said {page.locator('#lint-state').get_attribute('data-status')!r}") from None
    assert squiggle.text_content() == "undefined_name"
    problem = page.wait_for_selector('#problems li[data-severity="error"]')
    assert "undefined_name" in problem.text_content() and "1:" in problem.text_content()
    assert page.locator("#problems-count").inner_text() == "1"
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "aids-problems.png"))

    page.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type('print("fixed")')
    page.wait_for_function("document.getElementById('problems-count').textContent === '0'")
    assert page.locator(".cm-lintRange-error").count() == 0
    assert page.errors == []


def test_the_history_panel_shows_a_diff_and_restores_a_revision(server, page):
    session = open_session(server, page, 'print("first")\n')
    status, _ = call(
        server.url,
        "PATCH",
        f"/code-sessions/{session['session_id']}",
        {"source_code": 'print("second")\n', "version": 1, "reason": "paste"},
    )
    assert status == 200
    page.reload()
    saved(page)
    assert editor_text(page).strip() == 'print("second")'

    page.locator("#history-toggle").click()
    page.wait_for_selector('#revisions li[data-revision="2"][data-reason="paste"]')
    page.locator('#revisions li[data-revision="1"] button').click()
    page.wait_for_selector("#revision-diff .removed")
    assert page.locator("#revision-diff .removed").inner_text().strip() == '- print("first")'
    assert page.locator("#revision-diff .added").first.inner_text().strip() == '+ print("second")'
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "aids-history.png"))

    page.locator("#restore").click()
    page.wait_for_function("document.querySelector('.cm-content').innerText.trim() === 'print(\"first\")'")
    saved(page)
    status, stored = call(server.url, "GET", f"/code-sessions/{session['session_id']}")
    assert stored["source_code"] == 'print("first")\n' and stored["version"] == 3
    page.wait_for_selector('#revisions li[data-revision="3"][data-reason="restore"]')
    status, revisions = call(server.url, "GET", f"/code-sessions/{session['session_id']}/revisions")
    assert [r["reason"] for r in revisions] == ["restore", "paste", "create"]
    assert page.errors == []
