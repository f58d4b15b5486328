"""The console in a real browser: Debian's chromium driven by Playwright, against the real app
over HTTP, Redis, worker processes and the sandbox. Screenshots go to ``var/screenshots/``."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from werkzeug.serving import make_server

from tests.conftest import ROOT, app_for

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "var" / "screenshots"
AXE = Path(__import__("axe_playwright_python").__file__).with_name("axe.min.js")
WIDTHS = (375, 1280)
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser tests need {CHROMIUM}: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )
        yield browser
        browser.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Site:
    """The app served over HTTP at ``url`` (which is its ``PUBLIC_URL``), and its settings."""

    url: str
    app: object
    env: dict[str, str]

    @property
    def runtime(self):
        return self.app.extensions["vats"]

    def user(self, email: str, role: str = "admin", account: str | None = None) -> str:
        self.runtime.users.create(email, role, account, PASSWORD, "test")
        return email


@pytest.fixture
def site(service_env, tmp_path, redis_conn) -> Iterator[Site]:
    port = free_port()
    env = service_env | {
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RECORDINGS_DIR": str(tmp_path / "recordings"),
        "RECORDING_LINK_KEYS": "browser-test-recording-link-key-0123456789",
    }
    with app_for(env) as app:
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield Site(f"http://127.0.0.1:{port}", app, env)
        finally:
            server.shutdown()
            server.server_close()


@dataclass
class Watched:
    """A page whose JavaScript errors (uncaught, or logged as errors) are collected."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def goto(self, url: str):
        return self.page.goto(url)


@pytest.fixture
def page(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context.new_page())
    watched.page.on("pageerror", lambda error: watched.errors.append(str(error)))

    def on_console(message: ConsoleMessage) -> None:
        # A refused page's status (the 404 a test asks for) is logged by the browser; scripts' errors are not that.
        if message.type == "error" and "the server responded with a status of 4" not in message.text:
            watched.errors.append(message.text)

    watched.page.on("console", on_console)
    try:
        yield watched
    finally:
        context.close()
    assert watched.errors == [], "JavaScript errors on the console's pages"


def sign_in(page: Page, url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(url + "/console/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is."""
    page.evaluate(AXE.read_text())  # through the DevTools protocol: the page's own CSP stays in force
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def screenshot(page: Page, name: str) -> None:
    """The page at both widths, full length, into var/screenshots/ (not committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    with contextlib.suppress(TypeError):
        page.set_viewport_size(size)
