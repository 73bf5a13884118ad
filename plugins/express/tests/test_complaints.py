"""Complaints verified by inspection become penalty drafts (EXP-P02..P04-M, P06, P07, R15), and a
published 质控部 notice opens the station manager's response with its clock (EXP-P05).

Everything is done through the pages, as the people would: east_mgr (manager of the east
region) records, the auditor ada verifies, the auditor aldo publishes in the core ledger;
pete, the Pudong station manager, answers 质控部.  Received times are relative to now (a
complaint cannot be received in the future); the P05 clock is swept at explicit instants.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from plugins.express.models import Complaint, QualityResponse
from portal.audit import AuditEntry
from portal.db_types import utcnow
from portal.extensions import db
from portal.penalties import rules as R
from portal.penalties import service as penalties
from portal.penalties.models import InboxMessage, PenaltyNotice
from portal.penalties.rules import PenaltyRuleError
from portal.settings import models as settings
from portal.sla.models import BREACHED, MET, OPEN, Deadline
from portal.sla.sweep import sweep
from portal.testing import make_user

SHANGHAI = ZoneInfo("Asia/Shanghai")
P05_MINUTES = 3 * 24 * 60


# --- helpers --------------------------------------------------------------------------------


def ago(**delta) -> datetime:
    return (utcnow() - timedelta(**delta)).replace(second=0, microsecond=0)


def local_input(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def as_user(app, name: str):
    client = app.test_client()
    assert client.login(name).status_code == 302
    return client


def field_error(page: str, name: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{re.escape(name)}-error">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1).strip()) if match else None


def textarea_value(page: str, name: str) -> str | None:
    match = re.search(rf'<textarea[^>]*\bname="{re.escape(name)}"[^>]*>(.*?)</textarea>', page, re.S)
    return html.unescape(match.group(1)).strip() if match else None


def selected(page: str, name: str) -> str | None:
    select_tag = re.search(rf'<select[^>]*\bname="{re.escape(name)}"[^>]*>(.*?)</select>', page, re.S)
    option = re.search(r'<option selected value="([^"]*)"', select_tag.group(1)) if select_tag else None
    return html.unescape(option.group(1)) if option else None


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def complaint_data(net, kind="attitude_staff", unit=None, person=None, received=None, **extra) -> dict:
    data = {"kind": kind, "unit_id": (unit or net.pudong).id, "person_id": (person or net.amy).id,
            "received_at": local_input(received or ago(hours=2)),
            "description": "The courier shouted at the customer on the phone."}
    data.update(extra)
    return data


def record(client, data: dict) -> int:
    response = client.post_form("/express/complaints/new", data)
    assert response.status_code == 302, response.get_data(as_text=True)
    complaint_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    assert response.headers["Location"].endswith(f"/express/complaints/{complaint_id}")
    return complaint_id


def verify(client, complaint_id: int, outcome="verified", finding="Confirmed with the call recording.",
           expect=302, **extra):
    response = client.post_form(f"/express/complaints/{complaint_id}/verify",
                                {"outcome": outcome, "finding": finding, **extra})
    assert response.status_code == expect, response.get_data(as_text=True)
    return response


def notices(rule: str | None = None) -> list[PenaltyNotice]:
    db.session.expire_all()
    query = select(PenaltyNotice).order_by(PenaltyNotice.id)
    if rule:
        query = query.where(PenaltyNotice.rule_id == rule)
    return list(db.session.scalars(query))


def complaint(complaint_id: int) -> Complaint:
    db.session.expire_all()
    return db.session.get(Complaint, complaint_id)


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def rec(app, net):
    return as_user(app, "east_mgr")


@pytest.fixture
def ada(app, net):
    return as_user(app, "ada")


@pytest.fixture
def aldo(app, net):
    return as_user(app, "aldo")


# --- EXP-P04 / P04-M: attitude complaints, counted and escalated ---------------------------------


def test_exp_p04_third_verified_complaint_requires_dismissal(app, net, rec, ada, aldo):
    ids = [record(rec, complaint_data(net, received=ago(days=d))) for d in (3, 2, 1)]
    listed = page(rec, "/express/complaints")  # open ones by default
    assert all(f'href="/express/complaints/{i}"' in listed for i in ids)

    for n, complaint_id in enumerate(ids, start=1):
        verify(ada, complaint_id)
        [draft] = notices("EXP-P04")[n - 1:]
        assert (draft.status, draft.amount, draft.user_id, draft.unit_id) == (
            R.DRAFT, Decimal("200.00"), net.amy.id, net.pudong.id)
        assert draft.occurred_at == complaint(complaint_id).received_at
        assert f"express complaint no. {complaint_id} (EXP-P04)" in draft.evidence
        # the draft is in the core ledger, linked from the complaint
        ledger = aldo.get("/penalties/ledger?status=draft").get_data(as_text=True)
        assert f'href="/penalties/{draft.id}"' in ledger
        shown = page(ada, f"/express/complaints/{complaint_id}")
        assert f'href="/penalties/{draft.id}"' in shown and "Draft" in shown
        if n == 3:  # before publication: the core's count says what publishing would mean
            assert "published, this one would be no. 3" in shown and "站点经理须予辞退" in shown
        # another auditor publishes it in the ledger
        published = aldo.post_form(f"/penalties/{draft.id}/publish", {"amount": ""})
        assert published.status_code == 302
        db.session.expire_all()
        assert db.session.get(PenaltyNotice, draft.id).status == R.PUBLISHED

    assert f'href="/express/complaints/{ids[0]}"' not in page(ada, "/express/complaints")
    assert f'href="/express/complaints/{ids[0]}"' in page(ada, "/express/complaints?status=verified")
    first = page(ada, f"/express/complaints/{ids[0]}")
    assert "Verified offence no. 1 of EXP-P04 for Amy." in first and "辞退" not in first
    third = page(ada, f"/express/complaints/{ids[2]}")
    assert "Verified offence no. 3 of EXP-P04 for Amy." in third
    assert "发生三次：站点经理须予辞退" in third
    last = notices("EXP-P04")[-1]
    assert penalties.escalation(last)[:2] == (3, 3)
    # the station manager is told that he must dismiss her
    told = db.session.scalars(select(InboxMessage).where(InboxMessage.user_id == net.pete.id,
                                                         InboxMessage.kind == "express.escalation")).all()
    assert len(told) == 1 and "辞退" in told[0].body


def test_exp_p04_m_complaint_about_the_station_manager(app, net, rec, ada, aldo):
    wrong = rec.post_form("/express/complaints/new",
                          complaint_data(net, kind="attitude_manager", person=net.amy))
    assert wrong.status_code == 400
    assert "is not the manager of Pudong" in field_error(wrong.get_data(as_text=True), "person_id")
    staff_kind = rec.post_form("/express/complaints/new", complaint_data(net, person=net.pete))
    assert staff_kind.status_code == 400
    assert "EXP-P04-M" in field_error(staff_kind.get_data(as_text=True), "person_id")
    assert count(Complaint) == 0

    ids = [record(rec, complaint_data(net, kind="attitude_manager", person=net.pete, received=ago(days=d)))
           for d in (5, 4, 3)]
    for complaint_id in ids:
        verify(ada, complaint_id)
        draft = notices("EXP-P04-M")[-1]
        assert (draft.amount, draft.user_id) == (Decimal("500.00"), net.pete.id)
        penalties.publish(draft, net.aldo)
        db.session.commit()
    shown = page(ada, f"/express/complaints/{ids[2]}")
    assert "Verified offence no. 3 of EXP-P04-M for Pete." in shown
    assert "全网络通报批评并加重处罚" in shown
    assert "通报批评" not in page(ada, f"/express/complaints/{ids[1]}")


def test_exp_p04_complaint_with_bad_input_is_refused_and_nothing_is_written(app, net, rec):
    def refused(data):
        response = rec.post_form("/express/complaints/new", data)
        assert response.status_code == 400
        return response.get_data(as_text=True)

    future = refused(complaint_data(net, received=utcnow() + timedelta(hours=2),
                                    description="Typed text stays"))
    assert field_error(future, "received_at") == "The time received cannot be in the future."
    assert textarea_value(future, "description") == "Typed text stays"
    assert selected(future, "kind") == "attitude_staff"  # what was chosen is kept
    assert selected(future, "person_id") == str(net.amy.id)

    assert field_error(refused(complaint_data(net, person_id=999999)), "person_id") == (
        "Choose the person the complaint is about.")
    assert field_error(refused(complaint_data(net, person=net.bob)), "person_id") == (
        "Bob does not work at Pudong.")
    assert field_error(refused(complaint_data(net, kind="bribery")), "kind") == (
        "Choose the kind of complaint.")
    assert field_error(refused(complaint_data(net, inquiry_id="424242")), "inquiry_id") == (
        "There is no inquiry no. 424242 in your area.")

    empty = refused({"kind": "", "unit_id": "", "person_id": "", "received_at": "", "description": " "})
    assert field_error(empty, "kind") and field_error(empty, "unit_id") and field_error(empty, "person_id")
    assert field_error(empty, "received_at") == "Enter when the complaint was received."
    assert field_error(empty, "description") == "Describe the complaint."

    assert count(Complaint) == 0
    assert not db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "express.complaint_recorded")).all()


def test_exp_p04_complaints_are_scoped_to_the_area(app, net, rec):
    complaint_id = record(rec, complaint_data(net))
    make_user("tom", (net.tianhe, "manager"), locale="en")
    make_user("sam", (net.south, "auditor"), locale="en")
    tom = as_user(app, "tom")
    assert tom.get(f"/express/complaints/{complaint_id}").status_code == 404
    assert f"/express/complaints/{complaint_id}" not in page(tom, "/express/complaints?status=all")
    assert f'href="/express/complaints/{complaint_id}"' in page(rec, "/express/complaints?status=all")
    # nor can he record one about a person of another region
    outside = tom.post_form("/express/complaints/new", complaint_data(net))
    assert outside.status_code == 400
    assert field_error(outside.get_data(as_text=True), "unit_id") == "Choose a unit of your area."
    # an auditor of the south region cannot verify it either
    sam = as_user(app, "sam")
    assert sam.post_form(f"/express/complaints/{complaint_id}/verify",
                         {"outcome": "verified", "finding": "x"}).status_code == 404
    assert complaint(complaint_id).status == "open" and count(Complaint) == 1


def test_exp_p04_only_another_auditor_verifies(app, net, ada, aldo):
    complaint_id = record(ada, complaint_data(net))  # 质控部's ada records the customer's call
    amy = as_user(app, "amy")
    assert amy.post_form(f"/express/complaints/{complaint_id}/verify",
                         {"outcome": "verified", "finding": "x"}).status_code == 403
    pete = as_user(app, "pete")
    assert "Verify or reject" not in page(pete, f"/express/complaints/{complaint_id}")
    assert pete.post_form(f"/express/complaints/{complaint_id}/verify",
                          {"outcome": "verified", "finding": "x"}).status_code == 403
    assert "Verify or reject" not in page(ada, f"/express/complaints/{complaint_id}")
    own = verify(ada, complaint_id, expect=403)
    assert "another auditor must verify it" in own.get_data(as_text=True)
    assert complaint(complaint_id).status == "open" and notices() == []

    missing = verify(aldo, complaint_id, outcome="", finding="", expect=400).get_data(as_text=True)
    assert field_error(missing, "outcome") == "Choose verified or rejected."
    assert field_error(missing, "finding") == "Describe what the inspection found."
    assert complaint(complaint_id).status == "open"

    verify(aldo, complaint_id, outcome="rejected", finding="The recording shows a polite courier.")
    assert complaint(complaint_id).status == "rejected" and notices() == []
    again = verify(aldo, complaint_id, expect=400).get_data(as_text=True)
    assert "already been verified or rejected" in again


# --- EXP-P02, P03 ---------------------------------------------------------------------------------


def test_exp_p02_fined_only_after_rectification_and_training_without_reassignment(app, net, rec, ada):
    complaint_id = record(rec, complaint_data(net, kind="quality",
                                              description="Spot check 11-20: still no callback."))
    refused = verify(ada, complaint_id, expect=400).get_data(as_text=True)
    assert "EXP-P02 applies only" in field_error(refused, "conditions_met")
    assert complaint(complaint_id).status == "open" and notices() == []

    verify(ada, complaint_id, conditions_met="y")
    [draft] = notices()
    assert (draft.rule_id, draft.amount, draft.user_id) == ("EXP-P02", Decimal("200.00"), net.amy.id)
    assert "not reassigned" in draft.evidence
    # the quality rule is about station CS: a center is refused
    center = ada.post_form("/express/complaints/new", complaint_data(net, kind="quality", unit=net.center,
                                                                     person=net.cal))
    assert center.status_code == 400
    assert "about a station" in field_error(center.get_data(as_text=True), "unit_id")


def test_exp_p03_abuse_is_fined_200_and_opens_a_response_even_without_a_manager(app, net, rec, ada, aldo):
    complaint_id = record(rec, complaint_data(net, kind="abuse", unit=net.center, person=net.cal,
                                              description="Cal insulted the Pudong CS on the phone."))
    verify(ada, complaint_id)
    [draft] = notices()
    assert (draft.rule_id, draft.amount, draft.user_id, draft.unit_id) == (
        "EXP-P03", Decimal("200.00"), net.cal.id, net.center.id)
    assert aldo.post_form(f"/penalties/{draft.id}/publish", {"amount": "200"}).status_code == 302
    db.session.expire_all()
    [response] = db.session.scalars(select(QualityResponse)).all()
    assert (response.notice_id, response.unit_id, response.manager_id) == (draft.id, net.center.id, None)
    assert response.deadline.owner_id is None  # the center has no manager: nobody to fine on a breach


# --- EXP-P06 ----------------------------------------------------------------------------------------


def test_exp_p06_only_refusal_and_rejection_is_fined(app, net, rec, ada, aldo):
    missing = rec.post_form("/express/complaints/new", complaint_data(net, kind="regulator"))
    assert missing.status_code == 400
    assert "handling plan" in field_error(missing.get_data(as_text=True), "station_plan")
    assert count(Complaint) == 0

    with_plan = record(rec, complaint_data(net, kind="regulator",
                                           station_plan="Refund and apology by Friday."))
    refused_only = record(rec, complaint_data(net, kind="regulator", plan_refused="y"))
    both = record(rec, complaint_data(net, kind="regulator", plan_refused="y"))
    verify(ada, with_plan)
    verify(ada, refused_only, plan_refused="y")
    assert notices() == []
    for complaint_id in (with_plan, refused_only):
        assert "No fine: the station did not both refuse a plan and reject 质控中心's plan" in page(
            ada, f"/express/complaints/{complaint_id}")
    # by the time 质控中心 verifies, the station has also rejected its plan
    verify(ada, both, plan_refused="y", center_plan_rejected="y")
    assert complaint(both).center_plan_rejected is True
    [draft] = notices()
    assert (draft.rule_id, draft.amount, draft.user_id) == ("EXP-P06", None, net.amy.id)
    # 质控中心 sets 500–10,000 yuan by severity when publishing
    assert aldo.post_form(f"/penalties/{draft.id}/publish", {"amount": "20000"}).status_code == 400
    assert aldo.post_form(f"/penalties/{draft.id}/publish", {"amount": "5000"}).status_code == 302
    db.session.expire_all()
    assert (draft.status, draft.amount) == (R.PUBLISHED, Decimal("5000.00"))
    shown = page(ada, f"/express/complaints/{both}")
    assert "清退出能达网络并通报省邮政管理局" in shown
    assert count(QualityResponse) == 0  # not a service-quality notice (EXP-P05 is about P02–P04)


# --- EXP-P07 ----------------------------------------------------------------------------------------


def test_exp_p07_second_complaint_references_the_first(app, net, rec, ada, aldo):
    first = record(rec, complaint_data(net, received=ago(days=2)))
    other_unit = record(rec, complaint_data(net, unit=net.minhang, person=net.bob, received=ago(days=2)))

    def refused(**extra):
        response = rec.post_form("/express/complaints/new", complaint_data(net, kind="secondary", **extra))
        assert response.status_code == 400
        return response.get_data(as_text=True)

    assert "first complaint" in field_error(refused(), "earlier_id")
    assert field_error(refused(earlier_id="999999"), "earlier_id") == (
        "There is no complaint no. 999999 in your area.")
    assert "about another unit" in field_error(refused(earlier_id=str(other_unit)), "earlier_id")
    too_early = refused(earlier_id=str(first), received=ago(days=3))
    assert "after the first" in field_error(too_early, "received_at")
    assert count(Complaint) == 2

    assert selected(rec.get(f"/express/complaints/new?earlier={first}").get_data(as_text=True),
                    "kind") == "secondary"
    second = record(rec, complaint_data(net, kind="secondary", earlier_id=str(first),
                                        description="Called again: nobody called back."))
    assert f'href="/express/complaints/{second}"' in rec.get(f"/express/complaints/{first}").get_data(
        as_text=True)
    verify(ada, second)
    [draft] = notices()
    assert (draft.rule_id, draft.amount, draft.user_id) == ("EXP-P07", None, net.amy.id)
    assert f"first complaint: no. {first}" in draft.evidence
    with pytest.raises(PenaltyRuleError):
        penalties.publish(draft, net.aldo, amount="1200")
    db.session.rollback()
    penalties.publish(draft, net.aldo, amount="800")
    db.session.commit()
    assert notices()[0].amount == Decimal("800.00")


# --- EXP-R15 ----------------------------------------------------------------------------------------


def test_exp_r15_inaction_is_verified_then_the_leaders_decision_is_recorded(app, net, rec, ada, aldo):
    complaint_id = record(rec, complaint_data(net, kind="inaction", unit=net.eastnet, person=net.ned,
                                              description="总裁邮箱: 辖区网管 did not help for two days."))
    early = ada.post_form(f"/express/complaints/{complaint_id}/decision", {"decision": "Warning."})
    assert early.status_code == 400 and "Verify the report" in early.get_data(as_text=True)
    verify(ada, complaint_id, finding="监查部: confirmed, no reply logged for 2 days.")
    assert notices() == []  # no fine: the leader decides
    shown = page(ada, f"/express/complaints/{complaint_id}")
    assert "No fine: 监查部 reports the verified inaction" in shown and "Leader's decision (EXP-R15)" in shown

    empty = aldo.post_form(f"/express/complaints/{complaint_id}/decision", {"decision": " "})
    assert empty.status_code == 400
    assert field_error(empty.get_data(as_text=True), "decision") == (
        "Record what the leader in charge decided.")
    assert aldo.post_form(f"/express/complaints/{complaint_id}/decision",
                          {"decision": "VP Li: written warning; retrain the 辖区网管 team."}).status_code == 302
    assert complaint(complaint_id).decision.startswith("VP Li")
    again = aldo.post_form(f"/express/complaints/{complaint_id}/decision", {"decision": "Other"})
    assert again.status_code == 400 and complaint(complaint_id).decision.startswith("VP Li")
    assert as_user(app, "pete").post_form(f"/express/complaints/{complaint_id}/decision",
                                          {"decision": "x"}).status_code == 403
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.object_type == "express_complaint", AuditEntry.object_id == str(complaint_id))
        .order_by(AuditEntry.id)).all()
    assert actions == ["express.complaint_recorded", "express.complaint_verified",
                       "express.complaint_decided"]


# --- EXP-P05 ----------------------------------------------------------------------------------------


def published_p04(net, rec, ada, at: datetime) -> PenaltyNotice:
    complaint_id = record(rec, complaint_data(net, received=at - timedelta(days=1)))
    verify(ada, complaint_id)
    [draft] = notices("EXP-P04")
    penalties.publish(draft, net.aldo, now=at)
    db.session.commit()
    return draft


def p05_deadlines() -> list[Deadline]:
    db.session.expire_all()
    return list(db.session.scalars(select(Deadline).where(Deadline.policy_id == "express.p05_response")))


def test_exp_p05_publication_starts_the_clock_and_the_managers_report_meets_it(app, net, rec, ada):
    published_at = ago(hours=1)
    notice = published_p04(net, rec, ada, published_at)
    [response] = db.session.scalars(select(QualityResponse)).all()
    [deadline] = p05_deadlines()
    assert (response.notice_id, response.unit_id, response.manager_id) == (
        notice.id, net.pudong.id, net.pete.id)
    assert (deadline.owner_id, deadline.started_at, deadline.status) == (net.pete.id, published_at, OPEN)
    assert deadline.due_at == published_at + timedelta(minutes=P05_MINUTES)
    assert settings.value(net.pudong, "express.p05_response_minutes") == P05_MINUTES
    assert db.session.scalar(select(InboxMessage).where(InboxMessage.user_id == net.pete.id,
                                                        InboxMessage.kind == "express.quality_response"))

    pete = as_user(app, "pete")
    listed = page(pete, "/express/responses")
    assert f'href="/express/responses/{response.id}"' in listed and "EXP-P04" in listed
    complaint_id = db.session.scalar(select(Complaint.id))
    assert f'href="/express/responses/{response.id}"' in page(ada, f"/express/complaints/{complaint_id}")
    assert as_user(app, "amy").get("/express/responses").status_code == 403
    # the region's manager is not the station manager
    assert as_user(app, "east_mgr").post_form(f"/express/responses/{response.id}/respond", {
        "educated": "y", "apologised": "y", "handling": "x", "measures": "y"}).status_code == 403

    incomplete = pete.post_form(f"/express/responses/{response.id}/respond",
                                {"handling": "Called the customer back.", "measures": ""})
    assert incomplete.status_code == 400
    body = incomplete.get_data(as_text=True)
    assert "Educate the staff member first" in field_error(body, "educated")
    assert "Apologise to the customer first" in field_error(body, "apologised")
    assert field_error(body, "measures") == "Describe the improvement measures."
    assert textarea_value(body, "handling") == "Called the customer back."
    db.session.expire_all()
    assert db.session.get(QualityResponse, response.id).responded_at is None
    assert p05_deadlines()[0].status == OPEN

    done = pete.post_form(f"/express/responses/{response.id}/respond", {
        "educated": "y", "apologised": "y", "handling": "Called the customer back; parcel redelivered.",
        "measures": "Phone etiquette training every Monday."})
    assert done.status_code == 302
    db.session.expire_all()
    response = db.session.get(QualityResponse, response.id)
    assert (response.educated, response.apologised, response.responded_by_id) == (True, True, net.pete.id)
    [deadline] = p05_deadlines()
    assert (deadline.status, deadline.met_by_id) == (MET, net.pete.id)
    assert db.session.scalar(select(InboxMessage).where(InboxMessage.user_id == net.aldo.id,
                                                        InboxMessage.kind == "express.quality_response"))
    assert "Reported to 质控部" in page(pete, f"/express/responses/{response.id}")
    assert f"/express/responses/{response.id}" not in page(pete, "/express/responses")
    sweep(now=deadline.due_at + timedelta(minutes=1))
    assert notices("EXP-P05") == []


def test_exp_p05_ignored_notice_is_breached_and_drafts_500_on_the_manager(app, net, rec, ada, aldo):
    published_at = ago(days=4)
    published_p04(net, rec, ada, published_at)
    [deadline] = p05_deadlines()
    due = published_at + timedelta(minutes=P05_MINUTES)
    sweep(now=due - timedelta(minutes=1))
    assert p05_deadlines()[0].status == OPEN and notices("EXP-P05") == []

    sweep(now=due + timedelta(minutes=1))
    [deadline] = p05_deadlines()
    assert (deadline.status, deadline.breached_owner_id) == (BREACHED, net.pete.id)
    [draft] = notices("EXP-P05")
    assert (draft.status, draft.amount, draft.user_id, draft.unit_id, draft.occurred_at) == (
        R.DRAFT, Decimal("500.00"), net.pete.id, net.pudong.id, due)
    response_id = db.session.scalar(select(QualityResponse.id))
    shown = page(as_user(app, "pete"), f"/express/responses/{response_id}")
    assert "Deadline missed (EXP-P05)" in shown and f'href="/penalties/{draft.id}"' in shown
    assert "fined 500 yuan and named on the website" in shown
    # 质控部 publishes it; a P05 notice opens no further response
    assert aldo.post_form(f"/penalties/{draft.id}/publish", {"amount": ""}).status_code == 302
    assert count(QualityResponse) == 1
