"""Complaints against station people and the station manager's answer to 质控部 (EXP-P02..P07, R15).

* ``record_complaint`` — a supervisor, manager or auditor records a complaint about a
  person of a unit in their area: its kind says which rule it may become (EXP-P02
  quality still failing, P03 abuse, P04 / P04-M attitude of staff / of the station
  manager, P06 regulator or media, P07 second complaint, R15 inaction reported through
  the president's mailbox).
* ``verify`` — an auditor other than the recorder verifies (一经查证) or rejects it; a
  verified complaint raises ``express.complaint_verified`` and the core ledger stores the
  draft of its rule (none for R15, none for P06 unless the station both refused a plan
  and rejected 质控中心's).  ``record_decision`` keeps the leader's decision on an R15
  report.
* ``on_penalty_issued`` — a published 质控部 service-quality notice (EXP-P02/P03/P04/
  P04-M) opens a ``QualityResponse`` for the station manager with the
  ``express.p05_response`` clock; ``respond`` records the response and meets it.  A breach
  is drafted as EXP-P05 by the assessment hook (``plugins.express.penalties``).

Nothing here commits (the view commits); every change is audited.  Refusals raise
``ComplaintError`` with the messages per form field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, select
from sqlalchemy.orm import selectinload

from plugins.express import rules
from plugins.express import service as svc
from plugins.express.models import Complaint, Inquiry, QualityResponse
from plugins.express.penalties import COMPLAINT_RULES
from portal.audit import record
from portal.auth.access import can
from portal.auth.models import Membership, User
from portal.db_types import utcnow
from portal.extensions import db
from portal.penalties import rules as R
from portal.penalties import service as penalties
from portal.penalties.models import PenaltyNotice
from portal.plugin_api import DomainEvent, PenaltyDraft, lock
from portal.settings import models as settings
from portal.sla import service as sla
from portal.sla.models import BREACHED
from portal.sla.models import OPEN as SLA_OPEN
from portal.units.models import Unit, plugin_enabled

RECORD = "express.complaints"
VERIFY = "express.verify"
EVENT = "express.complaint_verified"
P05_POLICY = "express.p05_response"
P05_BREACH_EVENT = f"{P05_POLICY}.breached"

OPEN, VERIFIED, REJECTED = "open", "verified", "rejected"
STATUSES = (OPEN, VERIFIED, REJECTED)
KINDS = tuple(COMPLAINT_RULES)
STATION_KINDS = frozenset({"quality", "attitude_staff", "attitude_manager", "regulator"})
# the written quality notices of 质控部 the station manager must answer (S0:102, EXP-P05)
QUALITY_RULES = frozenset({"EXP-P02", "EXP-P03", "EXP-P04", "EXP-P04-M"})
MANAGER = "manager"


def kind_labels() -> dict[str, Any]:
    return {
        "quality": _l("Service quality still failing after rectification and training, not "
                      "reassigned (EXP-P02)"),
        "abuse": _l("Abuse or insults during an inquiry (EXP-P03)"),
        "attitude_staff": _l("Customer complaint about a station staff member (EXP-P04)"),
        "attitude_manager": _l("Customer complaint about the station manager (EXP-P04-M)"),
        "regulator": _l("Complaint to the consumer association, 工商, postal authority or media (EXP-P06)"),
        "secondary": _l("Second complaint: the first was not handled in time (EXP-P07)"),
        "inaction": _l("Inaction reported through the president's mailbox (EXP-R15)"),
    }


def status_labels() -> dict[str, Any]:
    return {OPEN: _l("Open"), VERIFIED: _l("Verified"), REJECTED: _l("Rejected")}


class ComplaintError(ValueError):
    """A refused action: ``errors`` maps a form field (``None``: the whole form) to its message."""

    def __init__(self, errors: dict[str | None, Any], status: int = 400):
        super().__init__("; ".join(str(m) for m in errors.values()))
        self.errors = errors
        self.status = status


def _refuse(message: Any, field: str | None = None, status: int = 400):
    raise ComplaintError({field: message}, status)


def _text(value: str | None) -> str:
    return (value or "").strip()


def _local(at: datetime | None, unit: Unit) -> str:
    return at.astimezone(settings.unit_zone(unit)).strftime("%Y-%m-%d %H:%M") if at else "-"


def _link(endpoint: str, fallback: str, **values) -> str:
    try:
        return url_for(endpoint, **values)
    except RuntimeError:  # no request (a command or the sweep): the app-relative path
        return fallback


# --- who and where ------------------------------------------------------------------------


def units_in(unit_ids: set[int]) -> list[Unit]:
    """Units of the area with the express plugin on: where a complaint may be recorded."""
    if not unit_ids:
        return []
    units = db.session.scalars(select(Unit).where(Unit.id.in_(unit_ids)).order_by(Unit.code)).all()
    return [u for u in units if plugin_enabled(u, "express")]


def people_in(units: list[Unit]) -> list[tuple[User, list[tuple[Unit, str]]]]:
    """Everyone holding a role directly on one of ``units``, with those roles."""
    by_id = {u.id: u for u in units}
    if not by_id:
        return []
    rows = db.session.execute(
        select(User, Membership.unit_id, Membership.role).join(Membership, Membership.user_id == User.id)
        .where(Membership.unit_id.in_(by_id), User.active.is_(True))
        .order_by(User.display_name, User.id, Membership.unit_id)).all()
    out: dict[int, tuple[User, list]] = {}
    for user, unit_id, role in rows:
        out.setdefault(user.id, (user, []))[1].append((by_id[unit_id], role))
    return list(out.values())


def _roles(user_id: int, unit_id: int) -> set[str]:
    return set(db.session.scalars(select(Membership.role).where(
        Membership.user_id == user_id, Membership.unit_id == unit_id)))


def station_manager(unit: Unit) -> User | None:
    """The manager of ``unit`` (a role held on the unit itself); None if it has none."""
    return db.session.scalar(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.unit_id == unit.id, Membership.role == MANAGER, User.active.is_(True))
        .order_by(User.id).limit(1))


def _zone(unit: Unit | None) -> ZoneInfo:
    if unit is not None:
        return settings.unit_zone(unit)
    return ZoneInfo(current_app.config["PORTAL_TIMEZONE"])


def visible_complaints(unit_ids: set[int]):
    return select(Complaint).where(Complaint.unit_id.in_(unit_ids))


# --- recording ----------------------------------------------------------------------------


def record_complaint(actor: User, unit_ids: set[int], *, kind: str, unit_id: int | None,
                     person_id: int | None, received_local: datetime | None, description: str,
                     inquiry_id: int | None = None, earlier_id: int | None = None,
                     station_plan: str = "", plan_refused: bool = False,
                     center_plan_rejected: bool = False, now: datetime | None = None) -> Complaint:
    """Record a complaint about a person of a unit in ``unit_ids``; all fields are checked first.

    ``received_local`` is the local (naive) time the complaint was received, read in the unit's zone.
    """
    now = now or utcnow()
    errors: dict[str | None, Any] = {}
    if kind not in KINDS:
        errors["kind"] = _l("Choose the kind of complaint.")
    units = {u.id: u for u in units_in(unit_ids)}
    unit = units.get(unit_id) if unit_id else None
    if unit is None:
        errors["unit_id"] = _l("Choose a unit of your area.")
    elif kind in STATION_KINDS and svc.level_of(unit) != "station":
        errors["unit_id"] = _l("This kind of complaint is about a station: choose a station.")
    person = db.session.get(User, person_id) if person_id else None
    roles = _roles(person.id, unit.id) if person is not None and unit is not None else set()
    if person is None:
        errors["person_id"] = _l("Choose the person the complaint is about.")
    elif unit is not None and "unit_id" not in errors:
        if not roles:
            errors["person_id"] = _l("%(name)s does not work at %(unit)s.", name=person.display_name,
                                     unit=unit.name)
        elif kind == "attitude_manager" and MANAGER not in roles:
            errors["person_id"] = _l("%(name)s is not the manager of %(unit)s: choose the station "
                                     "manager, or a complaint about a staff member (EXP-P04).",
                                     name=person.display_name, unit=unit.name)
        elif kind == "attitude_staff" and MANAGER in roles:
            errors["person_id"] = _l("%(name)s is the station manager: choose a complaint about the "
                                     "station manager (EXP-P04-M).", name=person.display_name)
    received_at = None
    if received_local is None:
        errors["received_at"] = _l("Enter when the complaint was received.")
    else:
        received_at = rules.local_instant(received_local, _zone(unit)) if received_local.tzinfo is None \
            else received_local
        if received_at is None:
            errors["received_at"] = rules.date_range_error()
        elif received_at > now:
            errors["received_at"] = _l("The time received cannot be in the future.")
    description = _text(description)
    if not description:
        errors["description"] = _l("Describe the complaint.")
    if inquiry_id and db.session.scalar(
            svc.visible_inquiries(unit_ids).where(Inquiry.id == inquiry_id)) is None:
        errors["inquiry_id"] = _l("There is no inquiry no. %(n)s in your area.", n=inquiry_id)
    earlier = None
    if earlier_id and kind in KINDS and kind != "secondary":
        errors["earlier_id"] = _l("Only a second complaint (EXP-P07) refers to a first one: clear this "
                                  "number or choose the second-complaint kind.")
    if kind == "secondary":
        if not earlier_id:
            errors["earlier_id"] = _l("Give the number of the first complaint (EXP-P07).")
        else:
            earlier = db.session.scalar(visible_complaints(unit_ids).where(Complaint.id == earlier_id))
            if earlier is None:
                errors["earlier_id"] = _l("There is no complaint no. %(n)s in your area.", n=earlier_id)
            elif unit is not None and earlier.unit_id != unit.id:
                errors["earlier_id"] = _l("Complaint no. %(n)s is about another unit (%(unit)s).",
                                          n=earlier.id, unit=earlier.unit.name)
            elif received_at is not None and "received_at" not in errors \
                    and received_at <= earlier.received_at:
                errors["received_at"] = _l("A second complaint is received after the first (%(at)s).",
                                           at=_local(earlier.received_at, earlier.unit))
    station_plan = _text(station_plan)
    if kind == "regulator" and not station_plan and not plan_refused:
        errors["station_plan"] = _l("Record the station's handling plan, or tick that the station "
                                    "refused to give one.")
    if errors:
        raise ComplaintError(errors)
    regulator = kind == "regulator"
    complaint = Complaint(
        unit_id=unit.id, person_id=person.id, kind=kind, received_at=received_at, description=description,
        inquiry_id=inquiry_id or None, earlier_id=earlier.id if earlier else None,
        station_plan=station_plan if regulator else "", plan_refused=bool(plan_refused) and regulator,
        center_plan_rejected=bool(center_plan_rejected) and regulator, status=OPEN,
        recorded_by_id=actor.id, recorded_at=now)
    db.session.add(complaint)
    db.session.flush()
    record("express.complaint_recorded", "express_complaint", complaint.id, unit_id=unit.id, actor=actor,
           after=_snapshot(complaint))
    return complaint


def _snapshot(c: Complaint) -> dict[str, Any]:
    return {"kind": c.kind, "unit_id": c.unit_id, "person_id": c.person_id, "received_at": c.received_at,
            "description": c.description, "inquiry_id": c.inquiry_id, "earlier_id": c.earlier_id,
            "station_plan": c.station_plan, "plan_refused": c.plan_refused,
            "center_plan_rejected": c.center_plan_rejected, "status": c.status, "finding": c.finding,
            "verified_by_id": c.verified_by_id, "decision": c.decision}


# --- verification -------------------------------------------------------------------------


def rule_for(complaint: Complaint) -> str | None:
    """The rule a verified complaint proposes (None: recorded only)."""
    rule = COMPLAINT_RULES.get(complaint.kind)
    if complaint.kind == "regulator" and not (complaint.plan_refused and complaint.center_plan_rejected):
        return None  # EXP-P06 fines only a station that refuses a plan AND rejects 质控中心's
    return rule


def _evidence(c: Complaint, verifier: User) -> str:
    lines = [f"express complaint no. {c.id} ({rule_for(c) or c.kind}), received "
             f"{_local(c.received_at, c.unit)}: {c.description}"]
    if c.inquiry_id:
        lines.append(f"inquiry no. {c.inquiry_id}")
    if c.kind == "quality":
        lines.append("rectification and training given; still failing; not reassigned (S0:92)")
    if c.kind == "regulator":
        lines.append(f"station plan: {c.station_plan or '-'}; "
                     f"plan refused: {'yes' if c.plan_refused else 'no'}; "
                     f"质控中心's plan rejected: {'yes' if c.center_plan_rejected else 'no'} (S0:106)")
    if c.earlier_id:
        lines.append(f"first complaint: no. {c.earlier_id} (S0:108)")
    lines.append(f"verified by {verifier.display_name}: {c.finding}")
    return "\n".join(lines)


def may_verify(user: User, complaint: Complaint) -> bool:
    return (complaint.status == OPEN and can(user, VERIFY, complaint.unit)
            and user.id not in (complaint.recorded_by_id, complaint.person_id))


def verify(complaint: Complaint, actor: User, outcome: str, finding: str, *, conditions_met: bool = False,
           plan_refused: bool | None = None, center_plan_rejected: bool | None = None,
           now: datetime | None = None) -> list[PenaltyNotice]:
    """Verify (一经查证) or reject an open complaint; a verified one drafts its rule's penalty."""
    now = now or utcnow()
    lock(Complaint, complaint.id)  # a second inspector at the same moment waits, then finds it verified
    if not can(actor, VERIFY, complaint.unit):
        _refuse(_l("Only the inspection department may verify complaints."), status=403)
    if actor.id == complaint.recorded_by_id:
        _refuse(_l("You recorded this complaint; another auditor must verify it."), status=403)
    if actor.id == complaint.person_id:
        _refuse(_l("You cannot verify a complaint about yourself."), status=403)
    if complaint.status != OPEN:
        _refuse(_l("This complaint has already been verified or rejected."))
    errors: dict[str | None, Any] = {}
    if outcome not in (VERIFIED, REJECTED):
        errors["outcome"] = _l("Choose verified or rejected.")
    finding = _text(finding)
    if not finding:
        errors["finding"] = _l("Describe what the inspection found.")
    if outcome == VERIFIED and complaint.kind == "quality" and not conditions_met:
        errors["conditions_met"] = _l("EXP-P02 applies only to a person who still fails after "
                                      "rectification and training and was not reassigned; "
                                      "otherwise reject the complaint.")
    if errors:
        raise ComplaintError(errors)
    before = _snapshot(complaint)
    if complaint.kind == "regulator":
        if plan_refused is not None:
            complaint.plan_refused = bool(plan_refused)
        if center_plan_rejected is not None:
            complaint.center_plan_rejected = bool(center_plan_rejected)
    complaint.status = outcome
    complaint.finding = finding
    complaint.verified_by_id = actor.id
    complaint.verified_at = now
    db.session.flush()
    verified = outcome == VERIFIED
    after = {**_snapshot(complaint), "rule": rule_for(complaint) if verified else None}
    if verified and complaint.kind == "quality":
        after["conditions_met"] = True  # rectified, trained, still failing, not reassigned
    record("express.complaint_verified" if verified else "express.complaint_rejected", "express_complaint",
           complaint.id, unit_id=complaint.unit_id, actor=actor, before=before, after=after)
    if not verified:
        return []
    return penalties.record_event(DomainEvent(
        EVENT, complaint.unit_id, complaint.received_at, subject_user_id=complaint.person_id,
        data={"rule": rule_for(complaint), "evidence": _evidence(complaint, actor),
              "complaint_id": complaint.id, "kind": complaint.kind,
              "event_id": f"express_complaint:{complaint.id}"}))


def may_decide(user: User, complaint: Complaint) -> bool:
    return (complaint.kind == "inaction" and complaint.status == VERIFIED and not complaint.decision
            and can(user, VERIFY, complaint.unit) and user.id != complaint.person_id)


def record_decision(complaint: Complaint, actor: User, decision: str, now: datetime | None = None) -> None:
    """EXP-R15: 监查部 reports the verified inaction; the leader's decision is recorded."""
    lock(Complaint, complaint.id)
    if not can(actor, VERIFY, complaint.unit):
        _refuse(_l("Only the inspection department records the leader's decision."), status=403)
    if actor.id == complaint.person_id:
        _refuse(_l("You cannot record the decision on a report about yourself."), status=403)
    if complaint.kind != "inaction":
        _refuse(_l("Only a report of inaction (EXP-R15) takes a leader's decision."))
    if complaint.status != VERIFIED:
        _refuse(_l("Verify the report before recording the leader's decision."))
    if complaint.decision:
        _refuse(_l("The leader's decision has already been recorded."))
    decision = _text(decision)
    if not decision:
        _refuse(_l("Record what the leader in charge decided."), "decision")
    before = _snapshot(complaint)
    complaint.decision = decision
    db.session.flush()
    record("express.complaint_decided", "express_complaint", complaint.id, unit_id=complaint.unit_id,
           actor=actor, before=before, after={**_snapshot(complaint), "decided_at": now or utcnow()})


# --- the ledger as the complaint page shows it --------------------------------------------


def notice_for(complaint: Complaint) -> PenaltyNotice | None:
    """The draft or notice that verifying ``complaint`` put in the ledger."""
    rule = rule_for(complaint)
    if complaint.status != VERIFIED or rule is None:
        return None
    return db.session.scalar(
        select(PenaltyNotice).where(
            PenaltyNotice.event_name == EVENT, PenaltyNotice.rule_id == rule,
            PenaltyNotice.unit_id == complaint.unit_id, PenaltyNotice.user_id == complaint.person_id,
            PenaltyNotice.occurred_at == complaint.received_at,
            PenaltyNotice.evidence.like(f"express complaint no. {complaint.id} (%"))
        .order_by(PenaltyNotice.id).limit(1))


def repeat_info(complaint: Complaint, notice: PenaltyNotice | None) -> dict | None:
    """The person's count of verified offences of the rule and the escalation due (CORE-06).

    Published (or final) notice: what the core says of it.  Otherwise: which offence it
    would be once published, by the core's own counting.
    """
    rule_id = rule_for(complaint) or COMPLAINT_RULES.get(complaint.kind)
    rule = penalties.rule_of(rule_id) if rule_id else None
    if rule is None or not rule.escalation or complaint.status == REJECTED:
        return None
    if notice is not None and notice.status in R.VERIFIED:
        count = penalties.offence_number(notice)
        due = penalties.escalation(notice)
        return {"rule": rule_id, "count": count, "final": True,
                "threshold": due[1] if due else None, "consequence": due[2] if due else None}
    rows = db.session.execute(select(PenaltyNotice.occurred_at, PenaltyNotice.id).where(
        PenaltyNotice.user_id == complaint.person_id, PenaltyNotice.rule_id == rule_id,
        PenaltyNotice.status.in_(R.VERIFIED))).all()
    unit = complaint.unit
    count = R.offence_number((complaint.received_at, 2**62), [tuple(r) for r in rows],
                             settings.value(unit, "core.repeat_reset_months", complaint.received_at),
                             settings.unit_zone(unit))
    due = R.escalation_for(rule.escalation, count)
    return {"rule": rule_id, "count": count, "final": False, "published": count - 1,
            "threshold": due[0] if due else None, "consequence": due[1] if due else None}


def response_for_notice(notice: PenaltyNotice | None) -> QualityResponse | None:
    if notice is None:
        return None
    return db.session.scalar(select(QualityResponse).where(QualityResponse.notice_id == notice.id))


# --- EXP-P05: the station manager answers 质控部's notice -----------------------------------


def on_penalty_issued(draft: PenaltyDraft) -> QualityResponse | None:
    """A published 质控部 service-quality notice opens the station manager's response (S0:102)."""
    if draft.rule_id not in QUALITY_RULES:
        return None
    notice = db.session.scalar(
        select(PenaltyNotice).where(
            PenaltyNotice.rule_id == draft.rule_id, PenaltyNotice.user_id == draft.user_id,
            PenaltyNotice.unit_id == draft.unit_id, PenaltyNotice.occurred_at == draft.occurred_at,
            PenaltyNotice.status == R.PUBLISHED,
            ~exists().where(QualityResponse.notice_id == PenaltyNotice.id))
        .order_by(PenaltyNotice.published_at.desc(), PenaltyNotice.id.desc()).limit(1))
    if notice is None:
        return None
    unit = notice.unit
    manager = station_manager(unit)
    response = QualityResponse(notice_id=notice.id, unit_id=unit.id,
                               manager_id=manager.id if manager else None, created_at=notice.published_at)
    db.session.add(response)
    db.session.flush()
    deadline = sla.start(P05_POLICY, unit, response, owner=manager, at=notice.published_at)
    response.deadline = deadline
    db.session.flush()
    record("express.quality_response_opened", "express_quality_response", response.id, unit_id=unit.id,
           after={"notice_id": notice.id, "rule": notice.rule_id, "manager_id": response.manager_id,
                  "due_at": deadline.due_at if deadline else None})
    link = _link("express.response_detail", f"/express/responses/{response.id}", response_id=response.id)
    if manager is not None:
        penalties.notify(manager.id, "express.quality_response",
                         _l("Penalty notice %(rule)s for %(name)s: report to 质控部", rule=notice.rule_id,
                            name=notice.user.display_name),
                         _l("Educate the staff, apologise to the customer and report the handling "
                            "method and improvement measures (EXP-P05)."), link=link, unit_id=unit.id)
        due = penalties.escalation(notice)
        if due is not None and notice.rule_id == "EXP-P04":
            penalties.notify(manager.id, "express.escalation",
                             _l("%(name)s: verified complaint no. %(n)s", name=notice.user.display_name,
                                n=due[0]), due[2], link=link, unit_id=unit.id)
    return response


def may_respond(user: User, response: QualityResponse) -> bool:
    if response.responded_at is not None:
        return False
    owner = response.deadline.owner_id if response.deadline is not None else None
    return user.id in (response.manager_id, owner) or MANAGER in _roles(user.id, response.unit_id)


def respond(response: QualityResponse, actor: User, *, educated: bool, apologised: bool, handling: str,
            measures: str, now: datetime | None = None) -> QualityResponse:
    """The station manager reports to 质控部: staff educated, apology, handling, measures (S0:102)."""
    now = now or utcnow()
    lock(QualityResponse, response.id, selectinload(QualityResponse.deadline))  # one response, once
    if response.responded_at is not None:
        _refuse(_l("The response to this notice has already been recorded."))
    if not may_respond(actor, response):
        _refuse(_l("Only the station manager answers a 质控部 penalty notice."), status=403)
    errors: dict[str | None, Any] = {}
    if not educated:
        errors["educated"] = _l("Educate the staff member first, then confirm it here.")
    if not apologised:
        errors["apologised"] = _l("Apologise to the customer first, then confirm it here.")
    handling, measures = _text(handling), _text(measures)
    if not handling:
        errors["handling"] = _l("Describe how the complaint was handled.")
    if not measures:
        errors["measures"] = _l("Describe the improvement measures.")
    if errors:
        raise ComplaintError(errors)
    response.educated, response.apologised = True, True
    response.handling, response.measures = handling, measures
    response.responded_by_id, response.responded_at = actor.id, now
    db.session.flush()
    deadline = response.deadline
    late = False
    if deadline is not None and deadline.met_at is None and deadline.status in (SLA_OPEN, BREACHED):
        deadline = sla.meet(deadline, by=actor, at=now)
        late = deadline.status == BREACHED
    record("express.quality_response_recorded", "express_quality_response", response.id,
           unit_id=response.unit_id, actor=actor, before={"responded_at": None},
           after={"educated": True, "apologised": True, "handling": handling, "measures": measures,
                  "responded_at": now, "late": late})
    notice = db.session.get(PenaltyNotice, response.notice_id)
    if notice is not None and notice.published_by_id:
        penalties.notify(notice.published_by_id, "express.quality_response",
                         _l("%(unit)s answered penalty notice %(id)s (%(rule)s)", unit=response.unit.name,
                            id=notice.id, rule=notice.rule_id), measures,
                         link=_link("express.response_detail", f"/express/responses/{response.id}",
                                    response_id=response.id), unit_id=response.unit_id)
    return response


def breach_notice(response: QualityResponse) -> PenaltyNotice | None:
    """The EXP-P05 draft or notice the sweep proposed when the response was late."""
    deadline = response.deadline
    if deadline is None or deadline.breached_at is None:
        return None
    return db.session.scalar(
        select(PenaltyNotice).where(
            PenaltyNotice.event_name == P05_BREACH_EVENT, PenaltyNotice.rule_id == "EXP-P05",
            PenaltyNotice.unit_id == response.unit_id, PenaltyNotice.occurred_at == deadline.due_at,
            PenaltyNotice.user_id == deadline.breached_owner_id)
        .order_by(PenaltyNotice.id).limit(1))


def responses_in(unit_ids: set[int], include_answered: bool = False,
                 limit: int = 200) -> list[QualityResponse]:
    query = (select(QualityResponse).where(QualityResponse.unit_id.in_(unit_ids))
             .options(selectinload(QualityResponse.deadline), selectinload(QualityResponse.unit))
             .order_by(QualityResponse.responded_at.is_not(None), QualityResponse.created_at.desc(),
                       QualityResponse.id.desc()).limit(limit))
    if not include_answered:
        query = query.where(QualityResponse.responded_at.is_(None))
    return list(db.session.scalars(query))


def notices_by_id(ids: list[int]) -> dict[int, PenaltyNotice]:
    if not ids:
        return {}
    return {n.id: n for n in db.session.scalars(
        select(PenaltyNotice).where(PenaltyNotice.id.in_(ids)).options(selectinload(PenaltyNotice.user)))}


def counts_by_status(unit_ids: set[int]) -> dict[str, int]:
    rows = db.session.execute(select(Complaint.status, func.count()).where(Complaint.unit_id.in_(unit_ids))
                              .group_by(Complaint.status)).all()
    return {status: n for status, n in rows}
