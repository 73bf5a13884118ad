"""A customer complaint in Chromium on a tablet (EXP-P04, EXP-P05): the region's manager records a
complaint about the attitude of a Pudong station agent; the company auditor, switched to the
region, verifies it, which drafts the 200-yuan EXP-P04 penalty, and publishes that draft; the
publication opens the station manager's response to 质控部, who reports staff educated, apology,
handling and measures before the deadline."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from tests.browser import SCREENSHOTS, SKIP_REASON, TABLET

if SKIP_REASON:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = pytest.mark.browser


def submit(page, action_suffix: str) -> None:
    with page.expect_navigation():
        page.locator(f'form[action$="{action_suffix}"] button[type=submit]').click()


def unit_id(live_server, code: str) -> str:
    from portal.extensions import db
    from portal.units.models import Unit

    with live_server.db():
        return str(db.session.scalar(select(Unit.id).where(Unit.code == code)))


def user_id(live_server, username: str) -> str:
    from portal.auth.models import User
    from portal.extensions import db

    with live_server.db():
        return str(db.session.scalar(select(User.id).where(User.username == username)))


def test_exp_p04_p05_complaint_verified_published_and_answered(open_as, live_server):
    from playwright.sync_api import expect

    from plugins.express.models import Complaint, QualityResponse
    from portal.extensions import db
    from portal.penalties.models import PenaltyNotice
    from portal.sla.models import Deadline

    marker = uuid.uuid4().hex
    description = f"客户投诉浦东站客服态度恶劣，电话中不耐烦 [{marker}]"
    staff_id = user_id(live_server, "express.staff")
    station_manager_id = user_id(live_server, "express.station.manager")

    # 1. the region's manager records the complaint about the Pudong agent (EXP-P04)
    manager = open_as("express.manager", TABLET)
    manager.goto("/express/complaints/new")
    form = manager.locator('main form[action$="/express/complaints/new"]')
    form.locator('select[name="kind"]').select_option("attitude_staff")
    form.locator('select[name="unit_id"]').select_option(unit_id(live_server, "express-sh"))
    person = form.locator('select[name="person_id"]')
    # htmx replaces the person field with the station's people only: wait for that first
    expect(person.locator(f'option[value="{user_id(live_server, "express.l2")}"]')).to_have_count(0)
    expect(person.locator(f'option[value="{staff_id}"]')).to_have_count(1)
    person.select_option(staff_id)
    expect(form.locator('input[name="received_at"]')).not_to_have_value("")  # today, prefilled
    form.locator('textarea[name="description"]').fill(description)
    with manager.expect_navigation():
        form.locator("button[type=submit]").click()
    with live_server.db():
        complaint = db.session.scalar(select(Complaint).where(Complaint.description == description))
        assert complaint is not None and complaint.status == "open"
        complaint_id = complaint.id
        assert str(complaint.person_id) == staff_id and complaint.kind == "attitude_staff"
    complaint_url = f"/express/complaints/{complaint_id}"
    assert manager.url.endswith(complaint_url)
    expect(manager.locator("#complaint-body")).to_contain_text(marker)
    expect(manager.locator("#verify")).to_have_count(0)  # the recorder does not verify it

    # 2. the company auditor switches to the region, verifies and publishes the draft
    auditor = open_as("auditor", TABLET)
    auditor.goto("/")
    auditor.select_option("#unit-switch", unit_id(live_server, "express-east"))
    with auditor.expect_navigation():
        auditor.locator("form.unit-switcher button[type=submit]").click()
    expect(auditor.locator("#unit-switch")).to_have_value(unit_id(live_server, "express-east"))
    auditor.goto(complaint_url)
    verify = auditor.locator(f'form[action$="/complaints/{complaint_id}/verify"]')
    verify.locator('input[name="outcome"][value="verified"]').check()
    verify.locator('textarea[name="finding"]').fill(f"调取通话录音，态度问题属实 [{marker}]")
    submit(auditor, f"/complaints/{complaint_id}/verify")
    assert auditor.url.endswith(complaint_url)
    expect(auditor.locator("#verify")).to_have_count(0)
    penalty = auditor.locator("#penalty")
    expect(penalty).to_contain_text("EXP-P04")
    expect(penalty).to_contain_text("200")
    with live_server.db():
        notice = db.session.scalar(select(PenaltyNotice).where(
            PenaltyNotice.rule_id == "EXP-P04", PenaltyNotice.evidence.contains(marker)))
        assert notice is not None and notice.status == "draft"
        assert str(notice.user_id) == staff_id and notice.amount == 200
        notice_id = notice.id
    auditor.screenshot(path=str(SCREENSHOTS / "express-complaint-tablet.png"), full_page=True)

    with auditor.expect_navigation():
        penalty.locator(f'a[href$="/penalties/{notice_id}"]').click()
    publish = auditor.locator(f'form[action$="/penalties/{notice_id}/publish"]')
    expect(publish.locator('input[name="amount"]')).to_have_value(re.compile(r"^200(\.0+)?$"))
    submit(auditor, f"/penalties/{notice_id}/publish")
    assert auditor.url.endswith(f"/penalties/{notice_id}")
    expect(auditor.locator(f'form[action$="/penalties/{notice_id}/publish"]')).to_have_count(0)
    # the complaint page now links the station manager's response (EXP-P05), still waiting
    auditor.goto(complaint_url)
    expect(auditor.locator('#penalty a[href*="/express/responses/"]')).to_have_count(1)

    with live_server.db():
        response = db.session.scalar(select(QualityResponse).where(QualityResponse.notice_id == notice_id))
        assert response is not None and response.responded_at is None
        response_id = response.id
        assert response.deadline is not None and response.deadline.status == "open"
        assert response.deadline.policy_id == "express.p05_response"

    # 3. the station manager sees the open response, and reports to 质控部 (EXP-P05)
    station = open_as("express.station.manager", TABLET)
    station.goto("/express/responses")
    link = station.locator(f'#response-list a[href$="/express/responses/{response_id}"]')
    expect(link).to_have_count(1)
    with station.expect_navigation():
        link.click()
    respond = station.locator(f'form[action$="/responses/{response_id}/respond"]')
    respond.locator('input[name="educated"]').check()
    respond.locator('input[name="apologised"]').check()
    respond.locator('textarea[name="handling"]').fill(f"站点经理当面向客户致歉，并已对张丽进行教育 [{marker}]")
    respond.locator('textarea[name="measures"]').fill("全站开展服务态度培训，每周抽查通话录音")
    submit(station, f"/responses/{response_id}/respond")
    assert station.url.endswith(f"/express/responses/{response_id}")
    # "answered", and the clock stopped in time (a green badge, no longer counting down)
    expect(station.locator("#response-state .badge-on")).to_have_count(2)
    expect(station.locator("#response-state .badge-warn, #response-state .badge-off, "
                           "#response-state .clock")).to_have_count(0)
    expect(station.locator(f'form[action$="/responses/{response_id}/respond"]')).to_have_count(0)
    expect(station.locator("#answer-h + dl")).to_contain_text(marker)
    station.goto("/express/responses")
    expect(station.locator(f'#response-list a[href$="/express/responses/{response_id}"]')).to_have_count(0)

    # 4. in the database: verified, published 200 yuan, responded, the clock met
    with live_server.db():
        complaint = db.session.get(Complaint, complaint_id)
        assert complaint.status == "verified" and complaint.verified_at is not None
        notice = db.session.get(PenaltyNotice, notice_id)
        assert notice.status == "published" and notice.rule_id == "EXP-P04"
        assert str(notice.user_id) == staff_id and notice.amount == 200
        response = db.session.get(QualityResponse, response_id)
        assert response.responded_at is not None and response.educated and response.apologised
        assert str(response.responded_by_id) == station_manager_id
        deadline = db.session.scalar(select(Deadline).where(
            Deadline.object_type == "express_quality_responses", Deadline.object_id == str(response_id)))
        assert deadline is not None and deadline.policy_id == "express.p05_response"
        assert deadline.status == "met"
