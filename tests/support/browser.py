"""Headless Chromium against a real gunicorn: the fixtures and helpers of the browser tests."""
from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from support.servers import ROOT, Server, gunicorn

CHROMIUM = "/usr/bin/chromium"
# as root, on a machine with no network: no sandbox, no GPU, no background fetches
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = ROOT / "test-output"
STEP_MS = 30_000
RUN_MS = 60_000

try:
    from playwright import sync_api
except ImportError:  # make install brings it; the page tests below run without it
    sync_api = None


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    with gunicorn(tmp_path_factory.mktemp("editor-server")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if sync_api is None or shutil.which(CHROMIUM) is None:
        pytest.skip(f"needs playwright and {CHROMIUM} (make install)")
    with sync_api.sync_playwright() as playwright:
        # playwright gives every launch a fresh, temporary user-data-dir
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(STEP_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def saved(page) -> None:
    """Wait until the page says its code is stored."""
    page.wait_for_selector('#save-state[data-state="saved"]')


def wait_for(page, condition: str) -> None:
    """Wait for a JavaScript condition up to RUN_MS; a timeout says what the page showed."""
    try:
        page.wait_for_function(condition, timeout=RUN_MS)
    except sync_api.TimeoutError:
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "editor-timeout.png"))
        shown = page.evaluate(
            "() => ['status', 'verdict', 'error', 'save-state', 'history'].map((id) => id + ': ' + document.getElementById(id).textContent)"
            " .concat(['output: ' + (window.LiveEditor && window.LiveEditor.output.text())])"
        )
        raise AssertionError(f"timed out waiting for {condition}; the page showed {shown}") from None


def editor_text(page) -> str:
    return page.locator(".cm-content").inner_text()


def output_text(page) -> str:
    """What the output terminal shows (its buffer's lines, wrapped ones joined)."""
    return page.evaluate("() => window.LiveEditor.output.text()")


def finished(page) -> None:
    """Wait until the run has ended and its output is drawn."""
    wait_for(page, "!['', 'QUEUED', 'RUNNING'].includes(document.getElementById('status').dataset.status) && window.LiveEditor.output.settled && !window.LiveEditor.running")
