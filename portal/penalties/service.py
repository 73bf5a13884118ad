"""The penalty ledger's service layer: drafts, publication, appeals, decisions, finality.

Each function checks the rules (``portal.penalties.rules``), changes the rows,
writes an audit entry (``portal.audit.record``) and the person's inbox message
in the current session.  **Nothing here commits**: the view, the command or the
sweep that calls it commits (so a refused action leaves nothing half-written,
and ``record_event`` joins the caller's transaction).

Refusals raise ``PenaltyRuleError`` (``.message`` for the person, ``.field`` for
the form).

Every step on a notice (publish, discard, appeal, decide) first takes the notice
(``portal.transitions.lock``): two auditors publishing at once, or a double tap on
"appeal", run one after the other and the second meets the same status check a late
second tap meets ("Only a draft can be published.").  One appeal and one decision per
notice are also unique constraints.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import current_app, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from portal.audit import record
from portal.audit.sealed import seal
from portal.auth.access import can
from portal.auth.models import User
from portal.db_types import utcnow
from portal.extensions import db
from portal.penalties import announce_issued, assess, inbox
from portal.penalties import rules as R
from portal.penalties.models import InboxMessage, PenaltyAppeal, PenaltyDecision, PenaltyNotice
from portal.plugin_api import DomainEvent, PenaltyDraft, PenaltyRule
from portal.penalties.settings import amount_setting_keys
from portal.settings import models as settings
from portal.transitions import lock, take_write_lock
from portal.units.models import Unit

ISSUE = "core.penalties.issue"
DECIDE = "core.penalties.decide"


def penalty_rules() -> dict[str, PenaltyRule]:
    return current_app.extensions["portal"].penalty_rules


def rule_of(rule_id: str) -> PenaltyRule | None:
    return penalty_rules().get(rule_id)


def rule_in_force(rule_id: str, unit: Unit, at: datetime | None = None) -> PenaltyRule | None:
    """The rule with the unit's amounts in force at ``at`` (CORE-10: an offence is judged by the
    amounts in force when it happened).  Each amount is a per-unit setting
    (``<plugin>.fine.<rule>``, or ``….min``/``….max`` for a range)."""
    rule = rule_of(rule_id)
    keys = None if rule is None else amount_setting_keys(
        current_app.extensions["portal"].rule_owner[rule_id], rule)
    if keys is None:
        return rule
    low, high = (settings.value(unit, key, at) for key in keys)
    return replace(rule, amount_min=min(low, high), amount_max=max(low, high))


def rule_title(rule_id: str, lang: str = "zh") -> str:
    rule = rule_of(rule_id)
    if rule is None:
        return ""
    return rule.title_en if lang == "en" else rule.title_zh


def _snapshot(notice: PenaltyNotice) -> dict[str, Any]:
    return {
        "status": notice.status, "user_id": notice.user_id, "rule_id": notice.rule_id,
        "amount": notice.amount, "final_amount": notice.final_amount,
        "payroll_month": notice.payroll_month, "appeal_deadline": notice.appeal_deadline,
    }


def _audit(action: str, notice: PenaltyNotice, before: dict | None, actor=None, **extra) -> None:
    after = {**_snapshot(notice), **extra}
    record(action, "penalty_notice", notice.id, unit_id=notice.unit_id, before=before, after=after,
           actor=actor)


# --- inbox ------------------------------------------------------------------------------------


def notify(user_id: int, kind: str, title, body="", link: str | None = None,
           unit_id: int | None = None) -> InboxMessage:
    """Put a message in a person's inbox, written in their language (lazy strings rendered now)."""
    return inbox.send(user_id, title, body, link=link, unit_id=unit_id, kind=kind)


unread_count = inbox.unread_count


def _notice_link(notice: PenaltyNotice) -> str:
    try:
        return url_for("penalties.detail", notice_id=notice.id)
    except RuntimeError:  # no request (a command): the app-relative path
        return f"/penalties/{notice.id}"


# --- drafts -----------------------------------------------------------------------------------


def _dedupe_key(event: DomainEvent, draft: PenaltyDraft) -> str:
    parts = (event.name, draft.rule_id, str(draft.unit_id), str(draft.user_id),
             draft.occurred_at.isoformat(), str(event.data.get("event_id", "")))  # e.g. one per deadline
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def record_event(event: DomainEvent) -> list[PenaltyNotice]:
    """Ask the plugins' assessment hooks about ``event`` and store their drafts (CORE-03).

    Idempotent: the same event proposing the same penalty again adds no second draft
    (the existing draft is returned).  Plugins and the deadline sweep call this.
    """
    out = []
    for draft in assess(event):
        if draft.user_id is None:
            continue  # nobody to penalise (an event without a responsible person)
        key = _dedupe_key(event, draft)
        existing = db.session.scalar(select(PenaltyNotice).where(PenaltyNotice.dedupe_key == key))
        if existing is not None:
            out.append(existing)
            continue
        amount = draft.amount
        if amount is None:
            rule = rule_in_force(draft.rule_id, db.session.get(Unit, draft.unit_id), draft.occurred_at)
            if rule.amount_min is not None and not rule.is_range:
                amount = rule.amount_min
        notice = PenaltyNotice(
            unit_id=draft.unit_id, user_id=draft.user_id, rule_id=draft.rule_id,
            amount=amount, evidence=draft.evidence or "", occurred_at=draft.occurred_at,
            source=R.ASSESSMENT, event_name=event.name, dedupe_key=key, status=R.DRAFT,
        )
        db.session.add(notice)
        db.session.flush()
        _audit("penalty.drafted", notice, None, event=event.name)
        out.append(notice)
    return out


def create_manual(*, unit: Unit, person: User, rule_id: str, evidence: str, occurred_at: datetime,
                  proposer: User, amount: Any = None) -> PenaltyNotice:
    """An auditor enters a draft with evidence; another auditor must publish it."""
    if not can(proposer, ISSUE, unit):
        raise R.PenaltyRuleError(_l("Only an auditor may propose penalties."))
    rule = rule_in_force(rule_id, unit, occurred_at)
    checked = R.check_new_draft(rule, person.id if person else None, evidence, amount)
    if checked is None and rule.amount_min is not None and not rule.is_range:
        checked = rule.amount_min  # a fixed fine: the unit's amount in force at the offence
    if occurred_at > utcnow():
        raise R.PenaltyRuleError(_l("The offence cannot be in the future."), "occurred_at")
    notice = PenaltyNotice(
        unit_id=unit.id, user_id=person.id, rule_id=rule.id, amount=checked,
        evidence=evidence.strip(), occurred_at=occurred_at, source=R.MANUAL,
        proposed_by_id=proposer.id, status=R.DRAFT,
    )
    db.session.add(notice)
    db.session.flush()
    _audit("penalty.drafted", notice, None, actor=proposer, evidence=notice.evidence)
    return notice


def _locked(notice: PenaltyNotice) -> PenaltyNotice:
    """Take ``notice`` for the rest of the transaction, refreshed with its appeal and decision."""
    lock(PenaltyNotice, notice.id, selectinload(PenaltyNotice.appeal), selectinload(PenaltyNotice.decision))
    return notice


def discard(notice: PenaltyNotice, actor: User, reason: str, now: datetime | None = None) -> None:
    _locked(notice)
    before = _snapshot(notice)
    R.discard(notice, actor_id=actor.id, may_issue=can(actor, ISSUE, notice.unit), reason=reason,
              now=now or utcnow())
    _audit("penalty.discarded", notice, before, actor=actor, reason=notice.discard_reason)


# --- publication, appeal, decision, finality --------------------------------------------------


def publish(notice: PenaltyNotice, actor: User, amount: Any = None,
            now: datetime | None = None) -> None:
    """Publish a draft: amount checked, deadline set, content sealed, the person told."""
    now = now or utcnow()
    _locked(notice)
    unit = notice.unit
    before = _snapshot(notice)
    R.publish(notice, actor_id=actor.id, may_issue=can(actor, ISSUE, unit),
              rule=rule_in_force(notice.rule_id, unit, notice.occurred_at) or _missing_rule(notice), amount=amount, now=now, zone=settings.unit_zone(unit),
              appeal_days=settings.value(unit, "core.appeal_days", now),
              deduction_mode=settings.value(unit, "core.deduction_month", now))
    seal(notice, now)
    db.session.flush()
    _audit("penalty.published", notice, before, actor=actor)
    last = R.last_appeal_moment(notice.appeal_deadline, settings.unit_zone(unit))
    notify(notice.user_id, "penalty.published",
           _l("Penalty notice %(rule)s: %(amount)s yuan", rule=notice.rule_id, amount=notice.amount),
           _l("You may appeal until %(deadline)s.", deadline=last.strftime("%Y-%m-%d %H:%M:%S")),
           link=_notice_link(notice), unit_id=notice.unit_id)
    announce_issued(PenaltyDraft(notice.rule_id, notice.unit_id, notice.user_id, notice.occurred_at,
                                 evidence=notice.evidence, amount=notice.amount))


def _missing_rule(notice: PenaltyNotice):
    raise R.PenaltyRuleError(_l("The rule %(rule)s is no longer installed.", rule=notice.rule_id))


def appeal(notice: PenaltyNotice, actor: User, text: str, now: datetime | None = None) -> PenaltyAppeal:
    """The penalised person appeals within the window (CORE-04)."""
    now = now or utcnow()
    _locked(notice)
    before = _snapshot(notice)
    facts = R.appeal(notice, actor_id=actor.id, text=text, now=now, zone=settings.unit_zone(notice.unit))
    row = PenaltyAppeal(notice_id=notice.id, user_id=facts.user_id, text=facts.text,
                        submitted_at=facts.submitted_at)
    seal(row, now)
    db.session.add(row)
    db.session.flush()
    _audit("penalty.appealed", notice, before, actor=actor, appeal=facts.text)
    if notice.published_by_id:
        notify(notice.published_by_id, "penalty.appealed",
               _l("Appeal against penalty %(rule)s (no. %(id)s)", rule=notice.rule_id, id=notice.id),
               facts.text, link=_notice_link(notice), unit_id=notice.unit_id)
    return row


def decide(notice: PenaltyNotice, actor: User, outcome: str, reason: str, amount: Any = None,
           now: datetime | None = None) -> PenaltyDecision:
    """Decide an appeal (upheld / reduced / withdrawn) by a third person, with a reason."""
    now = now or utcnow()
    _locked(notice)
    before = _snapshot(notice)
    facts = R.decide(notice, actor_id=actor.id, may_decide=can(actor, DECIDE, notice.unit),
                     outcome=outcome, amount=amount, reason=reason, now=now,
                     zone=settings.unit_zone(notice.unit))
    row = PenaltyDecision(notice_id=notice.id, outcome=facts.outcome, amount=facts.amount,
                          reason=facts.reason, decided_by_id=facts.decided_by_id,
                          decided_at=facts.decided_at, adjustment_month=facts.adjustment_month,
                          adjustment_amount=facts.adjustment_amount)
    seal(row, now)
    db.session.add(row)
    db.session.flush()
    _audit("penalty.decided", notice, before, actor=actor, outcome=facts.outcome,
           reason=facts.reason)
    if facts.outcome == R.UPHELD:
        title = _l("Your appeal on %(rule)s was not upheld: %(amount)s yuan stands",
                   rule=notice.rule_id, amount=facts.amount)
    elif facts.outcome == R.REDUCED:
        title = _l("Your appeal on %(rule)s: the penalty is reduced to %(amount)s yuan",
                   rule=notice.rule_id, amount=facts.amount)
    else:
        title = _l("Your appeal on %(rule)s: the penalty is withdrawn", rule=notice.rule_id)
    notify(notice.user_id, "penalty.decided", title, facts.reason, link=_notice_link(notice),
           unit_id=notice.unit_id)
    return row


def finalise_due(now: datetime | None = None, limit: int | None = None) -> int:
    """Make final every published notice whose appeal window has passed without an appeal.

    Safe to run from several hosts at once: on PostgreSQL the rows are taken with
    ``FOR UPDATE SKIP LOCKED``; the status check in ``rules.finalise`` keeps a row
    from being finalised twice.  Returns how many notices became final.
    """
    now = now or utcnow()
    query = (select(PenaltyNotice)
             .where(PenaltyNotice.status == R.PUBLISHED, PenaltyNotice.appeal_deadline <= now)
             .order_by(PenaltyNotice.appeal_deadline, PenaltyNotice.id))
    if limit:
        query = query.limit(limit)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=PenaltyNotice)
    else:
        take_write_lock()  # SQLite: a concurrent appeal or sweep waits, then this reads its result
    count = 0
    for notice in db.session.scalars(query).all():
        before = _snapshot(notice)
        if not R.finalise(notice, now=now, zone=settings.unit_zone(notice.unit)):
            continue
        count += 1
        _audit("penalty.final", notice, before)
        notify(notice.user_id, "penalty.final",
               _l("Penalty %(rule)s is final: %(amount)s yuan", rule=notice.rule_id,
                  amount=notice.final_amount),
               _l("Deducted in %(month)s.", month=notice.payroll_month or "-"),
               link=_notice_link(notice), unit_id=notice.unit_id)
    db.session.flush()
    return count


# --- repeat offences (CORE-06) ----------------------------------------------------------------


def offence_number(notice: PenaltyNotice) -> int | None:
    """Which verified offence of its rule this is for the person (None if it is not verified)."""
    if notice.status not in R.VERIFIED:
        return None
    rows = db.session.execute(select(PenaltyNotice.occurred_at, PenaltyNotice.id).where(
        PenaltyNotice.user_id == notice.user_id, PenaltyNotice.rule_id == notice.rule_id,
        PenaltyNotice.status.in_(R.VERIFIED))).all()
    unit = notice.unit
    return R.offence_number((notice.occurred_at, notice.id), [tuple(r) for r in rows],
                            settings.value(unit, "core.repeat_reset_months", notice.occurred_at),
                            settings.unit_zone(unit))


def escalation(notice: PenaltyNotice) -> tuple[int, int, str] | None:
    """(count, N, consequence) when the rule's escalation applies to this notice."""
    count = offence_number(notice)
    rule = rule_of(notice.rule_id)
    if count is None or rule is None:
        return None
    due = R.escalation_for(rule.escalation, count)
    return None if due is None else (count, *due)


def repeat_offenders(unit_ids: set[int], at: datetime | None = None, minimum: int = 2) -> list[dict]:
    """People with ``minimum``+ verified offences of one rule (offences in ``unit_ids``).

    The count is taken at the latest offence (with the unit's reset period, if any).
    """
    groups = db.session.execute(
        select(PenaltyNotice.user_id, PenaltyNotice.rule_id)
        .where(PenaltyNotice.unit_id.in_(unit_ids), PenaltyNotice.status.in_(R.VERIFIED))
        .group_by(PenaltyNotice.user_id, PenaltyNotice.rule_id)
        .having(func.count() >= minimum)).all()
    out = []
    for user_id, rule_id in groups:
        latest = db.session.scalar(
            select(PenaltyNotice).where(PenaltyNotice.user_id == user_id,
                                        PenaltyNotice.rule_id == rule_id,
                                        PenaltyNotice.status.in_(R.VERIFIED))
            .order_by(PenaltyNotice.occurred_at.desc(), PenaltyNotice.id.desc()).limit(1))
        count = offence_number(latest)
        if count is None or count < minimum:
            continue
        rule = rule_of(rule_id)
        due = R.escalation_for(rule.escalation, count) if rule else None
        out.append({"user": latest.user, "rule_id": rule_id, "rule": rule, "count": count,
                    "latest": latest, "escalation": due})
    out.sort(key=lambda r: (-r["count"], r["user"].username, r["rule_id"]))
    return out


def totals(amounts) -> Decimal:
    return sum((a for a in amounts if a is not None), Decimal("0.00"))
