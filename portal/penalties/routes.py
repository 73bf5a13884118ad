"""The penalty ledger's pages, mounted at /penalties (CORE-03..06).

Everything about other people is scoped to the current unit's subtree (an id
outside it is a 404); a person always sees their own issued notices.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlparse

from flask import Blueprint, Response, abort, flash, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from portal.audit import record
from portal.auth.access import (
    authenticated,
    can,
    current_unit,
    permission_required,
    scope_ids,
)
from portal.auth.models import Membership, User
from portal.db_types import utcnow
from portal.extensions import db
from portal.htmx import is_htmx, redirect_to, render_page
from portal.inputs import InputError, id_or_none, parse_id, parse_month, query_value
from portal.penalties import payroll as P
from portal.penalties import rules as R
from portal.penalties import service
from portal.penalties.forms import AppealForm, DecisionForm, DiscardForm, DraftForm, PublishForm
from portal.penalties.models import InboxMessage, PenaltyNotice
from portal.settings import models as settings
from portal.templating import tree_order
from portal.units.models import Unit

bp = Blueprint("penalties", __name__, url_prefix="/penalties")

VIEW_OWN = "core.penalties.view_own"
VIEW_ALL = "core.penalties.view_all"
ISSUE = "core.penalties.issue"
DECIDE = "core.penalties.decide"
PAYROLL = "core.penalties.payroll"


@bp.app_context_processor
def _inbox_badge():
    def inbox_unread() -> int:
        if not current_user.is_authenticated:
            return 0
        return service.unread_count(current_user.id)

    return {"inbox_unread": inbox_unread}


def _local(unit: Unit, at: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if at is None else at.astimezone(settings.unit_zone(unit)).strftime(fmt)


def _remaining(notice: PenaltyNotice, now: datetime) -> dict | None:
    if not R.appeal_open(notice, now):
        return None
    left = notice.appeal_deadline - now
    days, rest = divmod(int(left.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    return {"days": days, "hours": hours, "minutes": rest // 60,
            "until": _local(notice.unit, R.last_appeal_moment(notice.appeal_deadline,
                                                              settings.unit_zone(notice.unit)),
                            "%Y-%m-%d %H:%M:%S"),
            "zone": settings.unit_zone(notice.unit).key}


def _context() -> dict:
    return {"local": _local, "status_labels": R.status_labels(), "outcome_labels": R.outcome_labels(),
            "rules": service.penalty_rules(), "now": utcnow()}


def _may_see_all() -> bool:
    return can(current_user, VIEW_ALL, current_unit()) or can(current_user, ISSUE, current_unit())


def _notice_or_404(notice_id: int) -> PenaltyNotice:
    """A notice in the current unit's subtree (for the ledger's readers), or the user's own issued one."""
    notice = db.session.get(PenaltyNotice, notice_id)
    if notice is None:
        abort(404)
    if notice.unit_id in scope_ids() and _may_see_all():
        return notice
    if notice.user_id == current_user.id and notice.status in R.ISSUED:
        return notice
    abort(404)


# --- my penalties -----------------------------------------------------------------------------


@bp.route("/")
@permission_required(VIEW_OWN)
def mine():
    notices = db.session.scalars(
        select(PenaltyNotice).where(PenaltyNotice.user_id == current_user.id,
                                    PenaltyNotice.status.in_(R.ISSUED))
        .order_by(PenaltyNotice.published_at.desc(), PenaltyNotice.id.desc())).all()
    now = utcnow()
    return render_page("penalties/mine.html", "penalties/_mine_list.html", notices=notices,
                       remaining={n.id: _remaining(n, now) for n in notices}, **_context())


def _detail(notice: PenaltyNotice, status: int = 200, **forms):
    now = utcnow()
    unit = notice.unit
    publish_form = forms.get("publish_form") or PublishForm(formdata=None, amount=(
        "" if notice.amount is None else str(notice.amount)))
    rule = service.rule_in_force(notice.rule_id, unit, notice.occurred_at)
    if rule is not None and rule.amount_min is not None and not rule.is_range:
        publish_form.amount.render_kw = {**(publish_form.amount.render_kw or {}), "readonly": True}
    context = {
        "notice": notice,
        "rule": rule,
        "remaining": _remaining(notice, now),
        "appeal_form": forms.get("appeal_form") or AppealForm(formdata=None),
        "publish_form": publish_form,
        "discard_form": forms.get("discard_form") or DiscardForm(formdata=None),
        "decision_form": forms.get("decision_form") or DecisionForm(formdata=None),
        "is_person": notice.user_id == current_user.id,
        "may_issue": notice.status == R.DRAFT and can(current_user, ISSUE, unit)
        and notice.unit_id in scope_ids(),
        "may_decide": notice.status == R.APPEALED and can(current_user, DECIDE, unit)
        and notice.unit_id in scope_ids()
        and current_user.id not in (notice.user_id, notice.published_by_id, notice.proposed_by_id),
        "escalation": service.escalation(notice),
        "offence_number": service.offence_number(notice),
        **_context(),
    }
    context["refusals"] = _unplaced(forms, {
        "publish_form": context["may_issue"], "discard_form": context["may_issue"],
        "decision_form": context["may_decide"],
        "appeal_form": context["is_person"] and notice.status == R.PUBLISHED})
    partial = forms.get("partial")
    if partial and is_htmx():  # only the section comes back: its refusals go with it
        return render_page("penalties/detail.html", partial, status=status, section_only=True, **context)
    return render_page("penalties/detail.html", "penalties/detail.html", status=status, **context)


@bp.route("/<int:notice_id>")
@permission_required(VIEW_OWN)
def detail(notice_id: int):
    return _detail(_notice_or_404(notice_id))


@bp.route("/<int:notice_id>/countdown")
@permission_required(VIEW_OWN)
def countdown(notice_id: int):
    notice = _notice_or_404(notice_id)
    return render_page("penalties/detail.html", "penalties/_countdown.html", notice=notice,
                       remaining=_remaining(notice, utcnow()), **_context())


def _unplaced(forms: dict, shown: dict[str, bool]) -> list[str]:
    """The messages of a posted form the page no longer shows — someone else published,
    decided or appealed first — so that they are shown above the notice, not lost."""
    return [str(message) for name, visible in shown.items() if not visible and name in forms
            for messages in forms[name].errors.values() for message in messages]


def _apply_error(form, error: R.PenaltyRuleError) -> None:
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, str(error.message)]
    else:
        form.form_errors.append(str(error.message))


@bp.route("/<int:notice_id>/appeal", methods=["POST"])
@permission_required(VIEW_OWN)
def appeal(notice_id: int):
    notice = _notice_or_404(notice_id)
    form = AppealForm()
    if form.validate_on_submit():
        try:
            service.appeal(notice, current_user, form.text.data)
        except R.PenaltyRuleError as error:
            db.session.rollback()
            _apply_error(form, error)
        else:
            db.session.commit()
            flash(_("Your appeal was submitted."), "success")
            return _detail(notice, appeal_form=AppealForm(formdata=None), partial="penalties/_appeal.html")
    notice = db.session.get(PenaltyNotice, notice_id)
    return _detail(notice, status=400, appeal_form=form, partial="penalties/_appeal.html")


@bp.route("/<int:notice_id>/publish", methods=["POST"])
@permission_required(ISSUE)
def publish(notice_id: int):
    notice = _notice_or_404(notice_id)
    form = PublishForm()
    if form.validate_on_submit():
        try:
            service.publish(notice, current_user, amount=form.amount.data)
        except R.PenaltyRuleError as error:
            db.session.rollback()
            _apply_error(form, error)
        else:
            db.session.commit()
            flash(_("The penalty notice was published."), "success")
            return redirect_to(url_for("penalties.detail", notice_id=notice_id))
    notice = db.session.get(PenaltyNotice, notice_id)
    return _detail(notice, status=400, publish_form=form)


@bp.route("/<int:notice_id>/discard", methods=["POST"])
@permission_required(ISSUE)
def discard(notice_id: int):
    notice = _notice_or_404(notice_id)
    form = DiscardForm()
    if form.validate_on_submit():
        try:
            service.discard(notice, current_user, form.reason.data)
        except R.PenaltyRuleError as error:
            db.session.rollback()
            _apply_error(form, error)
        else:
            db.session.commit()
            flash(_("The draft was discarded."), "success")
            return redirect_to(url_for("penalties.detail", notice_id=notice_id))
    notice = db.session.get(PenaltyNotice, notice_id)
    return _detail(notice, status=400, discard_form=form)


@bp.route("/<int:notice_id>/decide", methods=["POST"])
@permission_required(DECIDE)
def decide(notice_id: int):
    notice = _notice_or_404(notice_id)
    form = DecisionForm()
    if form.validate_on_submit():
        try:
            service.decide(notice, current_user, form.outcome.data or "", form.reason.data,
                           amount=form.amount.data)
        except R.PenaltyRuleError as error:
            db.session.rollback()
            _apply_error(form, error)
        else:
            db.session.commit()
            flash(_("The appeal was decided."), "success")
            return redirect_to(url_for("penalties.detail", notice_id=notice_id))
    notice = db.session.get(PenaltyNotice, notice_id)
    return _detail(notice, status=400, decision_form=form)


# --- drafting ---------------------------------------------------------------------------------


def _scope_units() -> list[tuple[Unit, int]]:
    units = db.session.scalars(select(Unit).where(Unit.id.in_(scope_ids()))).all()
    return tree_order(units)


def _people_in_scope() -> list[User]:
    return db.session.scalars(
        select(User).where(User.active.is_(True), User.id.in_(
            select(Membership.user_id).where(Membership.unit_id.in_(scope_ids()))))
        .order_by(User.username)).all()


def _rule_choices() -> list[tuple[str, str]]:
    out = []
    unit = current_unit()
    for rule_id in sorted(service.penalty_rules()):
        rule = service.rule_in_force(rule_id, unit)
        if rule.amount_min is None:
            amount = _("amount set by the issuer")
        elif rule.is_range:
            amount = _("%(min)s–%(max)s yuan", min=rule.amount_min, max=rule.amount_max)
        else:
            amount = _("%(amount)s yuan", amount=rule.amount_min)
        out.append((rule.id, f"{rule.id} · {rule.title_zh} / {rule.title_en} ({amount})"))
    return out


@bp.route("/new", methods=["GET", "POST"])
@permission_required(ISSUE)
def new():
    form = DraftForm()
    form.user_id.choices = [(u.id, f"{u.display_name} ({u.username})") for u in _people_in_scope()]
    form.rule_id.choices = [("", "—"), *_rule_choices()]
    units = _scope_units()
    unit_choices = [(u.id, "\u3000" * depth + u.name) for u, depth in units]
    unit_id = id_or_none(request.form.get("unit_id")) or current_unit().id
    unit_errors: list[str] = []
    if form.validate_on_submit():
        unit = db.session.get(Unit, unit_id) if unit_id in scope_ids() else None
        person = db.session.get(User, form.user_id.data)
        if unit is None:
            unit_errors.append(_("Choose a unit."))
        else:
            occurred = form.occurred_at.data.replace(tzinfo=settings.unit_zone(unit))
            try:
                notice = service.create_manual(unit=unit, person=person, rule_id=form.rule_id.data,
                                               evidence=form.evidence.data, occurred_at=occurred,
                                               proposer=current_user, amount=form.amount.data)
            except R.PenaltyRuleError as error:
                db.session.rollback()
                _apply_error(form, error)
            else:
                db.session.commit()
                flash(_("Draft saved. Another auditor must publish it."), "success")
                return redirect_to(url_for("penalties.detail", notice_id=notice.id))
    return render_page("penalties/new.html", "penalties/new.html",
                       status=400 if (form.errors or form.form_errors or unit_errors) else 200,
                       form=form, scope_unit_choices=unit_choices, unit_id=unit_id,
                       unit_errors=unit_errors)


# --- the inspection list ----------------------------------------------------------------------


def _ledger_filters():
    args = request.args
    scope = scope_ids()
    unit_id = id_or_none(args.get("unit"))
    unit_ids = scope
    if unit_id in scope:
        from portal.units.models import descendant_ids

        unit_ids = descendant_ids({unit_id})
    conditions = [PenaltyNotice.unit_id.in_(unit_ids)]
    person = (args.get("person") or "").strip()
    if person:
        conditions.append(PenaltyNotice.user_id.in_(select(User.id).where(
            (User.username == person) | User.display_name.contains(person))))
    rule_id = (args.get("rule") or "").strip()
    if rule_id:
        conditions.append(PenaltyNotice.rule_id == rule_id)
    status = args.get("status") or ""
    if status in R.STATUSES:
        conditions.append(PenaltyNotice.status == status)
    month = (args.get("month") or "").strip()
    month_error = None
    if month:
        try:
            year, mon = parse_month(month)
        except InputError as error:
            month_error = str(error.message)
        else:
            zone = settings.unit_zone(current_unit())
            following = f"{year + (mon == 12):04d}-{mon % 12 + 1:02d}"
            conditions += [PenaltyNotice.occurred_at >= R.month_start(month, zone),
                           PenaltyNotice.occurred_at < R.month_start(following, zone)]
    values = {"unit": unit_id if unit_id in scope else None, "person": person, "rule": rule_id,
              "status": status if status in R.STATUSES else "", "month": month}
    return conditions, values, month_error


@bp.route("/ledger")
@permission_required(VIEW_ALL)
def ledger():
    conditions, values, month_error = _ledger_filters()
    notices = db.session.scalars(
        select(PenaltyNotice).where(*conditions)
        .order_by(PenaltyNotice.created_at.desc(), PenaltyNotice.id.desc()).limit(500)).all()
    by_rule = db.session.execute(
        select(PenaltyNotice.rule_id, func.count(), func.coalesce(func.sum(PenaltyNotice.amount), 0))
        .where(*conditions).group_by(PenaltyNotice.rule_id).order_by(PenaltyNotice.rule_id)).all()
    by_unit = db.session.execute(
        select(Unit.code, Unit.name_zh, Unit.name_en, func.count())
        .join(PenaltyNotice, PenaltyNotice.unit_id == Unit.id)
        .where(*conditions).group_by(Unit.code, Unit.name_zh, Unit.name_en)
        .order_by(Unit.code)).all()
    return render_page("penalties/ledger.html", "penalties/_ledger_results.html",
                       status=400 if month_error else 200, notices=notices, by_rule=by_rule,
                       by_unit=by_unit, values=values, month_error=month_error,
                       scope_unit_choices=[(u.id, "\u3000" * d + u.name) for u, d in _scope_units()],
                       **_context())


@bp.route("/repeat")
@permission_required(VIEW_ALL)
def repeat():
    rows = service.repeat_offenders(scope_ids())
    return render_page("penalties/repeat.html", "penalties/repeat.html", rows=rows, **_context())


# --- inbox ------------------------------------------------------------------------------------


@bp.route("/inbox")
@authenticated
def inbox():
    messages = db.session.scalars(
        select(InboxMessage).where(InboxMessage.user_id == current_user.id)
        .order_by(InboxMessage.created_at.desc(), InboxMessage.id.desc()).limit(200)).all()
    return render_page("penalties/inbox.html", "penalties/_inbox_list.html", messages=messages)


def _safe_link(link: str | None) -> str | None:
    """Only app-relative links are followed from a message."""
    if not link:
        return None
    parsed = urlparse(link)
    if parsed.scheme or parsed.netloc or not link.startswith("/") or link.startswith("//"):
        return None
    return link


@bp.route("/inbox/<int:message_id>/read", methods=["POST"])
@authenticated
def inbox_read(message_id: int):
    message = db.session.scalar(select(InboxMessage).where(
        InboxMessage.id == message_id, InboxMessage.user_id == current_user.id))
    if message is None:
        abort(404)
    if message.read_at is None:
        message.read_at = utcnow()
        record("inbox.read", "inbox_message", message.id, unit_id=message.unit_id)
        db.session.commit()
    target = _safe_link(message.link) if request.form.get("open") else None
    return redirect_to(target or url_for("penalties.inbox"))


@bp.route("/inbox/read-all", methods=["POST"])
@authenticated
def inbox_read_all():
    unread = db.session.scalars(select(InboxMessage).where(
        InboxMessage.user_id == current_user.id, InboxMessage.read_at.is_(None))).all()
    now = utcnow()
    for message in unread:
        message.read_at = now
    if unread:
        record("inbox.read_all", "inbox_message", None, after={"count": len(unread)})
        db.session.commit()
    return redirect_to(url_for("penalties.inbox"))


# --- payroll (CORE-05) ------------------------------------------------------------------------


def _payroll_params():
    zone = settings.unit_zone(current_unit())
    year, mon = query_value("month", parse_month) or parse_month(R.month_of(utcnow(), zone))
    month = f"{year:04d}-{mon:02d}"  # a bad month: 400 with its message (InputError)
    unit_id = query_value("unit", parse_id)
    if unit_id is not None and unit_id not in scope_ids():
        abort(404)
    unit = db.session.get(Unit, unit_id) if unit_id else current_unit()
    from portal.units.models import descendant_ids

    return month, unit, descendant_ids({unit.id})


@bp.route("/payroll")
@permission_required(PAYROLL)
def payroll():
    month, unit, unit_ids = _payroll_params()
    items = list(P.lines(month, unit_ids))
    people, by_unit = P.summarise(items)
    zone = settings.unit_zone(current_unit())
    first = R.month_start(month, zone).astimezone(zone)
    previous = R.month_of(first - timedelta(days=1), zone)
    following = R.month_of(first + timedelta(days=32), zone)
    return render_page("penalties/payroll.html", "penalties/payroll.html", month=month, unit=unit,
                       lines=items, people=people, by_unit=by_unit, previous=previous,
                       following=following, total=service.totals(by_unit.values()),
                       scope_unit_choices=[(u.id, "\u3000" * d + u.name) for u, d in _scope_units()])


@bp.route("/payroll/export")
@permission_required(PAYROLL)
def payroll_export():
    month, unit, unit_ids = _payroll_params()
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        abort(400)
    record("payroll.exported", "payroll", month, unit_id=unit.id,
           after={"month": month, "unit": unit.code, "format": fmt, "via": "web"})
    db.session.commit()
    mimetype = "text/csv; charset=utf-8" if fmt == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    body = stream_with_context(P.export(month, unit_ids, fmt))
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{P.filename(month, unit.code, fmt)}"')
    response.headers["Cache-Control"] = "no-store"
    return response
