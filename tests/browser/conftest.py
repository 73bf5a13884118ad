"""Browser tests: the real pages in Debian's Chromium, driven by Playwright.

One live server (its own SQLite file with the demo company, whatever database the
rest of the suite uses) and one browser per session; a fresh context per test.
Every page a test opens is watched for console errors and Content-Security-Policy
violations; any that the test did not expect fail it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, SKIP_REASON, TABLET

# Generous waits: the suite may share two cores with other test runs (never a timing assertion).
WAIT_MS = 20_000

_FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")


@dataclass
class LiveServer:
    app: object
    url: str

    def db(self):
        """An app context for reaching into the server's database from a test."""
        return self.app.app_context()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    from werkzeug.serving import make_server

    from portal.demo import seed_demo
    from portal.extensions import db
    from portal.testing import make_app

    path = tmp_path_factory.mktemp("browser") / "browser.sqlite3"
    app = make_app(f"sqlite:///{path}")
    with app.app_context():
        db.create_all()
        seed_demo()
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             headless=True)
        sync_api.expect.set_options(timeout=WAIT_MS)
        yield browser
        browser.close()


@dataclass
class Watch:
    """Console errors, uncaught exceptions and CSP violations seen by a test's pages."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    allowed_statuses: set[int] = field(default_factory=set)

    def allow_status(self, *codes: int) -> None:
        """The test provokes these HTTP error statuses on purpose (a 404 page, a 401)."""
        self.allowed_statuses.update(codes)

    def unexpected(self) -> list[str]:
        def expected(message: str) -> bool:
            hit = _FAILED_LOAD.search(message)
            return bool(hit) and int(hit.group(1)) in self.allowed_statuses

        errors = [m for m in self.console_errors if not expected(m)]
        return errors + self.page_errors + [f"CSP: {v}" for v in self.csp_violations]


_CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective);
  window.__portalCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} `
                              + `at ${e.sourceFile || document.URL}:${e.lineNumber}`);
});
"""


def new_context(browser, live_server: LiveServer, watch: Watch, viewport=TABLET,
                storage_state=None):
    context = browser.new_context(viewport=viewport, base_url=live_server.url, locale="zh-CN",
                                  has_touch=True,
                                  storage_state=storage_state)
    context.set_default_timeout(WAIT_MS)
    context.expose_binding("__portalCspViolation",
                           lambda _source, text: watch.csp_violations.append(text))
    context.add_init_script(_CSP_LISTENER)

    def on_page(page):
        page.on("console", lambda msg: watch.console_errors.append(f"{page.url}: {msg.text}")
                if msg.type == "error" else None)
        page.on("pageerror", lambda exc: watch.page_errors.append(f"{page.url}: {exc}"))

    context.on("page", on_page)
    return context


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def context_factory(browser, live_server, watch) -> Iterator[object]:
    """``context_factory(viewport, storage_state)`` opens a fresh browser context."""
    contexts = []

    def factory(viewport=TABLET, storage_state=None):
        context = new_context(browser, live_server, watch, viewport, storage_state)
        contexts.append(context)
        return context

    yield factory
    for context in contexts:
        context.close()
    problems = watch.unexpected()
    assert not problems, "console errors or CSP violations:\n" + "\n".join(problems)


@pytest.fixture
def page(context_factory):
    """A page in a fresh 820×1180 tablet context."""
    return context_factory(TABLET).new_page()



@pytest.fixture(scope="session")
def _login_states(browser, live_server) -> dict:
    return {}


@pytest.fixture
def open_as(context_factory, _login_states, browser, live_server):
    """``open_as(username, viewport)``: a page in a fresh context, already logged in.

    Each user logs in through the form once per session; later contexts start from
    that login's cookies (argon2 makes every login cost a fraction of a second).
    Do not use it for a user whose sessions a test ends.
    """
    from tests.browser import login

    def opener(username: str, viewport=TABLET):
        if username not in _login_states:
            context = new_context(browser, live_server, Watch(), viewport)
            login(context.new_page(), username)
            _login_states[username] = context.storage_state()
            context.close()
        return context_factory(viewport, _login_states[username]).new_page()

    return opener
