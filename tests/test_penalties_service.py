"""The penalty ledger's service layer on the database (CORE-03..07)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import select, text

from portal.audit.models import AuditEntry
from portal.audit.sealed import SealedRecordError
from portal.extensions import db
from portal.penalties import PenaltyDraftError
from portal.penalties import rules as R
from portal.penalties import service
from portal.penalties.models import InboxMessage, PenaltyAppeal, PenaltyDecision, PenaltyNotice
from portal.plugin_api import DomainEvent
from portal.settings import models as settings
from tests import testplug
from tests.penalty_support import cast, drafted, late_reply, local, published


@pytest.fixture(autouse=True)
def english(app):
    """Refusals are lazy strings: read them in English here (the UI default is Chinese)."""
    with force_locale("en"):
        yield


@pytest.fixture
def people(tree):
    people = cast(tree)
    people["sam"].locale = "en"  # inbox messages are written in the person's language
    db.session.commit()
    return people


def _actions(notice_id: int) -> list[str]:
    return db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.object_type == "penalty_notice", AuditEntry.object_id == str(notice_id))
        .order_by(AuditEntry.id)).all()


def test_core_03_event_drafts_a_penalty_once(app, tree, people):
    event = late_reply(tree["north"], people["sam"], local(2026, 11, 9, 15))
    [notice] = service.record_event(event)
    db.session.commit()
    assert (notice.status, notice.rule_id, notice.amount, notice.source) == (
        R.DRAFT, "TST-P01", Decimal("200.00"), R.ASSESSMENT)
    assert notice.user_id == people["sam"].id and notice.evidence.startswith("ticket 7")
    assert notice.event_name == "testplug.reply_late" and notice.sealed_at is None
    # the same event again (a retried sweep) adds nothing
    [again] = service.record_event(event)
    db.session.commit()
    assert again.id == notice.id
    assert db.session.scalar(select(db.func.count()).select_from(PenaltyNotice)) == 1
    assert _actions(notice.id) == ["penalty.drafted"]
    assert service.record_event(DomainEvent("testplug.other", tree["north"].id,
                                            local(2026, 11, 9), people["sam"].id)) == []


def test_core_03_plugin_draft_outside_its_range_is_refused(app, tree, people):
    event = DomainEvent("testplug.second_complaint", tree["north"].id, local(2026, 11, 9),
                        people["sam"].id, data={"amount": "300"})
    with pytest.raises(PenaltyDraftError):
        service.record_event(event)
    db.session.rollback()
    assert db.session.scalar(select(db.func.count()).select_from(PenaltyNotice)) == 0


def test_core_03_publish_seals_tells_the_person_and_the_plugins(app, tree, people):
    testplug.ISSUED.clear()
    notice = drafted(tree, people["sam"])
    service.publish(notice, people["ida"], now=local(2026, 11, 10, 10, 0))
    db.session.commit()
    assert notice.status == R.PUBLISHED and notice.sealed_at is not None
    assert notice.published_by_id == people["ida"].id
    assert notice.appeal_deadline == datetime(2026, 11, 12, 16, 0, tzinfo=timezone.utc)
    assert notice.deduction_mode == R.DEDUCT_ON_FINAL and notice.payroll_month is None
    [issued] = testplug.ISSUED
    assert (issued.rule_id, issued.user_id, issued.amount) == ("TST-P01", people["sam"].id,
                                                                Decimal("200.00"))
    [message] = db.session.scalars(select(InboxMessage)).all()
    assert message.user_id == people["sam"].id and message.read_at is None
    assert "TST-P01" in message.title and "2026-11-12 23:59:59" in message.body
    assert message.link == f"/penalties/{notice.id}"
    assert service.unread_count(people["sam"].id) == 1
    assert _actions(notice.id) == ["penalty.drafted", "penalty.published"]


def test_core_03_proposer_of_a_manual_draft_cannot_publish_it(app, tree, people):
    notice = service.create_manual(unit=tree["north"], person=people["sam"], rule_id="TST-P02",
                                   evidence="customer complained twice", proposer=people["ida"],
                                   occurred_at=local(2026, 11, 9, 9), amount="600")
    db.session.commit()
    with pytest.raises(R.PenaltyRuleError, match="another auditor"):
        service.publish(notice, people["ida"], now=local(2026, 11, 10))
    db.session.rollback()
    with pytest.raises(R.PenaltyRuleError, match="Only an auditor"):
        service.publish(notice, people["max"], now=local(2026, 11, 10))  # a manager
    db.session.rollback()
    with pytest.raises(R.PenaltyRuleError, match="from 500.00 to 1000.00"):
        service.publish(notice, people["ivy"], amount="1200", now=local(2026, 11, 10))
    db.session.rollback()
    service.publish(notice, people["ivy"], amount="800", now=local(2026, 11, 10))
    db.session.commit()
    assert (notice.status, notice.amount, notice.published_by_id) == (
        R.PUBLISHED, Decimal("800.00"), people["ivy"].id)


def test_core_03_manual_draft_checks_rule_evidence_and_amount(app, tree, people):
    base = dict(unit=tree["north"], person=people["sam"], proposer=people["ida"],
                occurred_at=local(2026, 11, 9, 9))
    with pytest.raises(R.PenaltyRuleError) as no_evidence:
        service.create_manual(rule_id="TST-P02", evidence="  ", **base)
    assert no_evidence.value.field == "evidence"
    with pytest.raises(R.PenaltyRuleError) as no_rule:
        service.create_manual(rule_id="NOPE-01", evidence="x", **base)
    assert no_rule.value.field == "rule_id"
    with pytest.raises(R.PenaltyRuleError, match="from 500.00"):
        service.create_manual(rule_id="TST-P02", evidence="x", amount="100", **base)
    with pytest.raises(R.PenaltyRuleError, match="Only an auditor"):
        service.create_manual(rule_id="TST-P02", evidence="x", **{**base, "proposer": people["sam"]})


def test_core_10_fines_are_per_unit_settings_judged_when_the_offence_happened(app, tree, people):
    north, south = tree["north"], tree["south"]
    settings.change(north, "testplug.fine.TST-P01", "250", date(2026, 11, 10), people["ida"])
    settings.change(north, "testplug.fine.TST-P02.max", "1500", date(2026, 11, 10), people["ida"])
    db.session.commit()
    before, after = local(2026, 11, 9, 23, 59), local(2026, 11, 10, 0, 0)
    assert service.rule_in_force("TST-P02", north, before).amount_max == Decimal("1000")
    assert service.rule_in_force("TST-P02", north, after).amount_max == Decimal("1500.00")
    assert service.rule_in_force("TST-P02", south, after).amount_max == Decimal("1000")
    # a fixed fine is filled in from the value in force at the offence
    assert drafted(tree, people["sam"], at=before).amount == Decimal("200.00")
    assert drafted(tree, people["sam"], at=after, evidence="ticket 8").amount == Decimal("250.00")
    # a range is checked against the range in force at the offence, not at publication
    base = dict(unit=north, person=people["sam"], rule_id="TST-P02", evidence="second complaint",
                proposer=people["ida"])
    old = service.create_manual(occurred_at=local(2026, 11, 9, 9), **base)
    new = service.create_manual(occurred_at=local(2026, 11, 10, 9), **base)
    db.session.commit()
    with pytest.raises(R.PenaltyRuleError, match="from 500.00 to 1000.00"):
        service.publish(old, people["ivy"], amount="1200", now=local(2026, 11, 11))
    db.session.rollback()
    service.publish(new, people["ivy"], amount="1200", now=local(2026, 11, 11))
    db.session.commit()
    assert new.amount == Decimal("1200.00")


def test_core_07_published_notice_content_cannot_change(app, tree, people):
    notice = published(tree, people, local(2026, 11, 10, 10))
    notice.amount = Decimal("1.00")
    with pytest.raises(SealedRecordError):
        db.session.flush()
    db.session.rollback()
    with pytest.raises(SealedRecordError):
        db.session.execute(text("UPDATE penalty_notices SET evidence = 'edited' WHERE id = :id"),
                           {"id": notice.id})
    db.session.rollback()
    with pytest.raises(SealedRecordError):
        db.session.execute(text("DELETE FROM penalty_notices WHERE id = :id"), {"id": notice.id})
    db.session.rollback()
    # the lifecycle columns stay free
    notice = db.session.get(PenaltyNotice, notice.id)
    assert notice.evidence == "ticket 7" and notice.amount == Decimal("200.00")
    service.finalise_due(local(2026, 11, 13, 0, 0))
    db.session.commit()
    assert notice.status == R.FINAL


def test_core_07_appeals_and_decisions_are_append_only(app, tree, people):
    notice = published(tree, people, local(2026, 11, 10, 10))
    service.appeal(notice, people["sam"], "I answered at 14:10", now=local(2026, 11, 11, 9))
    service.decide(notice, people["ivy"], R.REDUCED, "first offence", amount="50",
                   now=local(2026, 11, 12, 9))
    db.session.commit()
    for table in ("penalty_appeals", "penalty_decisions"):
        with pytest.raises(SealedRecordError):
            db.session.execute(text(f"DELETE FROM {table}"))
        db.session.rollback()
    decision = db.session.scalar(select(PenaltyDecision))
    decision.amount = Decimal("0")
    with pytest.raises(SealedRecordError):
        db.session.flush()
    db.session.rollback()


def test_core_04_appeal_through_the_service_at_the_deadline(app, tree, people):
    first = published(tree, people, local(2026, 11, 10, 10), occurred=local(2026, 11, 9, 8))
    second = published(tree, people, local(2026, 11, 10, 10), occurred=local(2026, 11, 9, 9))
    row = service.appeal(first, people["sam"], "not me", now=local(2026, 11, 12, 23, 59, 58))
    db.session.commit()
    assert isinstance(row, PenaltyAppeal) and row.sealed_at is not None
    assert first.status == R.APPEALED
    with pytest.raises(R.PenaltyRuleError) as late:
        service.appeal(second, people["sam"], "not me", now=local(2026, 11, 13, 0, 0, 0))
    db.session.rollback()
    assert "2026-11-12 23:59:59 (Asia/Shanghai)" in str(late.value.message)
    assert db.session.get(PenaltyNotice, second.id).status == R.PUBLISHED
    # the issuer is told of the appeal
    assert db.session.scalar(select(InboxMessage).where(
        InboxMessage.user_id == people["ida"].id, InboxMessage.kind == "penalty.appealed"))


def test_core_04_appeal_days_is_a_unit_setting(app, tree, people):
    settings.change(tree["region"], "core.appeal_days", "3", date(2026, 1, 1), approver=None)
    db.session.commit()
    notice = published(tree, people, local(2026, 11, 10, 10))
    assert R.last_appeal_moment(notice.appeal_deadline, settings.unit_zone(tree["north"])) == \
        local(2026, 11, 13, 23, 59, 59)


def test_core_03_decision_by_a_third_person_with_reason(app, tree, people):
    notice = published(tree, people, local(2026, 11, 10, 10))
    service.appeal(notice, people["sam"], "not me", now=local(2026, 11, 11, 9))
    db.session.commit()
    with pytest.raises(R.PenaltyRuleError, match="issuer"):
        service.decide(notice, people["ida"], R.UPHELD, "ok", now=local(2026, 11, 12))
    db.session.rollback()
    with pytest.raises(R.PenaltyRuleError, match="may not decide"):
        service.decide(notice, people["max"], R.UPHELD, "ok", now=local(2026, 11, 12))
    db.session.rollback()
    service.decide(notice, people["ivy"], R.WITHDRAWN, "the log shows a reply at 14:10",
                   now=local(2026, 11, 12))
    db.session.commit()
    assert (notice.status, notice.final_amount, notice.payroll_month) == (
        R.WITHDRAWN, Decimal("0.00"), None)
    assert notice.decision.decided_by_id == people["ivy"].id
    message = db.session.scalar(select(InboxMessage).where(
        InboxMessage.user_id == people["sam"].id, InboxMessage.kind == "penalty.decided"))
    assert "withdrawn" in message.title and message.body == "the log shows a reply at 14:10"
    assert _actions(notice.id)[-2:] == ["penalty.appealed", "penalty.decided"]


def test_core_05_finalise_due_marks_each_notice_once(app, tree, people):
    early = published(tree, people, local(2026, 11, 27, 10))  # window ends 11-30 00:00
    late = published(tree, people, local(2026, 11, 28, 10))  # window ends 12-01 00:00
    assert service.finalise_due(local(2026, 11, 29, 23, 59, 59)) == 0
    assert service.finalise_due(local(2026, 12, 3, 8)) == 2
    db.session.commit()
    assert service.finalise_due(local(2026, 12, 3, 9)) == 0
    assert (early.status, early.payroll_month, early.final_amount) == (
        R.FINAL, "2026-11", Decimal("200.00"))
    assert (late.status, late.payroll_month) == (R.FINAL, "2026-12")
    assert _actions(early.id)[-1] == "penalty.final"
    final_messages = db.session.scalars(select(InboxMessage.body).where(
        InboxMessage.kind == "penalty.final")).all()
    assert sorted(final_messages) == ["Deducted in 2026-11.", "Deducted in 2026-12."]


def test_core_05_finalise_command(app, tree, people):
    notice = published(tree, people, datetime.now(timezone.utc) - timedelta(days=5))
    result = app.test_cli_runner().invoke(args=["portal", "penalties-finalise"])
    assert result.exit_code == 0, result.output
    assert "1 penalties became final" in result.output
    db.session.expire_all()
    assert db.session.get(PenaltyNotice, notice.id).status == R.FINAL


def test_core_06_repeat_offences_count_verified_ones_and_escalate(app, tree, people):
    sam = people["sam"]
    notices = [published(tree, people, local(2026, 11, d, 10), occurred=local(2026, 11, d, 8),
                         evidence=f"ticket {d}") for d in (2, 4, 6)]
    assert [service.offence_number(n) for n in notices] == [1, 2, 3]
    assert service.escalation(notices[1]) is None
    assert service.escalation(notices[2]) == (3, 3, "dismissal required")
    # a withdrawn offence is not verified; a draft neither
    service.appeal(notices[0], sam, "not me", now=local(2026, 11, 3, 9))
    service.decide(notices[0], people["ivy"], R.WITHDRAWN, "wrong person", now=local(2026, 11, 3, 10))
    drafted(tree, sam, local(2026, 11, 7, 8), evidence="ticket 8")
    db.session.commit()
    assert service.offence_number(notices[0]) is None
    assert service.offence_number(notices[2]) == 2
    published(tree, people, local(2026, 11, 9, 10), occurred=local(2026, 11, 9, 8), evidence="t 9")
    [row] = service.repeat_offenders({tree["north"].id})
    assert (row["user"].id, row["rule_id"], row["count"], row["escalation"]) == (
        sam.id, "TST-P01", 3, (3, "dismissal required"))
    assert service.repeat_offenders({tree["club"].id}) == []


def test_core_06_reset_period_is_a_unit_setting(app, tree, people):
    published(tree, people, local(2025, 1, 10, 10), occurred=local(2025, 1, 10, 8))
    latest = published(tree, people, local(2026, 11, 10, 10), occurred=local(2026, 11, 10, 8))
    assert service.offence_number(latest) == 2
    settings.change(tree["company"], "core.repeat_reset_months", "12", date(2020, 1, 1), approver=None)
    db.session.commit()
    assert service.offence_number(latest) == 1
