"""Browser tests: the real pages in Debian's Chromium, driven by Playwright.

Constants and small helpers shared by the browser test modules (fixtures are in
``conftest.py``).  ``SKIP_REASON`` is set when the browser tests cannot run here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"  # committed, shown in the README
ARTIFACTS = ROOT / "test-artifacts"  # gitignored

TABLET = {"width": 820, "height": 1180}
TABLET_LANDSCAPE = {"width": 1024, "height": 768}
PHONE = {"width": 390, "height": 844}

if not CHROMIUM.exists():
    SKIP_REASON = ("browser tests need Debian's Chromium at /usr/bin/chromium "
                   "(apt-get install -y chromium)")
elif importlib.util.find_spec("playwright") is None:
    SKIP_REASON = "browser tests need the playwright package (pip install -e '.[test]')"
else:
    SKIP_REASON = None


def login(page, username: str, password: str | None = None) -> None:
    """Log in through the form like a person; lands on the dashboard."""
    from portal.testing import PASSWORD

    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password or PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")


def wait_for_panels(page) -> None:
    """Wait until every lazily loaded dashboard panel has been swapped in by htmx."""
    from playwright.sync_api import expect

    expect(page.locator(".panel-loading, .htmx-request")).to_have_count(0)


# Waiting on a JavaScript condition: pass a function ("() => ..."), never a bare
# expression, which Playwright evaluates with eval() and the page's CSP refuses.
