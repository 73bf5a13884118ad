"""Refused forwards (越级 attempts, EXP-R14) for the auditors, who may turn one into the
100 元 penalty — never automatically (see the readings)."""

from __future__ import annotations

from flask import abort, flash, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from plugins.express.routes import bp
from portal.audit import AuditEntry
from portal.auth.access import permission_required, scope_ids
from portal.auth.models import User
from portal.db_types import utcnow
from portal.extensions import db
from portal.htmx import redirect_to
from portal.penalties import service as penalties
from portal.penalties.models import PenaltyNotice
from portal.penalties.rules import PenaltyRuleError
from portal.units.models import Unit

ISSUE = "core.penalties.issue"
LIMIT = 200


def _evidence_tag(entry: AuditEntry) -> str:
    return f"[refused forward #{entry.id}]"


def _proposed(entries: list[AuditEntry]) -> dict[int, PenaltyNotice]:
    """The EXP-R14 drafts/notices already made from these refusals (by the tag in their evidence)."""
    if not entries:
        return {}
    notices = db.session.scalars(select(PenaltyNotice).where(
        PenaltyNotice.rule_id == "EXP-R14", PenaltyNotice.unit_id.in_({e.unit_id for e in entries}),
        PenaltyNotice.evidence.like("[refused forward #%"))).all()
    by_tag = {n.evidence.split("]", 1)[0] + "]": n for n in notices}
    return {e.id: by_tag[_evidence_tag(e)] for e in entries if _evidence_tag(e) in by_tag}


def _entry_or_404(entry_id: int) -> AuditEntry:
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.id == entry_id, AuditEntry.action == "express.forward_refused",
        AuditEntry.unit_id.in_(scope_ids())))
    if entry is None:
        abort(404)
    return entry


@bp.route("/refused")
@permission_required(ISSUE)
def refused():
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "express.forward_refused",
                                 AuditEntry.unit_id.in_(scope_ids()))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(LIMIT)).all()
    units = {u.id: u for u in db.session.scalars(select(Unit).where(Unit.id.in_({e.unit_id for e in entries})))}
    return render_template("express/refused.html", entries=entries, units=units, proposed=_proposed(entries),
                           now=utcnow())


@bp.route("/refused/<int:entry_id>/propose", methods=["POST"])
@permission_required(ISSUE)
def propose_r14(entry_id: int):
    entry = _entry_or_404(entry_id)
    existing = _proposed([entry]).get(entry.id)
    if existing is not None:
        return redirect_to(url_for("penalties.detail", notice_id=existing.id))
    person = db.session.get(User, entry.actor_id) if entry.actor_id else None
    after = entry.after or {}
    evidence = (f"{_evidence_tag(entry)} {entry.actor_name} sent inquiry #{entry.object_id} from "
                f"{after.get('from')} to {after.get('to')} ({after.get('to_level') or '—'}), skipping the "
                f"inquiry levels (refused: {after.get('code')}).")
    try:
        if person is None:
            raise PenaltyRuleError(_("The person who tried it is unknown."))
        notice = penalties.create_manual(unit=db.session.get(Unit, entry.unit_id), person=person,
                                         rule_id="EXP-R14", evidence=evidence, occurred_at=entry.at,
                                         proposer=current_user)
    except PenaltyRuleError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect_to(url_for("express.refused"))
    db.session.commit()
    flash(_("EXP-R14 draft proposed; another auditor publishes it."), "success")
    return redirect_to(url_for("penalties.detail", notice_id=notice.id))

