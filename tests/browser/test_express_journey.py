"""The express inquiry ladder in Chromium on a tablet (EXP-R01..R10): the demo's station agent
takes an inquiry and asks the destination station; that station records its checks and
passes it to the sorting center; the center replies "found"; the agent answers the
customer and closes — and each step starts or stops its clock."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.browser import SCREENSHOTS, SKIP_REASON, TABLET

if SKIP_REASON:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = pytest.mark.browser

WAYBILL = "600555000111"


def submit(page, action_suffix: str) -> None:
    with page.expect_navigation():
        page.locator(f'form[action$="{action_suffix}"] button[type=submit]').click()


def unit_id(live_server, code: str) -> str:
    from portal.extensions import db
    from portal.units.models import Unit

    with live_server.db():
        return str(db.session.scalar(select(Unit.id).where(Unit.code == code)))


def hop_ids(live_server) -> list[int]:
    from plugins.express.models import Hop, Inquiry
    from portal.extensions import db

    with live_server.db():
        return list(db.session.scalars(select(Hop.id).join(Inquiry).where(Inquiry.waybill == WAYBILL)
                                       .order_by(Hop.id)))


def test_exp_journey_station_to_center_and_back_to_the_customer(open_as, live_server):
    from playwright.sync_api import expect

    from plugins.express.models import Hop, Inquiry
    from portal.extensions import db
    from portal.sla.models import Deadline

    # L1: the station agent takes the call (EXP-R01); the customer's 30 minutes start
    l1 = open_as("express.staff", TABLET)
    l1.goto("/express/new")
    l1.fill('input[name="waybill"]', WAYBILL)
    l1.fill('input[name="inquirer_name"]', "黄女士")
    l1.fill('input[name="inquirer_org"]', "浦东某公司")
    l1.fill('input[name="inquirer_phone"]', "13900001234")
    with l1.expect_navigation():
        l1.locator("main form button[type=submit]").click()
    expect(l1.locator("h1")).to_contain_text(WAYBILL)
    expect(l1.locator("#clocks .clock-ok")).to_have_count(1)
    inquiry_url = l1.url
    # not signed for: ask the destination station (EXP-R03); only stations are offered
    l1.select_option('select[name="forward-target"]', unit_id(live_server, "express-sh-minhang"))
    submit(l1, "/forward")
    expect(l1.locator("article.hop")).to_have_count(1)

    # L2: the destination station sees it waiting, takes it, records data and checks in order
    l2 = open_as("express.l2", TABLET)
    l2.goto("/express/")
    expect(l2.locator("#inbox-lists")).to_contain_text(WAYBILL)
    l2.goto(inquiry_url)
    (hop,) = hop_ids(live_server)
    submit(l2, f"/hops/{hop}/take")
    l2.locator(f"#hop-{hop} details summary").first.click()
    for name, value in (("send_time", "2026-11-30 16:00"), ("appearance", "黄色纸箱"), ("packaging", "纸箱"),
                        ("pieces", "1"), ("weight", "2.4"), ("destination", "上海闵行区")):
        l2.fill(f'input[name="facts{hop}-{name}"]', value)
    submit(l2, f"/hops/{hop}/facts")
    for step in ("record", "arrived", "shelves", "courier", "signatures"):
        l2.select_option(f'select[name="check{hop}-step"]', step)
        l2.fill(f'textarea[name="check{hop}-result"]', f"{step}：未见此件")
        submit(l2, f"/hops/{hop}/check")
    expect(l2.locator(f"#hop-{hop} ol.checks li")).to_have_count(5)
    # not found: pass it up to the sorting center's CS (EXP-R06) — that answers L1 too (EXP-R05)
    l2.select_option(f'select[name="forward{hop}-target"]', unit_id(live_server, "express-east-center"))
    l2.fill(f'textarea[name="forward{hop}-message"]', "站点未查到，请中心协查")
    submit(l2, f"/hops/{hop}/forward")
    expect(l2.locator("article.hop")).to_have_count(2)

    # L3: the center replies "found" (EXP-R07)
    l3 = open_as("express.center", TABLET)
    l3.goto(inquiry_url)
    _, center_hop = hop_ids(live_server)
    l3.check(f'input[name="reply{center_hop}-outcome"][value="found"]')
    l3.fill(f'textarea[name="reply{center_hop}-text"]', "在中心无名件区找到，今日发往闵行站")
    submit(l3, f"/hops/{center_hop}/reply")
    expect(l3.locator(f"#hop-{center_hop}")).to_contain_text("今日发往闵行站")

    # L1: the reply has reached the station, which answers the customer and closes (EXP-R09)
    l1.goto(inquiry_url)
    expect(l1.locator("#intake-h + dl")).to_contain_text("今日发往闵行站")
    l1.check('input[name="customer-kind"][value="result"]')
    l1.fill('textarea[name="customer-text"]', "快件已找到，今天下午送达")
    l1.screenshot(path=str(SCREENSHOTS / "express-inquiry-tablet.png"), full_page=True)
    submit(l1, "/customer")
    expect(l1.locator("#customer")).to_have_count(0)  # closed: nothing more to tell
    expect(l1.locator("#clocks")).not_to_have_attribute("hx-trigger", "every 30s")

    with live_server.db():
        inquiry = db.session.scalar(select(Inquiry).where(Inquiry.waybill == WAYBILL))
        assert inquiry.status == "closed" and inquiry.result == "found"
        clocks = {d.policy_id + (f":{d.object_id}" if d.object_type == "express_hops" else ""): d
                  for d in db.session.scalars(select(Deadline).where(
                      ((Deadline.object_type == "express_inquiries") & (Deadline.object_id == str(inquiry.id)))
                      | ((Deadline.object_type == "express_hops")
                         & Deadline.object_id.in_([str(h) for h in hop_ids(live_server)]))))}
        assert clocks["express.customer"].status == "met"
        hops = {h.id: h for h in db.session.scalars(select(Hop).where(Hop.inquiry_id == inquiry.id))}
        assert clocks[f"express.hop_reply:{hop}"].status == "met"  # L2 answered by passing it up
        assert clocks[f"express.hop_reply:{hop}"].met_owner_id == hops[hop].holder_id  # the taker's clock
        assert clocks[f"express.hop_reply:{center_hop}"].status == "met"
        assert hops[center_hop].outcome == "found"
