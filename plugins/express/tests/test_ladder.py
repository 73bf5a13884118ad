"""The inquiry ladder (EXP-R01..R12, R14): intake, forwards one level at a time, checks in
order, replies, and the clocks each handoff starts and stops.

Service-level tests pass explicit instants (``T0`` is Monday 2026-11-16 10:00 Shanghai);
HTTP tests act as the users would, through the pages.
"""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from sqlalchemy import event, func, select

from plugins.express import rules
from plugins.express import service as svc
from plugins.express.models import Check, CustomerUpdate, Hop, Inquiry
from plugins.express.tests.conftest import (
    FACTS,
    L2_STEPS,
    L3_STEPS,
    T0,
    at_l2,
    at_l3,
    at_netdept,
    minutes,
    new_inquiry,
)
from portal.audit import AuditEntry
from portal.db_types import utcnow
from portal.extensions import db
from portal.penalties import service as penalties
from portal.penalties.models import PenaltyNotice
from portal.settings import models as settings
from portal.sla.models import BREACHED, CANCELLED, MET, OPEN, Deadline
from portal.sla.sweep import sweep


def deadlines(policy: str | None = None) -> list[Deadline]:
    db.session.expire_all()
    query = select(Deadline).order_by(Deadline.id)
    if policy:
        query = query.where(Deadline.policy_id == policy)
    return list(db.session.scalars(query))


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def field_error(page: str, name: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{re.escape(name)}-error">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1).strip()) if match else None


def input_value(page: str, name: str) -> str | None:
    tag = re.search(rf'<input[^>]*\bname="{re.escape(name)}"[^>]*>', page)
    if tag is None:
        return None
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else ""


def refusals() -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "express.forward_refused")))


# --- EXP-R01 / R02: intake -------------------------------------------------------------------------


def test_exp_r01_intake_records_the_inquirer_and_starts_the_customer_clock(client, net):
    client.login("amy")
    response = client.post_form("/express/new", {
        "waybill": "600123456789", "inquirer_name": "王先生", "inquirer_org": "某贸易公司",
        "inquirer_phone": "138 1234 5678", "partner_id": "0", "notes": "急件"})
    assert response.status_code == 302
    inquiry = db.session.scalar(select(Inquiry))
    assert (inquiry.waybill, inquiry.inquirer_name, inquiry.inquirer_org, inquiry.inquirer_phone, inquiry.notes) == (
        "600123456789", "王先生", "某贸易公司", "13812345678", "急件")
    assert inquiry.unit_id == net.pudong.id and inquiry.created_by_id == net.amy.id
    (clock,) = deadlines("express.customer")
    assert clock.owner_id == net.amy.id and clock.duration_minutes == 30 and clock.status == OPEN
    assert (clock.due_at - clock.started_at) == minutes(30)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "600123456789" in page and "left" in page  # the countdown


@pytest.mark.parametrize("field,value,message", [
    ("waybill", "12-34", "Not a waybill number"),
    ("inquirer_phone", "12345", "A mobile number"),
    ("inquirer_name", "", "This field is required."),
])
def test_exp_r01_bad_intake_is_refused_next_to_the_field_and_keeps_the_input(client, net, field, value, message):
    client.login("amy")
    data = {"waybill": "600123456789", "inquirer_name": "王先生", "inquirer_org": "某贸易公司",
            "inquirer_phone": "13812345678", "partner_id": "0", "notes": ""}
    data[field] = value
    response = client.post_form("/express/new", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in field_error(page, field)
    assert input_value(page, "inquirer_org") == "某贸易公司"
    assert count(Inquiry) == 0 and deadlines() == []


def test_exp_r01_waybill_pattern_is_a_per_unit_setting(client, net):
    settings.change(net.pudong, "express.waybill_pattern", r"^NE\d{8}$", date(2026, 1, 1), net.root)
    db.session.commit()
    client.login("amy")
    data = {"waybill": "600123456789", "inquirer_name": "A", "inquirer_phone": "13812345678", "partner_id": "0"}
    assert client.post_form("/express/new", data).status_code == 400
    assert client.post_form("/express/new", {**data, "waybill": "NE12345678"}).status_code == 302


def test_exp_r01_searching_a_waybill_shows_earlier_inquiries(app, client, net):
    first = new_inquiry(net)
    new_inquiry(net, waybill="600999999999")
    client.login("amy")
    page = client.get("/express/lookup?waybill=600123456789").get_data(as_text=True)
    assert f"/express/{first.id}" in page and "600999999999" not in page
    page = client.get("/express/?q=600123456789").get_data(as_text=True)
    assert f"/express/{first.id}" in page
    # another region's station does not see them
    other = app.test_client()
    other.login("tia")
    assert f"/express/{first.id}" not in other.get("/express/lookup?waybill=600123456789").get_data(as_text=True)
    assert other.get(f"/express/{first.id}").status_code == 404


def test_exp_r02_a_signed_parcel_is_answered_and_closed_at_once(client, net):
    inquiry = new_inquiry(net, at=utcnow())
    client.login("amy")
    response = client.post_form(f"/express/{inquiry.id}/signed", {
        "signed-signer": "门卫代签", "signed-signed_at": "2026-11-15T18:30", "signed-answer": "昨日门卫已代签"})
    assert response.status_code == 302
    db.session.expire_all()
    inquiry = db.session.get(Inquiry, inquiry.id)
    assert inquiry.status == "closed" and inquiry.result == "signed" and inquiry.signed_by == "门卫代签"
    assert inquiry.signed_at.astimezone(settings.unit_zone(net.pudong)).strftime("%m-%d %H:%M") == "11-15 18:30"
    (clock,) = deadlines("express.customer")
    assert clock.status == MET and clock.met_by_id == net.amy.id
    assert [u.kind for u in db.session.scalars(select(CustomerUpdate))] == ["result"]


def test_exp_r02_signature_details_are_required_and_not_in_the_future(client, net):
    inquiry = new_inquiry(net)
    client.login("amy")
    response = client.post_form(f"/express/{inquiry.id}/signed", {
        "signed-signer": "", "signed-signed_at": "2099-01-01T10:00", "signed-answer": "x"})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "signed-signer")
    response = client.post_form(f"/express/{inquiry.id}/signed", {
        "signed-signer": "张三", "signed-signed_at": "2099-01-01T10:00", "signed-answer": "x"})
    assert "future" in field_error(response.get_data(as_text=True), "signed-signed_at")
    assert db.session.get(Inquiry, inquiry.id).status == "open"


# --- EXP-R03..R08: the ladder ----------------------------------------------------------------------


def test_exp_r03_not_signed_goes_to_the_destination_station_whose_clock_starts(net):
    inquiry, hop = at_l2(net)
    assert (hop.stage, hop.kind, hop.from_unit_id, hop.to_unit_id) == (2, "forward", net.pudong.id, net.minhang.id)
    assert hop.deadline.policy_id == "express.hop_reply" and hop.deadline.unit_id == net.minhang.id
    assert hop.deadline.started_at == T0 + minutes(2) and hop.deadline.due_at == T0 + minutes(32)
    assert hop.deadline.owner_id is None  # nobody at L2 has taken it yet
    assert inquiry.stage == 2
    with pytest.raises(rules.LadderError) as refused:
        svc.forward(inquiry, net.amy, net.pudong)
    assert refused.value.code == "answered"  # already with the destination station


def test_exp_r03_the_destination_station_is_another_station(net):
    inquiry = new_inquiry(net)
    with pytest.raises(rules.LadderError) as refused:
        svc.forward(inquiry, net.amy, net.pudong, at=T0 + minutes(1))
    assert refused.value.code == "same_station"


def test_exp_r04_l2_checks_go_in_order_and_4_5_together(net):
    inquiry, hop = at_l2(net)
    with pytest.raises(rules.LadderError) as refused:
        svc.record_check(hop, net.bob, "record", "recorded")
    assert refused.value.code == "facts"
    svc.save_facts(inquiry, hop, net.bob, FACTS, at=T0 + minutes(3))
    with pytest.raises(rules.LadderError) as refused:
        svc.record_check(hop, net.bob, "shelves", "none")  # ③ before ①②
    assert refused.value.code == "step_order"
    svc.record_check(hop, net.bob, "record", "recorded", at=T0 + minutes(4))
    svc.record_check(hop, net.bob, "arrived", "arrived 11-15", at=T0 + minutes(5))
    with pytest.raises(rules.LadderError):
        svc.record_check(hop, net.bob, "courier", "called")  # ④ before ③
    svc.record_check(hop, net.bob, "shelves", "not on the shelves", at=T0 + minutes(6))
    svc.record_check(hop, net.bob, "signatures", "none missing", at=T0 + minutes(7))  # ⑤ then ④: together
    svc.record_check(hop, net.bob, "courier", "courier has not seen it", at=T0 + minutes(7))
    with pytest.raises(rules.LadderError) as refused:
        svc.record_check(hop, net.bob, "courier", "again")
    assert refused.value.code == "step_done"
    db.session.commit()
    assert [c.step for c in db.session.scalars(select(Check).order_by(Check.id))] == [
        "record", "arrived", "shelves", "signatures", "courier"]
    assert hop.holder_id == net.bob.id  # recording took the request: its clock is bob's
    assert hop.deadline.owner_id == net.bob.id


def test_exp_r04_checks_out_of_order_are_refused_on_the_page(client, net):
    inquiry, hop = at_l2(net)
    client.login("bob")
    response = client.post_form(f"/express/{inquiry.id}/hops/{hop.id}/check",
                                {f"check{hop.id}-step": "courier", f"check{hop.id}-result": "called him"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "earlier checks first" in field_error(page, f"check{hop.id}-step")
    assert "called him" in page  # what was typed is kept
    assert count(Check) == 0


def test_exp_r05_l2_replies_found_or_not_found_with_details(net):
    inquiry, hop = at_l2(net)
    assert rules.reply_outcomes(2, "forward") == ("found", "not_found")
    with pytest.raises(rules.LadderError):
        svc.reply(hop, net.bob, "progress", "still looking")
    with pytest.raises(rules.LadderError):
        svc.reply(hop, net.bob, "not_found", "  ")
    svc.reply(hop, net.bob, "not_found", "not arrived, not on the shelves", at=T0 + minutes(20))
    db.session.commit()
    assert hop.outcome == "not_found" and hop.replied_by_id == net.bob.id
    assert hop.deadline.status == MET and hop.deadline.met_owner_id == net.bob.id
    assert inquiry.result is None  # nothing found yet: L1 tells the customer the progress


def test_exp_r06_escalating_to_the_center_needs_the_parcel_data_and_the_l2_checks(net):
    inquiry, hop = at_l2(net)
    with pytest.raises(rules.LadderError) as refused:
        svc.forward(inquiry, net.bob, net.center, from_hop=hop, at=T0 + minutes(5))
    assert refused.value.code == "missing"
    assert rules.forward_requirements(3, {}, set(), 2) == [
        "send_time", "appearance", "packaging", "pieces", "weight", "destination",
        *(f"step:{s}" for s in L2_STEPS)]
    assert rules.forward_requirements(3, FACTS, set(L2_STEPS), 2) == []


def test_exp_r06_l2_passes_it_up_not_found_and_the_center_clock_starts(net):
    inquiry, l2, l3 = at_l3(net)
    assert l2.outcome == "not_found" and l2.escalated and l2.deadline.status == MET
    assert (l3.stage, l3.to_unit_id, l3.parent_id) == (3, net.center.id, l2.id)
    assert l3.deadline.policy_id == "express.hop_reply" and l3.deadline.due_at == T0 + minutes(38)
    assert inquiry.stage == 3 and inquiry.facts["weight"] == "2.4"


def test_exp_r07_center_checks_then_escalates_to_the_network_level_with_its_steps(net):
    inquiry, l2, l3 = at_l3(net)
    with pytest.raises(rules.LadderError) as refused:
        svc.forward(inquiry, net.cal, net.eastnet, from_hop=l3, at=T0 + minutes(10))
    assert refused.value.code == "missing"
    assert rules.forward_requirements(4, FACTS, {"record"}, 3) == [f"step:{s}" for s in L3_STEPS[1:]]
    for step in L3_STEPS:
        svc.record_check(l3, net.cal, step, f"{step} done", at=T0 + minutes(12))
    l4 = svc.forward(inquiry, net.cal, net.eastnet, from_hop=l3, message="cross-region: difficulty",
                     at=T0 + minutes(15))
    db.session.commit()
    assert (l4.stage, l4.deadline.policy_id, l4.deadline.duration_minutes) == (4, "express.network", 30)
    assert l3.outcome == "not_found" and l3.deadline.status == MET


def test_exp_r08_network_level_goes_to_the_network_department_and_never_to_a_vp(net):
    inquiry, l2, l3 = at_l3(net)
    for step in L3_STEPS:
        svc.record_check(l3, net.cal, step, "done", at=T0 + minutes(12))
    l4 = svc.forward(inquiry, net.cal, net.eastnet, from_hop=l3, at=T0 + minutes(15))
    for step in ("mode", "airline", "arrival", "analysis", "stations"):
        svc.record_check(l4, net.ned, step, "done", at=T0 + minutes(20))
    with pytest.raises(rules.LadderError) as refused:
        svc.forward(inquiry, net.ned, net.vp, from_hop=l4, at=T0 + minutes(25))
    assert refused.value.code == "vp"
    l5 = svc.forward(inquiry, net.ned, net.netdept, from_hop=l4, at=T0 + minutes(25))
    db.session.commit()
    assert (l5.stage, l5.deadline.policy_id) == (5, "express.netdept")
    with pytest.raises(rules.LadderError) as refused:
        svc.forward(inquiry, net.nd, net.vp, from_hop=l5, at=T0 + minutes(30))
    assert refused.value.code == "vp"


# --- EXP-R09: the customer's clock ---------------------------------------------------------------------


def test_exp_r09_a_progress_report_meets_the_customer_clock_and_starts_the_next(net):
    inquiry = new_inquiry(net)
    svc.tell_customer(inquiry, net.amy, "progress", "asked the destination station", at=T0 + minutes(25))
    db.session.commit()
    first, second = deadlines("express.customer") + deadlines("express.customer_repeat")
    assert first.status == MET and first.met_at == T0 + minutes(25)
    assert second.status == OPEN and second.started_at == T0 + minutes(25)
    assert second.due_at == T0 + minutes(55) and inquiry.customer_deadline_id == second.id
    svc.tell_customer(inquiry, net.amy, "result", "found, delivering today", at=T0 + minutes(50))
    db.session.commit()
    assert deadlines("express.customer_repeat")[0].status == MET
    assert inquiry.status == "closed" and inquiry.customer_deadline_id is None
    assert [u.kind for u in db.session.scalars(select(CustomerUpdate).order_by(CustomerUpdate.id))] == [
        "progress", "result"]


def test_exp_r09_no_repeat_when_the_unit_sets_0(net):
    settings.change(net.pudong, "express.customer_repeat_minutes", "0", date(2026, 1, 1), net.root)
    inquiry = new_inquiry(net)
    svc.tell_customer(inquiry, net.amy, "progress", "asked L2", at=T0 + minutes(10))
    db.session.commit()
    assert deadlines("express.customer_repeat") == [] and inquiry.customer_deadline_id is None


def test_exp_r09_a_late_customer_answer_is_a_breach_charged_to_the_agent(net):
    inquiry = new_inquiry(net)
    result = sweep(now=T0 + minutes(31))
    db.session.commit()
    assert result.breached == 1
    (clock,) = deadlines("express.customer")
    assert clock.status == BREACHED and clock.breached_owner_id == net.amy.id
    svc.tell_customer(inquiry, net.amy, "progress", "still searching", at=T0 + minutes(40))
    db.session.commit()
    update = db.session.scalar(select(CustomerUpdate))
    assert update.late is True
    assert deadlines("express.customer")[0].met_at == T0 + minutes(40)  # done, but still a breach
    assert deadlines("express.customer_repeat")[0].due_at == T0 + minutes(70)


def test_exp_r09_closing_stops_every_clock_still_running(net):
    inquiry, l2, l3 = at_l3(net)
    svc.tell_customer(inquiry, net.amy, "result", "customer withdrew the inquiry", at=T0 + minutes(20))
    db.session.commit()
    assert l3.deadline.status == CANCELLED
    with pytest.raises(rules.LadderError):
        svc.reply(l3, net.cal, "found", "too late")


# --- EXP-R10..R12: whose clock ---------------------------------------------------------------------


def test_exp_r10_a_late_reply_is_charged_to_whoever_held_it(net):
    inquiry, hop = at_l2(net)
    svc.take(hop, net.bob, at=T0 + minutes(5))
    db.session.commit()
    sweep(now=T0 + minutes(33))
    db.session.commit()
    db.session.refresh(hop.deadline)
    assert hop.deadline.status == BREACHED and hop.deadline.breached_owner_id == net.bob.id
    svc.reply(hop, net.bob, "not_found", "late answer", at=T0 + minutes(40))
    db.session.commit()
    assert hop.deadline.status == BREACHED and hop.deadline.met_at == T0 + minutes(40)
    # a late reply is counted (EXP-R13), never fined automatically
    assert count(PenaltyNotice) == 0


def test_exp_r10_the_reply_minutes_are_an_effective_dated_setting(net):
    settings.change(net.minhang, "express.reply_minutes", "20", date(2026, 11, 17), net.root)
    db.session.commit()
    _, before = at_l2(net)  # 2026-11-16: the old value is in force
    assert before.deadline.duration_minutes == 30
    inquiry = new_inquiry(net, at=T0 + minutes(24 * 60), waybill="600123450000")
    after = svc.forward(inquiry, net.amy, net.minhang, at=T0 + minutes(24 * 60 + 1))
    assert after.deadline.duration_minutes == 20


def test_exp_r11_supervisor_has_40_minutes_and_the_network_manager_30_to_assist(net):
    inquiry, l2, l3 = at_l3(net)
    sup = svc.request_help(inquiry, net.cal, "supervisor", l3, None, message="cannot find it",
                           at=T0 + minutes(20))
    assert (sup.kind, sup.to_unit_id, sup.deadline.policy_id) == ("supervisor", net.center.id, "express.supervisor")
    assert sup.deadline.due_at == T0 + minutes(60)
    with pytest.raises(rules.LadderError):  # staff cannot act as the supervisor
        svc.take(sup, net.cal)
    assist = svc.request_help(inquiry, net.sue, "assist", sup, net.eastnet, message="please help",
                              at=T0 + minutes(25))
    assert (assist.deadline.policy_id, assist.deadline.due_at) == ("express.assist", T0 + minutes(55))
    with pytest.raises(rules.LadderError) as refused:  # only the supervisor asks the 网管
        svc.request_help(inquiry, net.cal, "assist", l3, net.eastnet)
    assert refused.value.code in ("assist", "not_yours")
    svc.reply(assist, net.ned, "found", "it is at the Jiading station", at=T0 + minutes(40))
    # the 网管 only assists: the reply and its clock stay with customer service
    assert sup.is_open and l3.is_open
    svc.reply(sup, net.sue, "progress", "network manager located it; transferring", at=T0 + minutes(45))
    db.session.commit()
    assert sup.deadline.status == MET and l3.deadline.status == OPEN


def test_exp_r12_the_network_department_owes_a_result_progress_does_not_stop_its_clock(net):
    inquiry, l5 = at_netdept(net)
    svc.reply(l5, net.nd, "progress", "asked the airline", at=T0 + minutes(30))
    db.session.commit()
    assert l5.is_open and l5.deadline.status == OPEN and l5.holder_id == net.nd.id
    sweep(now=T0 + minutes(46))
    db.session.commit()
    db.session.refresh(l5.deadline)
    assert l5.deadline.status == BREACHED and l5.deadline.breached_owner_id == net.nd.id
    svc.reply(l5, net.nd, "found", "left behind at the airport; on today's truck", at=T0 + minutes(50))
    db.session.commit()
    assert inquiry.result == "found" and l5.outcome == "found"


# --- EXP-R14: no 越级 ------------------------------------------------------------------------------


def test_exp_r14_skipping_a_level_is_refused_and_logged(net):
    inquiry = new_inquiry(net)
    for target, code in ((net.center, "skip"), (net.eastnet, "skip"), (net.vp, "vp"), (net.east, "skip")):
        with pytest.raises(rules.LadderError) as refused:
            svc.forward(inquiry, net.amy, target, at=T0 + minutes(1))
        assert refused.value.code == code
        db.session.rollback()
        svc.log_refusal(refused.value)
        db.session.commit()
    assert count(Hop) == 0
    logged = refusals()
    assert [e.after["to"] for e in logged] == ["center", "eastnet", "vp", "east"]
    assert all(e.actor_id == net.amy.id and e.after["stage"] == 1 for e in logged)


def test_exp_r14_the_page_offers_only_the_next_level(client, net):
    inquiry = new_inquiry(net)
    client.login("amy")
    page = client.get(f"/express/{inquiry.id}").get_data(as_text=True)
    form = page[page.index('name="forward-target"'):]
    options = re.findall(r'<option[^>]*value="(\d+)"', form[:form.index("</select>")])
    assert {int(o) for o in options} == {net.minhang.id, net.tianhe.id}  # stations, not pudong itself


def test_exp_r14_a_crafted_skipping_post_is_refused_logged_and_writes_nothing(client, net):
    inquiry = new_inquiry(net)
    client.login("amy")
    response = client.post_form(f"/express/{inquiry.id}/forward", {
        "forward-target": str(net.center.id), "forward-message": "please hurry"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "only to the next level" in field_error(page, "forward-target")
    assert "please hurry" in page
    assert count(Hop) == 0 and len(deadlines()) == 1  # only the customer clock
    (entry,) = refusals()
    assert entry.after["to"] == "center" and entry.after["code"] == "skip" and entry.actor_id == net.amy.id
    # to a VP: refused as well
    response = client.post_form(f"/express/{inquiry.id}/forward", {"forward-target": str(net.vp.id)})
    assert response.status_code == 400 and "vice-president" in response.get_data(as_text=True)
    assert len(refusals()) == 2
    # a unit that does not exist
    response = client.post_form(f"/express/{inquiry.id}/forward", {"forward-target": "99999"})
    assert response.status_code == 400 and count(Hop) == 0


def test_exp_r14_an_auditor_may_turn_a_refused_forward_into_the_100_yuan_penalty(net):
    inquiry = new_inquiry(net)
    with pytest.raises(rules.LadderError) as refused:
        svc.forward(inquiry, net.amy, net.vp, at=T0 + minutes(1))
    db.session.rollback()
    svc.log_refusal(refused.value)
    db.session.commit()
    assert count(PenaltyNotice) == 0  # never automatic
    notice = penalties.create_manual(unit=net.pudong, person=net.amy, rule_id="EXP-R14",
                                     evidence="forwarded to the VP", occurred_at=T0 + minutes(1), proposer=net.ada)
    penalties.publish(notice, net.aldo)
    db.session.commit()
    assert notice.amount == 100 and notice.rule_id == "EXP-R14" and notice.status == "published"


def test_exp_r14_a_unit_outside_the_ladder_cannot_act_for_another(net):
    inquiry, hop = at_l2(net)
    with pytest.raises(rules.LadderError) as refused:
        svc.reply(hop, net.tia, "found", "not my station")
    assert refused.value.code == "not_yours"


# --- the inbox -----------------------------------------------------------------------------------------


def _statements(client, path: str) -> int:
    seen = []

    def count_statement(*_args):
        seen.append(1)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count_statement)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count_statement)
    return len(seen)


def test_exp_inbox_issues_a_constant_number_of_sql_statements(client, net):
    """50 open inquiries and their requests cost no more statements than 2 (no N+1)."""
    for i in range(2):
        inquiry = new_inquiry(net, waybill=f"60012345{i:04d}")
        svc.forward(inquiry, net.amy, net.minhang, at=T0 + minutes(1))
    db.session.commit()
    client.login("east_mgr")  # sees the stations' customer clocks and the requests
    client.get("/express/")  # warm-up: session, unit, caches
    few = _statements(client, "/express/")
    for i in range(2, 50):
        inquiry = new_inquiry(net, waybill=f"60012345{i:04d}")
        svc.forward(inquiry, net.amy, net.minhang, at=T0 + minutes(1))
    db.session.commit()
    many = _statements(client, "/express/")
    page = client.get("/express/").get_data(as_text=True)
    assert page.count("/express/") > 100  # the 50 inquiries and 50 requests are listed
    assert many == few


def test_exp_inbox_lists_what_waits_for_each_level(app, client, net):
    inquiry, hop = at_l2(net)
    client.login("bob")
    page = client.get("/express/").get_data(as_text=True)
    assert f"/express/{inquiry.id}" in page and "nobody yet" in page
    other = app.test_client()
    other.login("cal")
    assert f"/express/{inquiry.id}" not in other.get("/express/").get_data(as_text=True)


def test_exp_r14_auditors_see_refused_forwards_and_propose_the_penalty_once(app, client, net):
    inquiry = new_inquiry(net, at=utcnow())
    amy = app.test_client()
    amy.login("amy")
    assert amy.post_form(f"/express/{inquiry.id}/forward", {"forward-target": str(net.vp.id)}).status_code == 400
    assert amy.get("/express/refused").status_code == 403  # staff do not judge refusals
    client.login("ada")
    page = client.get("/express/refused").get_data(as_text=True)
    (entry,) = refusals()
    assert f"/express/{inquiry.id}" in page and "vp" in page
    response = client.post_form(f"/express/refused/{entry.id}/propose")
    assert response.status_code == 302
    (notice,) = db.session.scalars(select(PenaltyNotice)).all()
    assert (notice.rule_id, notice.user_id, notice.status, notice.amount) == ("EXP-R14", net.amy.id, "draft", 100)
    assert notice.occurred_at == entry.at and f"#{entry.id}" in notice.evidence
    # proposing again leads to the same draft
    assert client.post_form(f"/express/refused/{entry.id}/propose").status_code == 302
    assert count(PenaltyNotice) == 1
    assert f"/penalties/{notice.id}" in client.get("/express/refused").get_data(as_text=True)
    # another region's auditor does not see it
    other = app.test_client()
    from portal.testing import make_user
    make_user("sam", (net.south, "auditor"))
    other.login("sam")
    assert f"/express/{inquiry.id}" not in other.get("/express/refused").get_data(as_text=True)
    assert other.post_form(f"/express/refused/{entry.id}/propose").status_code == 404


def test_exp_r16_an_agent_delivered_parcel_goes_to_the_center_and_shows_the_published_phone(client, net):
    from plugins.express.models import Partner

    partner = Partner(unit_id=net.hq.id, name="顺通代理派送", area="崇明", phone="021-59990000")
    db.session.add(partner)
    db.session.commit()
    client.login("amy")
    response = client.post_form("/express/new", {
        "waybill": "600123456789", "inquirer_name": "王先生", "inquirer_phone": "13812345678",
        "partner_id": str(partner.id)})
    assert response.status_code == 302
    inquiry = db.session.scalar(select(Inquiry))
    page = client.get(f"/express/{inquiry.id}").get_data(as_text=True)
    assert "021-59990000" in page and "distribution center" in page
    form = page[page.index('name="forward-target"'):]
    options = re.findall(r'<option[^>]*value="(\d+)"', form[:form.index("</select>")])
    assert [int(o) for o in options] == [net.center.id]
    assert client.post_form(f"/express/{inquiry.id}/forward",
                            {"forward-target": str(net.center.id)}).status_code == 302
    (hop,) = db.session.scalars(select(Hop)).all()
    assert (hop.stage, hop.to_unit_id) == (3, net.center.id)
    # without a partner the same forward skips the destination station: refused
    other = new_inquiry(net, waybill="600000000001")
    with pytest.raises(rules.LadderError):
        svc.forward(other, net.amy, net.center)


def test_exp_r08_the_director_asks_the_vp_to_intervene_without_forwarding(client, net):
    from portal.testing import make_user

    inquiry, l5 = at_netdept(net)
    with pytest.raises(rules.LadderError) as refused:  # staff of the department are not the director
        svc.request_vp_intervention(l5, net.nd, "please intervene")
    assert refused.value.code == "not_yours"
    make_user("dir", (net.netdept, "manager"), locale="en")
    client.login("dir")
    page = client.get(f"/express/{inquiry.id}").get_data(as_text=True)
    assert f'name="vp{l5.id}-text"' in page
    response = client.post_form(f"/express/{inquiry.id}/hops/{l5.id}/vp", {f"vp{l5.id}-text": ""})
    assert response.status_code == 400 and field_error(response.get_data(as_text=True), f"vp{l5.id}-text")
    response = client.post_form(f"/express/{inquiry.id}/hops/{l5.id}/vp",
                                {f"vp{l5.id}-text": "airline refuses to trace; please intervene"})
    assert response.status_code == 302
    db.session.expire_all()
    l5 = db.session.get(Hop, l5.id)
    assert [n.kind for n in l5.notes] == ["vp_request"] and l5.is_open
    assert l5.deadline.status == OPEN  # the department still owes the result
    assert count(Hop) == 4  # no hop to the VP
    assert "airline refuses to trace" in client.get(f"/express/{inquiry.id}").get_data(as_text=True)


def test_exp_r02_a_signature_in_the_tracking_fills_in_the_signed_form(client, net):
    from plugins.express.models import TrackingEvent

    inquiry = new_inquiry(net, at=utcnow())
    db.session.add(TrackingEvent(waybill=inquiry.waybill, at=T0, status="signed", place="Minhang",
                                 signer="门卫代签", unit_id=net.pudong.id, by_id=net.amy.id))
    db.session.commit()
    client.login("amy")
    page = client.get(f"/express/{inquiry.id}").get_data(as_text=True)
    assert input_value(page, "signed-signer") == "门卫代签"
    assert input_value(page, "signed-signed_at") == "2026-11-16T10:00"  # T0 in Shanghai
    assert re.search(r'<details class="card"\s+open>', page)
