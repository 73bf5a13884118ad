"""Issue 24 in Chromium: every POST form carries a one-time submission key, a double tap on a
plain form's button sends one inquiry, and an htmx form disables its button while in flight."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.browser import SKIP_REASON, TABLET

if SKIP_REASON:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = pytest.mark.browser

WAYBILL = "600555000222"


def test_every_post_form_gets_a_one_time_submission_key(open_as):
    page = open_as("express.staff", TABLET)
    page.goto("/express/new")
    keys = page.eval_on_selector_all(
        "form[method=post]", "forms => forms.map(f => (f.querySelector('input[name=_submission]') || {}).value)")
    assert keys and all(key and len(key) >= 16 for key in keys)
    assert len(set(keys)) == len(keys)  # one key per form


def test_an_htmx_form_disables_its_button_while_its_request_is_in_flight(open_as):
    page = open_as("auditor", TABLET)
    page.goto("/audit/")
    form = page.locator("form[hx-post]").first
    assert form.get_attribute("hx-disabled-elt") == "find button"
    assert form.locator("input[name=_submission]").get_attribute("value")


def test_exp_r01_a_double_tap_on_record_the_inquiry_opens_one_inquiry(open_as, live_server):
    from playwright.sync_api import expect

    from plugins.express.models import Inquiry
    from portal.extensions import db

    page = open_as("express.staff", TABLET)
    page.goto("/express/new")
    page.fill('input[name="waybill"]', WAYBILL)
    page.fill('input[name="inquirer_name"]', "黄女士")
    page.fill('input[name="inquirer_phone"]', "13900001234")
    with page.expect_navigation():
        # two submissions of the same rendered form, as fast as a double tap
        page.eval_on_selector("main form[method=post]", "f => { f.requestSubmit(); f.requestSubmit(); }")
    expect(page.locator("h1")).to_contain_text(WAYBILL)
    with live_server.db():
        count = db.session.scalar(select(func.count()).select_from(Inquiry).where(Inquiry.waybill == WAYBILL))
    assert count == 1
