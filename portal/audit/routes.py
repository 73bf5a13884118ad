"""The auditor's view of the audit trail (CORE-08): ``/audit/``.

Entries of the current unit's subtree, newest first, filtered by unit, actor,
action and local date range, paged by ``seq`` (keyset: ``?before=<seq>``).
"Verify chain" (POST) walks the whole chain and is itself audited.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from flask import Blueprint, flash, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import escape
from sqlalchemy import func, select

from portal.audit.models import AuditEntry, record
from portal.audit.sealed import SealedRecordError
from portal.auth.access import current_unit, permission_required, scope_ids
from portal.extensions import db
from portal.htmx import is_htmx, redirect_to, render_page
from portal.inputs import MAX_BIGINT, InputError, parse_date, parse_id, query_value
from portal.settings.models import unit_zone
from portal.templating import tree_order
from portal.units.models import Unit, descendant_ids

bp = Blueprint("audit", __name__, url_prefix="/audit")

PER_PAGE = 50


PARSERS = {"unit": parse_id, "since": parse_date, "until": parse_date,
           "before": lambda raw: parse_id(raw, maximum=MAX_BIGINT)}  # seq is a BIGINT


def _filters() -> tuple[dict, dict[str, str]]:
    """The filters of the query string, and the message of each one refused (left out)."""
    args = request.args
    filters: dict = {
        "actor": (args.get("actor") or "").strip()[:64],
        "action": (args.get("action") or "").strip()[:64],
    }
    errors: dict[str, str] = {}
    for name, parse in PARSERS.items():
        try:
            filters[name] = query_value(name, parse)
        except InputError as error:
            filters[name], errors[name] = None, str(error.message)
    return filters, errors


def _query(filters: dict):
    scope = scope_ids()
    query = select(AuditEntry).where(AuditEntry.unit_id.in_(scope))
    if filters["unit"] is not None and filters["unit"] in scope:
        query = query.where(AuditEntry.unit_id.in_(descendant_ids({filters["unit"]}) & scope))
    if filters["actor"]:
        query = query.where(func.lower(AuditEntry.actor_name).like(f"%{_escape(filters['actor'].lower())}%",
                                                                   escape="\\"))
    if filters["action"]:
        action = filters["action"]
        if action.endswith("."):
            query = query.where(AuditEntry.action.like(f"{_escape(action)}%", escape="\\"))
        else:
            query = query.where(AuditEntry.action == action)
    zone = unit_zone(current_unit())
    if filters["since"]:
        start = datetime.combine(filters["since"], time(), tzinfo=zone).astimezone(timezone.utc)
        query = query.where(AuditEntry.at >= start)
    if filters["until"]:
        end = datetime.combine(filters["until"] + timedelta(days=1), time(), tzinfo=zone)
        query = query.where(AuditEntry.at < end.astimezone(timezone.utc))
    return query


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@bp.route("/")
@permission_required("core.audit.view")
def index():
    filters, errors = _filters()
    before = filters.pop("before")
    query = _query(filters)
    if before is not None:
        query = query.where(AuditEntry.seq < before)
    rows = db.session.scalars(query.order_by(AuditEntry.seq.desc()).limit(PER_PAGE + 1)).all()
    more = len(rows) > PER_PAGE
    rows = rows[:PER_PAGE]
    args = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in filters.items() if v not in (None, "")}
    older = url_for("audit.index", **args, before=rows[-1].seq) if more and rows else None
    newest = url_for("audit.index", **args) if before is not None else None
    units = tree_order(db.session.scalars(select(Unit).where(Unit.id.in_(scope_ids()))).all())
    actions = db.session.scalars(
        select(AuditEntry.action).where(AuditEntry.unit_id.in_(scope_ids())).distinct().order_by(AuditEntry.action)
    ).all()
    unit_names = {u.id: u.name for u, _depth in units}
    return render_page(
        "audit/index.html", "audit/_entries.html", status=400 if errors else 200, entries=rows,
        filters=filters, filter_errors=errors, typed=request.args, units=units, actions=actions,
        older=older, newest=newest, unit_names=unit_names,
    )


@bp.route("/verify", methods=["POST"])
@permission_required("core.audit.verify")
def verify():
    from portal.audit.verify import verify_all

    report = verify_all()
    result, problem = report.chain, report.chain.problem
    record("audit.verified", "audit_chain", None, unit_id=current_unit().id,
           after={"ok": report.ok, "entries": result.count,
                  "problem": None if problem is None else {"kind": problem.kind, "seq": problem.seq,
                                                           "message": problem.message},
                  "sealed": [p.describe() for p in report.seals[:100]], "guards": report.guards})
    db.session.commit()
    if is_htmx():
        return render_template("audit/_verify_result.html", result=result, report=report)
    if result.ok:
        flash(_("Audit chain verified: %(n)s entries, no damage found.", n=result.count), "success")
    else:
        flash(_("Audit chain damaged at entry %(seq)s (%(kind)s): %(message)s", seq=problem.seq,
                kind=problem.kind, message=problem.message), "error")
    for line in report.lines()[1:]:
        flash(line, "error")
    return redirect_to(url_for("audit.index"))


@bp.app_errorhandler(SealedRecordError)
def sealed_refused(error: SealedRecordError):
    """A sealed or append-only record was about to change: 409 with a clear message."""
    db.session.rollback()
    message = _("This record is sealed and cannot be changed or deleted. Record a correction instead.")
    if is_htmx():
        return f'<p class="form-errors" role="alert">{escape(message)}</p>', 409
    return render_template("errors/error.html", code=409, title=_("Record sealed"), text=message), 409
