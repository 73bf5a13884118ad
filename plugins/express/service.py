"""What people do with an inquiry: take it, forward it, check, reply, tell the customer.

Each function checks the ladder (``plugins.express.rules``), changes the records,
starts/meets the clocks (``portal.sla.service``) and writes the audit trail; none of
them commits — the route commits, so a refused step writes nothing half-way.

Every step on an inquiry first takes the inquiry (``portal.plugin_api.lock``, with its
requests, their checks and clocks, refreshed): two people — or one double tap — on the
same inquiry run one after the other, and the second is refused by the same check a late
second tap meets ("already with the destination station", "this inquiry is closed", "already
answered by …").  Partial unique indexes keep the "at most one" rules even so (one open
forward per inquiry and level, one open side request of a kind per hop, one result).  A
refused forward carries its audit entry; the caller rolls back and then writes it
with ``log_refusal`` (``express.forward_refused``), so that an auditor sees every
越级 attempt (EXP-R14).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from plugins.express import rules
from plugins.express.models import (
    CLOSED,
    OPEN,
    Check,
    CustomerUpdate,
    Hop,
    HopProgress,
    Inquiry,
    UnitLevel,
)
from portal.audit import record
from portal.auth.access import can
from portal.auth.models import User
from portal.db_types import utcnow
from portal.extensions import db
from portal.plugin_api import lock
from portal.settings import models as settings
from portal.sla import service as sla
from portal.sla.models import BREACHED
from portal.sla.models import OPEN as SLA_OPEN
from portal.units.models import Unit, plugin_enabled

HANDLE = "express.handle"
SUPERVISE = "express.supervise"
CUSTOMER_POLICY = "express.customer"
CUSTOMER_REPEAT_POLICY = "express.customer_repeat"


class ExpressError(rules.LadderError):
    """A step refused for a reason other than the ladder (closed, not yours, …)."""


# --- levels -------------------------------------------------------------------------------


def levels(units: list[Unit]) -> dict[int, str | None]:
    """The ladder level of each unit: set by an admin, else from its kind."""
    ids = [u.id for u in units]
    configured = {unit_id: level for unit_id, level in db.session.execute(
        select(UnitLevel.unit_id, UnitLevel.level).where(UnitLevel.unit_id.in_(ids)))} if ids else {}
    return {u.id: configured[u.id] if u.id in configured else rules.default_level(u.kind) for u in units}


def level_of(unit: Unit) -> str | None:
    return levels([unit])[unit.id]


def set_level(unit: Unit, level: str | None, actor: User, stranded_contact: str = "",
              stranded_phone: str = "") -> UnitLevel:
    if level is not None and level not in rules.LEVELS:
        raise ExpressError(_l("Unknown level."), "level", "level")
    row = db.session.scalar(select(UnitLevel).where(UnitLevel.unit_id == unit.id))
    before = None
    if row is None:
        row = UnitLevel(unit_id=unit.id)
        db.session.add(row)
    else:
        before = {"level": row.level, "stranded_contact": row.stranded_contact,
                  "stranded_phone": row.stranded_phone}
    row.level, row.updated_by_id = level, actor.id
    row.stranded_contact, row.stranded_phone = stranded_contact.strip(), stranded_phone.strip()
    db.session.flush()
    record("express.level_set", "express_unit_level", row.id, unit_id=unit.id, actor=actor, before=before,
           after={"level": level, "stranded_contact": row.stranded_contact,
                  "stranded_phone": row.stranded_phone})
    return row


# --- helpers --------------------------------------------------------------------------------


def _now(at: datetime | None) -> datetime:
    return at or utcnow()


def _local(at: datetime, unit: Unit) -> str:
    return at.astimezone(settings.unit_zone(unit)).strftime("%H:%M")


def _locked(inquiry: Inquiry) -> Inquiry:
    """Take ``inquiry`` for the rest of the transaction and refresh it, its requests, their
    checks, notes and clocks: a concurrent step on it waits here, then sees this one's change."""
    hops = selectinload(Inquiry.hops)
    lock(Inquiry, inquiry.id, hops.selectinload(Hop.checks), hops.selectinload(Hop.notes),
         hops.selectinload(Hop.deadline), selectinload(Inquiry.customer_deadline))
    return inquiry


def _require_open(inquiry: Inquiry) -> None:
    if inquiry.status != OPEN:
        raise ExpressError(_l("This inquiry is closed."), "closed")


def _require_handler(user: User, unit: Unit, permission: str = HANDLE) -> None:
    if not can(user, permission, unit):
        raise ExpressError(_l("You do not handle inquiries for %(unit)s.", unit=unit.name), "not_yours")


def _require_express(target: Unit) -> None:
    """A request goes only to a unit that uses the plugin: elsewhere nobody could open it."""
    if not plugin_enabled(target, "express"):
        raise ExpressError(_l("Choose where to send the inquiry."), "target_off", "target")


def _open_customer_deadline(inquiry: Inquiry):
    deadline = inquiry.customer_deadline
    if deadline is not None and (deadline.status == SLA_OPEN
                                 or (deadline.status == BREACHED and deadline.met_at is None)):
        return deadline
    return None


def _snapshot(inquiry: Inquiry) -> dict[str, Any]:
    return {"status": inquiry.status, "stage": inquiry.stage, "result": inquiry.result}


# --- intake (EXP-R01, R02) -------------------------------------------------------------------


REPEAT_WINDOW = "express.intake_repeat_minutes"


def recent_intake(unit: Unit, waybill: str, now: datetime) -> Inquiry | None:
    """The latest inquiry of ``waybill`` taken at ``unit`` within the unit's repeat window."""
    minutes = settings.value(unit, REPEAT_WINDOW, now)
    if not minutes:
        return None
    return db.session.scalars(
        select(Inquiry).where(Inquiry.unit_id == unit.id, Inquiry.waybill == waybill.strip(),
                              Inquiry.created_at > now - timedelta(minutes=minutes))
        .order_by(Inquiry.created_at.desc(), Inquiry.id.desc()).limit(1)).first()


def take_inquiry(unit: Unit, user: User, *, waybill: str, inquirer_name: str, inquirer_phone: str,
                 inquirer_org: str = "", notes: str = "", partner_id: int | None = None,
                 at: datetime | None = None, confirm_repeat: bool = False) -> Inquiry:
    """A station CS records the call; the customer's 30 minutes start now (EXP-R09).

    The same waybill taken at the same station within ``express.intake_repeat_minutes`` is
    asked about first (``confirm_repeat``): a double tap or a second agent on the same call
    does not open a second inquiry and a second customer clock.  Intakes at one station
    run one after the other (the station is locked), so two at once see each other.
    """
    now = _now(at)
    _require_handler(user, unit)
    if level_of(unit) != "station":
        raise ExpressError(_l("Inquiries are taken by station customer service."), "not_station")
    lock(Unit, unit.id)
    earlier = recent_intake(unit, waybill, now)
    if earlier is not None and not confirm_repeat:
        raise ExpressError(_l("%(name)s opened inquiry no. %(id)s about this waybill at %(time)s. "
                              "Tick “Open another inquiry about this waybill” only if this is a different call.",
                              name=earlier.created_by.display_name, id=earlier.id,
                              time=_local(earlier.created_at, unit)), "repeat", "confirm_repeat")
    inquiry = Inquiry(unit_id=unit.id, waybill=waybill.strip(), inquirer_name=inquirer_name.strip(),
                      inquirer_org=inquirer_org.strip(), inquirer_phone=rules.normalise_phone(inquirer_phone),
                      notes=notes.strip(), partner_id=partner_id, facts={}, status=OPEN, stage=1,
                      created_by_id=user.id, created_at=now)
    db.session.add(inquiry)
    db.session.flush()
    record("express.inquiry_taken", "express_inquiry", inquiry.id, unit_id=unit.id, actor=user,
           after={"waybill": inquiry.waybill, "inquirer": inquiry.inquirer_name,
                  "phone": inquiry.inquirer_phone, "org": inquiry.inquirer_org})
    deadline = sla.start(CUSTOMER_POLICY, unit, inquiry, owner=user, at=now, by=user)
    inquiry.customer_deadline_id = deadline.id if deadline else None
    inquiry.customer_deadline = deadline
    return inquiry


def close_signed(inquiry: Inquiry, user: User, *, signer: str, signed_at: datetime, answer: str,
                 at: datetime | None = None) -> Inquiry:
    """The tracking shows a signature: record it, answer the customer, close (EXP-R02)."""
    _locked(inquiry)
    _require_open(inquiry)
    _require_handler(user, inquiry.unit)
    if inquiry.stage > 1:
        raise ExpressError(_l("The inquiry is already with another level; close it with the "
                              "customer answer."), "forwarded")
    inquiry.signed_by, inquiry.signed_at = signer.strip(), signed_at
    inquiry.result, inquiry.result_detail, inquiry.result_at = "signed", signer.strip(), _now(at)
    record("express.signed_recorded", "express_inquiry", inquiry.id, unit_id=inquiry.unit_id, actor=user,
           after={"signer": inquiry.signed_by, "signed_at": signed_at})
    return tell_customer(inquiry, user, "result", answer, at=at)


# --- the customer's clock (EXP-R09) ----------------------------------------------------------


def tell_customer(inquiry: Inquiry, user: User, kind: str, text: str, at: datetime | None = None) -> Inquiry:
    """Progress resets the customer's clock (repeating, R09 reading); the result closes."""
    now = _now(at)
    _locked(inquiry)
    _require_open(inquiry)
    _require_handler(user, inquiry.unit)
    if kind not in ("progress", "result"):
        raise ExpressError(_l("Unknown kind of update."), "kind", "kind")
    if not text.strip():
        raise ExpressError(_l("Write what the customer was told."), "text", "text")
    deadline = _open_customer_deadline(inquiry)
    late = deadline is not None and deadline.due_at < now
    db.session.add(CustomerUpdate(inquiry_id=inquiry.id, kind=kind, text=text.strip(), by_id=user.id,
                                  at=now, late=late))
    if deadline is not None:
        sla.meet(deadline, by=user, at=now)
    before = _snapshot(inquiry)
    if kind == "progress":
        nxt = sla.start(CUSTOMER_REPEAT_POLICY, inquiry.unit, inquiry, owner=user, at=now, by=user)
        inquiry.customer_deadline_id = nxt.id if nxt else None
        inquiry.customer_deadline = nxt
        record("express.customer_progress", "express_inquiry", inquiry.id, unit_id=inquiry.unit_id,
               actor=user, after={"text": text.strip(), "late": late})
        return inquiry
    inquiry.customer_answer = text.strip()
    inquiry.status, inquiry.closed_at, inquiry.closed_by_id = CLOSED, now, user.id
    inquiry.customer_deadline_id, inquiry.customer_deadline = None, None
    for hop in inquiry.hops:
        if hop.deadline is not None and hop.deadline.status == SLA_OPEN:
            sla.cancel(hop.deadline, by=user, at=now, reason="inquiry closed")
    db.session.flush()
    record("express.inquiry_closed", "express_inquiry", inquiry.id, unit_id=inquiry.unit_id, actor=user,
           before=before, after={**_snapshot(inquiry), "answer": inquiry.customer_answer, "late": late})
    return inquiry


# --- hops: forward, side requests, take ------------------------------------------------------


def _start_hop(inquiry: Inquiry, parent: Hop | None, stage: int, kind: str, from_unit: Unit,
               target: Unit, user: User, message: str, now: datetime, policy: str) -> Hop:
    hop = Hop(inquiry_id=inquiry.id, parent_id=parent.id if parent else None, stage=stage, kind=kind,
              from_unit_id=from_unit.id, to_unit_id=target.id, sent_by_id=user.id, sent_at=now,
              message=message.strip(), escalated=False)
    db.session.add(hop)
    inquiry.hops.append(hop)
    db.session.flush()
    deadline = sla.start(policy, target, hop, owner=None, at=now, by=user)
    hop.deadline_id, hop.deadline = (deadline.id, deadline) if deadline else (None, None)
    record(f"express.{kind}_sent", "express_hop", hop.id, unit_id=target.id, actor=user,
           after={"inquiry": inquiry.id, "from_hop": parent.id if parent else None, "stage": stage,
                  "from": from_unit.code, "to": target.code,
                  "message": hop.message, "due_at": deadline.due_at if deadline else None})
    return hop


def _refuse(error: rules.LadderError, inquiry: Inquiry, user: User, from_unit: Unit, target: Unit | None,
            kind: str) -> None:
    """Raise ``error`` carrying its audit entry; ``log_refusal`` writes it after the rollback."""
    error.audit = {"inquiry_id": inquiry.id, "unit_id": from_unit.id, "actor": user,
                   "after": {"kind": kind, "code": error.code, "from": from_unit.code,
                             "to": target.code if target else None,
                             "to_level": level_of(target) if target else None, "stage": inquiry.stage}}
    raise error


def log_refusal(error: rules.LadderError) -> bool:
    """Record a refused forward (every 越级 attempt stays visible to the auditors, EXP-R14)."""
    audit = getattr(error, "audit", None)
    if audit is None:
        return False
    record("express.forward_refused", "express_inquiry", audit["inquiry_id"], unit_id=audit["unit_id"],
           actor=audit["actor"], after=audit["after"])
    return True


def done_steps(hop: Hop | None) -> set[str]:
    return {c.step for c in hop.checks} if hop is not None else set()


def forward(inquiry: Inquiry, user: User, target: Unit | None, *, from_hop: Hop | None = None,
            message: str = "", at: datetime | None = None) -> Hop:
    """Send the inquiry to the next level up (EXP-R03, R06, R07, R08; no 越级, R14).

    From a hop that has not answered yet, the forward is its answer "not found here,
    passed up" (R05: reply whether found or not) and stops its clock.
    """
    now = _now(at)
    _locked(inquiry)
    _require_open(inquiry)
    from_unit = from_hop.to_unit if from_hop is not None else inquiry.unit
    from_stage = from_hop.stage if from_hop is not None else 1
    _require_handler(user, from_unit)
    if from_hop is not None and from_hop.kind != rules.FORWARD:
        raise ExpressError(_l("Only the ladder's own levels forward an inquiry."), "kind")
    if from_hop is not None and (from_hop.escalated or from_hop.outcome == rules.FOUND):
        raise ExpressError(_l("This level has already answered or passed the inquiry on."), "answered")
    if from_hop is None and any(h.parent_id is None and h.kind == rules.FORWARD for h in inquiry.hops):
        raise ExpressError(_l("The inquiry is already with the destination station."), "answered")
    if target is None:
        raise ExpressError(_l("Choose where to send the inquiry."), "target", "target")
    try:
        stage = rules.check_forward(from_stage, inquiry.unit_id, target.id, level_of(target),
                                    agent_delivered=inquiry.partner_id is not None)
        missing = rules.forward_requirements(stage, inquiry.facts or {}, done_steps(from_hop), from_stage)
        if missing:
            names = ", ".join(str(FACT_LABELS.get(m, None) or rules.step_label(from_stage, m[5:]))
                              for m in missing)
            raise rules.LadderError(_l("Before passing it on, record: %(missing)s.", missing=names),
                                    "missing", "target")
    except rules.LadderError as error:
        _refuse(error, inquiry, user, from_unit, target, rules.FORWARD)
    _require_express(target)
    if from_hop is not None:
        if from_hop.is_open:
            _answer(from_hop, user, rules.NOT_FOUND,
                    message.strip() or str(_l("Not found here; passed to %(unit)s.", unit=target.name)), now)
        from_hop.escalated = True
    inquiry.stage = max(inquiry.stage, stage)
    return _start_hop(inquiry, from_hop, stage, rules.FORWARD, from_unit, target, user, message, now,
                      rules.HOP_POLICY[stage])


def request_help(inquiry: Inquiry, user: User, kind: str, from_hop: Hop, target: Unit | None, *,
                 message: str = "", at: datetime | None = None) -> Hop:
    """Center CS → its supervisor (40 min), supervisor → 辖区网管 (30 min) (EXP-R11)."""
    now = _now(at)
    _locked(inquiry)
    _require_open(inquiry)
    from_unit = from_hop.to_unit
    _require_handler(user, from_unit, SUPERVISE if kind == rules.ASSIST else HANDLE)
    if kind == rules.SUPERVISOR:
        target = from_unit
    if target is None:
        raise ExpressError(_l("Choose where to send the inquiry."), "target", "target")
    try:
        rules.check_side(kind, from_hop.stage, from_hop.kind, level_of(target), target.id == from_unit.id)
    except rules.LadderError as error:
        _refuse(error, inquiry, user, from_unit, target, kind)
    _require_express(target)
    if any(h.parent_id == from_hop.id and h.kind == kind and h.is_open for h in inquiry.hops):
        raise ExpressError(_l("That request is already open."), "duplicate")
    return _start_hop(inquiry, from_hop, from_hop.stage, kind, from_unit, target, user, message, now,
                      rules.SIDE_POLICY[kind])


def take(hop: Hop, user: User, at: datetime | None = None) -> Hop:
    """The receiver takes the request: its clock is now theirs (a breach is charged to them)."""
    _locked(hop.inquiry)
    _require_open(hop.inquiry)
    _require_handler(user, hop.to_unit, SUPERVISE if hop.kind == rules.SUPERVISOR else HANDLE)
    if not hop.is_open:
        raise ExpressError(_l("This request is already answered."), "answered")
    if hop.holder_id == user.id:
        return hop
    before = hop.holder_id
    hop.holder_id = user.id
    if hop.deadline is not None and hop.deadline.status == SLA_OPEN:
        sla.reassign(hop.deadline, user, by=user, at=_now(at))
    record("express.hop_taken", "express_hop", hop.id, unit_id=hop.to_unit_id, actor=user,
           before={"holder_id": before}, after={"holder_id": user.id})
    return hop


# --- checks and facts (EXP-R04, R07, R08) ----------------------------------------------------

FACT_LABELS = {
    "send_time": _l("Send time"),
    "expected_arrival": _l("Expected arrival"),
    "appearance": _l("Appearance"),
    "packaging": _l("Packaging"),
    "pieces": _l("Pieces"),
    "weight": _l("Weight (kg)"),
    "destination": _l("Destination"),
    "recipient": _l("Recipient name, address, contact"),
}


def save_facts(inquiry: Inquiry, hop: Hop, user: User, facts: dict[str, str], at: datetime | None = None) -> None:
    """The parcel data a level records (①); changes are audited with before/after."""
    _locked(inquiry)
    _require_open(inquiry)
    _require_handler(user, hop.to_unit)
    if not hop.is_open:
        raise ExpressError(_l("This request is already answered."), "answered")
    before = dict(inquiry.facts or {})
    after = {**before, **{k: v.strip() for k, v in facts.items() if k in FACT_LABELS}}
    if after == before:
        return
    inquiry.facts = after
    record("express.facts_saved", "express_inquiry", inquiry.id, unit_id=hop.to_unit_id, actor=user,
           before=before, after=after)
    if hop.holder_id is None:
        take(hop, user, at)


def record_check(hop: Hop, user: User, step: str, result: str, at: datetime | None = None) -> Check:
    """One step of the level's checklist, in the regulation's order."""
    now = _now(at)
    _locked(hop.inquiry)
    _require_open(hop.inquiry)
    _require_handler(user, hop.to_unit)
    if not hop.is_open:
        raise ExpressError(_l("This request is already answered."), "answered")
    if not result.strip():
        raise ExpressError(_l("Write what the check found."), "result", "result")
    rules.check_step(hop.stage, done_steps(hop), step)
    if step == "record" and rules.missing_facts(hop.inquiry.facts or {}) and hop.stage > 1:
        raise ExpressError(_l("Record the parcel data first: %(missing)s.", missing=", ".join(
            str(FACT_LABELS[m]) for m in rules.missing_facts(hop.inquiry.facts or {}))), "facts", "step")
    check = Check(hop_id=hop.id, step=step, result=result.strip(), by_id=user.id, at=now)
    db.session.add(check)
    hop.checks.append(check)
    db.session.flush()
    record("express.check_recorded", "express_hop", hop.id, unit_id=hop.to_unit_id, actor=user,
           after={"step": step, "result": check.result})
    if hop.holder_id is None:
        take(hop, user, now)
    return check


# --- replies (EXP-R05, R07, R11, R12) ---------------------------------------------------------


def _answer(hop: Hop, user: User, outcome: str, text: str, now: datetime) -> None:
    if hop.holder_id is None:
        take(hop, user, now)
    hop.outcome, hop.reply, hop.replied_by_id, hop.replied_at = outcome, text.strip(), user.id, now
    if hop.deadline is not None and hop.deadline.met_at is None and hop.deadline.status in (SLA_OPEN, BREACHED):
        sla.meet(hop.deadline, by=user, at=now)
    record("express.hop_replied", "express_hop", hop.id, unit_id=hop.to_unit_id, actor=user,
           after={"outcome": outcome, "reply": hop.reply, "inquiry": hop.inquiry_id})


def reply(hop: Hop, user: User, outcome: str, text: str, at: datetime | None = None) -> Hop:
    """Answer the level below: found / not found (always, R05), or progress where allowed."""
    now = _now(at)
    inquiry = _locked(hop.inquiry)
    _require_open(inquiry)
    _require_handler(user, hop.to_unit, SUPERVISE if hop.kind == rules.SUPERVISOR else HANDLE)
    if not hop.is_open:  # someone else answered first (or a second tap): say who
        raise ExpressError(_l("%(name)s already answered this request at %(time)s: %(outcome)s.",
                              name=hop.replied_by.display_name if hop.replied_by else "—",
                              time=_local(hop.replied_at, hop.to_unit),
                              outcome=rules.outcome_label(hop.outcome)), "answered", "outcome")
    if outcome not in rules.reply_outcomes(hop.stage, hop.kind):
        raise ExpressError(_l("Choose found or not found."), "outcome", "outcome")
    if not text.strip():
        raise ExpressError(_l("Write the details of the reply."), "text", "text")
    if outcome == rules.PROGRESS and not rules.progress_stops_clock(hop.stage, hop.kind):
        # 网络管理部 owes a result: progress is recorded, the clock runs on (EXP-R12)
        hop.notes.append(HopProgress(hop_id=hop.id, kind="progress", text=text.strip(), by_id=user.id, at=now))
        if hop.holder_id is None:
            take(hop, user, now)
        record("express.hop_progress", "express_hop", hop.id, unit_id=hop.to_unit_id, actor=user,
               after={"text": text.strip()})
        return hop
    _answer(hop, user, outcome, text, now)
    if outcome == rules.FOUND:
        before = _snapshot(inquiry)
        inquiry.result, inquiry.result_detail, inquiry.result_at = rules.FOUND, text.strip(), now
        record("express.result_found", "express_inquiry", inquiry.id, unit_id=inquiry.unit_id, actor=user,
               before=before, after=_snapshot(inquiry))
    return hop


def request_vp_intervention(hop: Hop, user: User, text: str, at: datetime | None = None) -> HopProgress:
    """网络管理部's director asks the VP in charge to intervene (EXP-R08).

    A record, not a forward: the VP takes no inquiry (EXP-R14), the department's clock
    runs on, and the result returns down the ladder through the department's reply.
    Only a supervisor or manager of the department (网管总监) may ask (readings).
    """
    now = _now(at)
    _locked(hop.inquiry)
    _require_open(hop.inquiry)
    if hop.stage != rules.TOP_STAGE or hop.kind != rules.FORWARD or not hop.is_open:
        raise ExpressError(_l("Only the network management department asks the VP to intervene, "
                              "while it holds the inquiry."), "vp_request")
    _require_handler(user, hop.to_unit, SUPERVISE)
    if not text.strip():
        raise ExpressError(_l("Write what the VP is asked to do."), "text", "text")
    note = HopProgress(hop_id=hop.id, kind="vp_request", text=text.strip(), by_id=user.id, at=now)
    hop.notes.append(note)
    db.session.flush()
    record("express.vp_intervention_requested", "express_hop", hop.id, unit_id=hop.to_unit_id, actor=user,
           after={"inquiry": hop.inquiry_id, "text": note.text})
    return note


# --- what a user sees -------------------------------------------------------------------------


def open_hops_for(unit_ids: set[int]):
    """Open requests waiting at ``unit_ids`` (for the inbox)."""
    return (select(Hop).join(Inquiry, Hop.inquiry_id == Inquiry.id)
            .where(Hop.to_unit_id.in_(unit_ids), Hop.replied_at.is_(None), Inquiry.status == OPEN))


def visible_inquiries(unit_ids: set[int]):
    """Inquiries taken in ``unit_ids`` or sent to / from them."""
    touched = select(Hop.inquiry_id).where(Hop.to_unit_id.in_(unit_ids) | Hop.from_unit_id.in_(unit_ids))
    return select(Inquiry).where(Inquiry.unit_id.in_(unit_ids) | Inquiry.id.in_(touched))
