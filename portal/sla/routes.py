"""Deadline pages: overdue now (supervisors), breach statistics, the unit's working calendar."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from portal.audit import record
from portal.auth.access import authenticated, current_unit, permission_required, scope_ids
from portal.db_types import utcnow
from portal.extensions import db
from portal.htmx import redirect_to, render_page
from portal.inputs import InputError
from portal.settings import models as settings
from portal.sla import stats as sla_stats
from portal.sla.calendar import china_days
from portal.sla.forms import CalendarDayForm
from portal.sla.hours import format_work_hours, parse_work_hours
from portal.sla.models import BREACHED, OPEN, CalendarDay, Deadline
from portal.sla.service import WORK_HOURS_SETTING, overdue_condition
from portal.transitions import lock
from portal.units.models import Unit

bp = Blueprint("sla", __name__, url_prefix="/sla")

LIST_LIMIT = 200


def _overdue_query(now):
    return select(Deadline).where(overdue_condition(now), Deadline.unit_id.in_(scope_ids()))


def _due_soon_query(now):
    return select(Deadline).where(
        Deadline.status == OPEN, Deadline.paused_at.is_(None), Deadline.warn_at <= now,
        Deadline.due_at >= now, Deadline.unit_id.in_(scope_ids()))


def _rows(query, limit=LIST_LIMIT):
    return db.session.scalars(
        query.options(selectinload(Deadline.unit), selectinload(Deadline.owner))
        .order_by(Deadline.due_at, Deadline.id).limit(limit)).all()


def _count(query) -> int:
    return db.session.scalar(select(func.count()).select_from(query.subquery()))


def _policies():
    return current_app.extensions["portal"].sla_policies


@bp.route("/")
@permission_required("core.sla.view")
def overdue():
    now = utcnow()
    policy = request.args.get("policy") or None
    over, soon = _overdue_query(now), _due_soon_query(now)
    if policy:
        over, soon = over.where(Deadline.policy_id == policy), soon.where(Deadline.policy_id == policy)
    return render_page("sla/overdue.html", "sla/_overdue_rows.html", now=now,
                       overdue=_rows(over), overdue_count=_count(over),
                       soon=_rows(soon), soon_count=_count(soon), limit=LIST_LIMIT,
                       policies=sorted(_policies()), policy=policy)


@bp.route("/mine")
@authenticated
def mine():
    """My open deadlines (soonest first) and my overdue ones not yet done: what a warning links to."""
    now = utcnow()
    mine_open = select(Deadline).where(
        Deadline.owner_id == current_user.id,
        (Deadline.status == OPEN) | ((Deadline.status == BREACHED) & Deadline.met_at.is_(None)))
    return render_template("sla/mine.html", now=now, deadlines=_rows(mine_open), limit=LIST_LIMIT)


@bp.route("/panel")
@permission_required("core.sla.view")
def panel():
    now = utcnow()
    query = _overdue_query(now)
    return render_template("sla/_panel.html", now=now, rows=_rows(query, 5), count=_count(query))


# --- statistics -------------------------------------------------------------------------------


def _stats_params():
    unit = current_unit()
    this_month = sla_stats.month_of(settings.local_date(unit, utcnow()))
    first = request.args.get("from") or sla_stats.shift_month(this_month, -5)
    last = request.args.get("to") or this_month
    group = "unit" if request.args.get("group") == "unit" else "person"
    policy = request.args.get("policy") or None
    if policy is not None and policy not in _policies():
        policy = None
    error, months = None, []
    try:
        months = sla_stats.month_range(first, last)
    except sla_stats.StatsError:
        error = _("Choose months as YYYY-MM, the first not after the last, at most %(n)s months.",
                  n=sla_stats.MAX_MONTHS)
    return {"first": first, "last": last, "group": group, "policy": policy, "months": months,
            "error": error}


def _stats_rows(params):
    if not params["months"]:
        return []
    units = db.session.scalars(select(Unit).where(Unit.id.in_(scope_ids()))).all()
    return sla_stats.breach_stats(units, params["months"], settings.unit_zone, params["policy"],
                                  by_person=params["group"] == "person")


@bp.route("/stats")
@permission_required("core.sla.stats")
def stats():
    params = _stats_params()
    rows = _stats_rows(params)
    totals = {"closed": sum(r.closed for r in rows), "breached": sum(r.breached for r in rows)}
    return render_page("sla/stats.html", "sla/_stats_table.html", rows=rows, totals=totals,
                       policies=sorted(_policies()), status=400 if params["error"] else 200, **params)


@bp.route("/stats.csv")
@permission_required("core.sla.stats")
def stats_csv():
    params = _stats_params()
    if params["error"]:
        raise InputError(params["error"])  # 400 with the message
    unit = current_unit()
    english = str(get_locale()) == "en"
    records = sla_stats.csv_records(_stats_rows(params),
                                    unit_name=(lambda u: u.name_en) if english else (lambda u: u.name_zh))
    record("sla.stats.exported", "sla_stats", unit.code, unit_id=unit.id,
           after={"from": params["first"], "to": params["last"], "group": params["group"],
                  "policy": params["policy"], "rows": len(records)})
    db.session.commit()
    filename = f"sla-breaches-{unit.code}-{params['first']}-{params['last']}.csv"
    return Response(sla_stats.csv_lines(records), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# --- working calendar ---------------------------------------------------------------------------


def _calendar_context(form):
    unit = current_unit()
    now = utcnow()
    lineage = unit.lineage()
    rows = db.session.scalars(
        select(CalendarDay).where(CalendarDay.unit_id.in_([u.id for u in lineage]))
        .options(selectinload(CalendarDay.unit)).order_by(CalendarDay.day.desc())).all()
    year = settings.local_date(unit, now).year
    statutory, makeup = china_days((year, year + 1))
    hours_text = settings.value(unit, WORK_HOURS_SETTING)
    return {
        "unit": unit, "form": form, "rows": rows, "year": year,
        "statutory": sorted(d for d in statutory if d.year in (year, year + 1)),
        "makeup": sorted(d for d in makeup if d.year in (year, year + 1)),
        "hours": format_work_hours(parse_work_hours(hours_text)), "zone": settings.unit_zone(unit).key,
    }


@bp.route("/calendar", methods=["GET", "POST"])
@permission_required("core.sla.calendar")
def calendar():
    unit = current_unit()
    form = CalendarDayForm()
    if form.validate_on_submit():
        existing = db.session.scalar(select(CalendarDay).where(
            CalendarDay.unit_id == unit.id, CalendarDay.day == form.day.data))
        if existing is not None:
            form.day.errors.append(_("This unit already has an entry for that day; remove it first."))
        else:
            row = CalendarDay(unit_id=unit.id, day=form.day.data, kind=form.kind.data,
                              note=(form.note.data or "").strip() or None, created_by_id=_user_id())
            db.session.add(row)
            db.session.flush()
            record("sla.calendar_day.added", "sla_calendar_day", row.id, unit_id=unit.id,
                   after={"day": row.day, "kind": row.kind, "note": row.note})
            db.session.commit()
            flash(_("Calendar day saved."), "success")
            return redirect_to(url_for("sla.calendar"))
    status = 400 if form.errors else 200
    return render_template("sla/calendar.html", **_calendar_context(form)), status


@bp.route("/calendar/<int:day_id>/delete", methods=["POST"])
@permission_required("core.sla.calendar")
def calendar_delete(day_id: int):
    unit = current_unit()
    row = lock(CalendarDay, day_id)  # removed by someone else meanwhile: not found, as a late tap
    if row is None or row.unit_id != unit.id:
        abort(404)
    record("sla.calendar_day.removed", "sla_calendar_day", row.id, unit_id=unit.id,
           before={"day": row.day, "kind": row.kind, "note": row.note})
    db.session.delete(row)
    db.session.commit()
    flash(_("Calendar day removed."), "success")
    return redirect_to(url_for("sla.calendar"))


def _user_id():
    return current_user.id
