"""End-to-end journeys through the real pages in Chromium (CORE-01, CORE-02 and the tablet UI).

Every test's pages are watched for console errors and CSP violations (see conftest):
a page that needed an inline script or style, or an htmx feature that needs eval,
fails the test that opened it.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from tests.browser import (
    ARTIFACTS,
    PHONE,
    SCREENSHOTS,
    SKIP_REASON,
    TABLET,
    TABLET_LANDSCAPE,
    login,
    wait_for_panels,
)

if SKIP_REASON:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = pytest.mark.browser

PUDONG = "能达速递上海浦东站"


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@pytest.mark.parametrize("viewport", [TABLET, TABLET_LANDSCAPE, PHONE],
                         ids=["820x1180", "1024x768", "390x844"])
def test_core_01_admin_dashboard_shows_demo_units_and_notices(context_factory, open_as, viewport):
    if viewport is TABLET:  # through the login form once; the other sizes reuse that login
        page = context_factory(viewport).new_page()
        login(page, "admin")
    else:
        page = open_as("admin", viewport)
        page.goto("/")
    assert urlsplit(page.url).path == "/"
    # the page arrives with placeholders; htmx fetches the panels after load
    assert page.locator(".panel-body[hx-trigger=load]").count() >= 2
    wait_for_panels(page)
    units = page.locator(".panel-body ul.tree")
    assert units.count() == 1, "the lazily loaded 'My units' panel did not arrive"
    names = units.locator("li strong").all_inner_texts()
    for name in ("演示集团", "能达速递华东区", PUDONG, "锦绣花园物业中心", "星光KTV会所"):
        assert name in names
    notices = page.locator(".panel-body").filter(has=page.locator('a[href^="/notices/"]'))
    assert notices.count() == 1, "the notices panel did not load"
    assert "客服规章已上线" in notices.inner_text()
    assert no_horizontal_scroll(page)
    if viewport is TABLET:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard-tablet.png"))


def test_core_01_wrong_password_shows_error_at_the_field_and_keeps_username(page, watch):
    page.goto("/login")
    page.fill("#username", "express.staff")
    page.fill("#password", "not-the-password")
    with page.expect_navigation() as nav:
        page.click("main form button[type=submit]")
    assert nav.value.status == 401
    watch.allow_status(401)
    error = page.locator("#password-error")
    assert error.is_visible() and error.inner_text().strip()
    assert page.get_attribute("#password", "aria-invalid") == "true"
    assert page.get_attribute("#password", "aria-describedby") == "password-error"
    # the message sits right under the password field, inside the same .field
    assert page.locator(".field:has(#password) #password-error").count() == 1
    assert page.input_value("#username") == "express.staff"
    assert page.input_value("#password") == ""
    assert "/login" in page.url


def test_notice_posted_then_read_with_an_htmx_swap(context_factory):
    title = f"早班交接注意事项 {uuid.uuid4().hex[:6]}"
    boss = context_factory().new_page()
    login(boss, "express.supervisor")
    boss.click('nav.site-nav a[href="/notices/"]')
    with boss.expect_navigation():
        boss.click('a[href="/notices/new"]')
    boss.fill("#title", title)
    boss.fill("#body", "交接班时请核对未结工单。\n超时工单须在交接本上登记。")
    with boss.expect_navigation():
        boss.click("main form button.btn-primary")
    assert boss.locator("h1").inner_text() == title
    assert boss.locator(".flash-success").is_visible()
    boss.goto("/notices/")
    assert boss.locator("#notice-list h2 a", has_text=title).is_visible()

    staff = context_factory().new_page()
    login(staff, "express.staff")
    staff.goto("/notices/")
    with staff.expect_navigation():
        staff.click(f"#notice-list h2 a:text-is('{title}')")
    assert staff.locator("h1").inner_text() == title
    staff.evaluate("window.__marker = 'set before the click'")
    url = staff.url
    staff.click("#notice-ack button[type=submit]")
    confirmed = staff.locator("#notice-ack .badge-on")
    confirmed.wait_for()
    assert staff.url == url
    assert staff.evaluate("window.__marker") == "set before the click", "the page was reloaded"
    assert staff.locator("#notice-ack button").count() == 0
    assert staff.locator("#notice-ack").count() == 1  # swapped, not nested
    screenshot(staff, "notice-read-tablet.png")
    staff.reload()
    assert staff.locator("#notice-ack .badge-on").is_visible()  # stored, not only shown


def test_core_02_plugin_toggle_in_place_and_switched_off_unit_gets_404(context_factory, open_as,
                                                                          watch):
    page = open_as("admin")
    page.goto("/")
    with page.expect_navigation():
        page.click('nav.site-nav a[href="/admin/units"]')
    with page.expect_navigation():
        page.click("tr:has(code:text-is('ktv')) a[href$='/plugins']")
    row = page.locator("#plugin-notices")
    toggle = row.locator("button.toggle")
    assert row.locator(".badge-off").is_visible()
    assert toggle.get_attribute("aria-pressed") == "false"
    page.evaluate("window.__marker = 42")
    url = page.url

    toggle.click()
    page.locator("#plugin-notices button.toggle[aria-pressed=true]").wait_for()
    assert row.locator(".badge-on").is_visible()
    assert page.locator("#plugin-notices").count() == 1
    assert page.url == url and page.evaluate("window.__marker") == 42
    screenshot(page, "plugins-ktv-tablet.png")

    toggle.click()
    page.locator("#plugin-notices button.toggle[aria-pressed=false]").wait_for()
    assert row.locator(".badge-off").is_visible()
    assert page.evaluate("window.__marker") == 42

    manager = context_factory().new_page()
    login(manager, "ktv.manager")
    assert manager.locator('nav.site-nav a[href="/"]').count() == 1  # the nav is there ...
    assert manager.locator('nav.site-nav a[href="/notices/"]').count() == 0  # ... without Notices
    watch.allow_status(404)
    response = manager.goto("/notices/")
    assert response.status == 404
    assert manager.locator(".error-code").inner_text() == "404"
    assert manager.locator('nav.site-nav a[href="/notices/"]').count() == 0


def test_core_01_unit_switcher_changes_the_dashboard(open_as):
    page = open_as("admin")
    page.goto("/")
    assert page.locator("main h1").inner_text() == "演示集团"
    value = page.eval_on_selector(
        "#unit-switch",
        "(s, name) => [...s.options].find(o => o.textContent.trim() === name).value", PUDONG)
    page.select_option("#unit-switch", value)
    with page.expect_navigation():
        page.click(".unit-switcher button[type=submit]")
    assert page.locator("main h1").inner_text() == PUDONG
    assert page.locator(".flash").inner_text().find(PUDONG) >= 0
    selected = page.eval_on_selector("#unit-switch", "s => s.selectedOptions[0].textContent")
    assert selected.strip() == PUDONG
    wait_for_panels(page)
    screenshot(page, "dashboard-switched-tablet.png")


def test_language_switch_to_english_and_back(page):
    login(page, "duty.staff")
    assert page.get_attribute("html", "lang") == "zh-Hans"
    with page.expect_navigation():
        page.click(".lang-switch button[value=en]")
    assert page.get_attribute("html", "lang") == "en"
    assert page.get_attribute(".lang-switch button[value=en]", "aria-pressed") == "true"
    assert page.url.endswith("/")  # back on the page it was switched from
    page.goto("/notices/")
    assert page.get_attribute("html", "lang") == "en"  # kept for the next pages
    with page.expect_navigation():
        page.click(".lang-switch button[value=zh_Hans]")
    assert page.get_attribute("html", "lang") == "zh-Hans"
    assert page.url.endswith("/notices/")
    assert page.get_attribute(".lang-switch button[value=zh_Hans]", "aria-pressed") == "true"


def test_core_01_expired_session_htmx_request_goes_to_the_login_page(context_factory, live_server,
                                                                       watch):
    from portal.auth.models import User, UserSession
    from portal.db_types import utcnow
    from portal.extensions import db

    page = context_factory().new_page()
    login(page, "store.staff")
    page.goto("/notices/")
    filter_link = page.locator("main .toolbar a[hx-get]")
    assert filter_link.count() == 1
    with live_server.db():
        user_id = db.session.scalar(select(User.id).where(User.username == "store.staff"))
        db.session.execute(update(UserSession).where(
            UserSession.user_id == user_id, UserSession.ended_at.is_(None),
        ).values(ended_at=utcnow(), end_reason="test"))
        db.session.commit()
        db.session.remove()
    watch.allow_status(401)
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true") as htmx_call:
        filter_link.click()
    assert htmx_call.value.status == 401
    page.wait_for_url("**/login**")
    page.wait_for_load_state()
    assert page.locator("#username").count() == 1
    assert page.locator("header.site-header").count() == 1  # a whole page, nothing swapped in
    assert page.locator("#notice-list").count() == 0
    assert "next=" in page.url


def test_csp_watch_catches_an_inline_script(context_factory, watch):
    """The CSP watch the other tests rely on does see a violation (it can fail)."""
    page = context_factory().new_page()
    page.goto("/login")
    # htmx runs without eval(), which the CSP (no 'unsafe-eval') would refuse anyway
    version, allow_eval = page.evaluate("() => [htmx.version, htmx.config.allowEval]")
    assert version.startswith("2.0.") and allow_eval is False
    page.evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'window.__inlineRan = true';
        document.body.append(s);
    }""")
    page.wait_for_function("() => window.__cspViolations.length > 0")  # dispatched asynchronously
    assert page.evaluate("window.__inlineRan") is None
    assert any("script-src" in v for v in watch.csp_violations), watch.csp_violations
    watch.csp_violations.clear()
    watch.console_errors.clear()  # Chromium also logs the refusal to the console
