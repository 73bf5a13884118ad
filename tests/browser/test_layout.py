"""Tablet-first layout, touch targets, labels and keyboard use on the real pages.

Each page is checked at 820×1180 and 1024×768 (tablets) and 390×844 (a phone):
no horizontal scrolling, every control at least 44 px high, a label on every
field.  Screenshots go to test-artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from portal.testing import PASSWORD
from tests.browser import (
    ARTIFACTS,
    PHONE,
    SKIP_REASON,
    TABLET,
    TABLET_LANDSCAPE,
    wait_for_panels,
)

if SKIP_REASON:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = pytest.mark.browser

VIEWPORTS = {"820x1180": TABLET, "1024x768": TABLET_LANDSCAPE, "390x844": PHONE}
PAGES = {
    "login": None,
    "dashboard": "/",
    "notices": "/notices/",
    "users": "/admin/users",
    "user-detail": "/admin/users/{express_staff}",
    "settings": "/admin/settings",
    "units": "/admin/units",
    "logins": "/admin/logins",
}

# Problems on the page as a list of strings (empty = fine).
LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth) {
    // what sticks out: outside a scrolling .table-wrap, or positioned out of it
    const wide = [...document.body.querySelectorAll('*')]
      .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
      .filter(e => !e.closest('.table-wrap') || ['absolute', 'fixed'].includes(getComputedStyle(e).position))
      .slice(0, 3).map(e => e.outerHTML.slice(0, 100));
    problems.push(`horizontal scroll: ${root.scrollWidth}px > ${window.innerWidth}px; ${wide}`);
  }
  const shown = (e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden';
  };
  const hiddenOnPurpose = (e) => e.closest('.visually-hidden, .skip-link');
  const describe = (e) => e.outerHTML.slice(0, 120);
  for (const e of document.querySelectorAll(
      'button, a.btn, input:not([type=hidden]), select, textarea, summary, .site-nav a')) {
    if (!shown(e) || hiddenOnPurpose(e)) continue;
    // a checkbox is small; its label is the touch target
    const target = e.matches('[type=checkbox], [type=radio]') ? (e.closest('label') || e.labels[0]) : e;
    const height = target ? target.getBoundingClientRect().height : 0;
    if (height < 44) problems.push(`touch target ${height.toFixed(1)}px high: ${describe(e)}`);
  }
  for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const named = (e.labels && [...e.labels].some(l => l.textContent.trim()))
      || (e.getAttribute('aria-label') || '').trim() || e.getAttribute('aria-labelledby');
    if (!named) problems.push(`no label: ${describe(e)}`);
  }
  return problems;
}"""


@pytest.fixture(scope="module")
def express_staff_id(live_server) -> int:
    from portal.auth.models import User
    from portal.extensions import db

    with live_server.db():
        user_id = db.session.scalar(select(User.id).where(User.username == "express.staff"))
        db.session.remove()
    return user_id


@pytest.fixture(scope="module")
def failed_logins(live_server) -> None:
    """Failures to list at /admin/logins: a few for a demo user (below any delay, so the other
    browser tests log in as usual) and a delayed address that tried names of no account."""
    from datetime import timedelta

    from portal.auth.models import LoginAttempt
    from portal.db_types import utcnow
    from portal.extensions import db

    now = utcnow()
    rows = [("express.staff", "203.0.113.9")] * 3 + [("express.staff", "2001:db8::7")]
    rows += [(f"ghost{n}", "198.51.100.7") for n in range(35)]
    with live_server.db():
        db.session.add_all(LoginAttempt(username=name, remote_addr=address, success=False,
                                        at=now - timedelta(seconds=len(rows) - n))
                           for n, (name, address) in enumerate(rows))
        db.session.commit()
        db.session.remove()


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("size", VIEWPORTS)
def test_layout_fits_with_large_targets_and_labelled_fields(open_as, context_factory, name, size,
                                                            express_staff_id, failed_logins):
    viewport = VIEWPORTS[size]
    if PAGES[name] is None:
        page = context_factory(viewport).new_page()
        page.goto("/login")
    else:
        page = open_as("admin", viewport)
        response = page.goto(PAGES[name].format(express_staff=express_staff_id))
        assert response.status == 200
    if name == "dashboard":
        wait_for_panels(page)
        assert page.locator(".panel-body .tree li").count() >= 7
    if name == "users":
        assert page.locator("#user-rows tbody tr").count() >= 9
    if name == "logins":
        assert page.locator("#login-failures .badge-warn").count() >= 1
        assert page.locator("#login-failures tbody tr").count() >= 2
    if viewport is TABLET:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"layout-{name}-{size}.png"), full_page=True)
    problems = page.evaluate(LAYOUT_PROBLEMS)
    assert not problems, f"{name} at {size}:\n" + "\n".join(problems)


def test_layout_check_finds_a_small_button_a_missing_label_and_overflow(context_factory):
    """The checks above can fail: break a page on purpose and they say so."""
    page = context_factory(TABLET).new_page()
    page.goto("/login")
    page.evaluate("""() => {
        const b = document.createElement('button'); b.textContent = 'tiny';
        b.className = 'tiny-test-button'; document.querySelector('main').append(b);
        b.style.minHeight = '0'; b.style.height = '20px';  // CSSOM: allowed by the CSP
        const i = document.createElement('input'); i.name = 'unlabelled';
        document.querySelector('main').append(i);
        const w = document.createElement('div'); w.textContent = 'wide';
        w.style.width = '2000px'; document.querySelector('main').append(w);
    }""")
    problems = "\n".join(page.evaluate(LAYOUT_PROBLEMS))
    assert "horizontal scroll" in problems
    assert "touch target 20.0px" in problems and "tiny-test-button" in problems
    assert "no label" in problems and "unlabelled" in problems


def test_keyboard_skip_link_first_and_login_without_a_mouse(context_factory):
    page = context_factory(TABLET).new_page()
    page.goto("/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('skip-link')")
    assert page.evaluate("document.activeElement.getBoundingClientRect().top >= 0")  # shown
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "username"
    page.keyboard.type("express.manager")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert urlsplit(page.url).path == "/"  # the dashboard
    assert page.locator("header .user-menu summary").count() == 1
    # the user menu opens from the keyboard too
    page.focus("header .user-menu summary")
    page.keyboard.press("Enter")
    assert page.locator("header .user-menu").get_attribute("open") is not None
