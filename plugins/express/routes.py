"""Routes of the express inquiries, mounted at /express.

Every step is a POST to its own URL; a refused step re-renders the inquiry with the
message next to the field and what was typed (status 400) and writes nothing but the
audit entry of a refused forward.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, flash, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from plugins.express import rules
from plugins.express import service as svc
from plugins.express.forms import (
    CheckForm,
    CustomerForm,
    FactsForm,
    ForwardForm,
    HelpForm,
    IntakeForm,
    ReplyForm,
    SignedForm,
    VpForm,
)
from plugins.express.models import OPEN, Hop, Inquiry, Partner, Relabel
from plugins.express.tracking import tracking_for
from portal.auth.access import can, current_unit, permission_required, scope_ids
from portal.db_types import utcnow
from portal.extensions import db
from portal.htmx import redirect_to, render_page
from portal.settings import models as settings
from portal.sla.models import Deadline
from portal.units.models import Unit, descendant_ids, plugin_enabled

bp = Blueprint("express", __name__, url_prefix="/express", template_folder="templates")

LIST_LIMIT = 200


@bp.context_processor
def _labels():
    return {"stage_labels": rules.STAGE_LABELS, "hop_kind_labels": rules.KIND_LABELS,
            "level_labels": rules.LEVEL_LABELS}


# --- lists ------------------------------------------------------------------------------------


def _waiting(limit: int = LIST_LIMIT) -> list[Hop]:
    return db.session.scalars(
        svc.open_hops_for(scope_ids())
        .options(selectinload(Hop.inquiry), selectinload(Hop.deadline), selectinload(Hop.to_unit),
                 selectinload(Hop.from_unit), selectinload(Hop.holder))
        .outerjoin(Deadline, Hop.deadline_id == Deadline.id)
        .order_by(Deadline.due_at.is_(None), Deadline.due_at, Hop.id).limit(limit)).all()


def _customer_clocks(limit: int = LIST_LIMIT) -> list[Inquiry]:
    return db.session.scalars(
        select(Inquiry).where(Inquiry.unit_id.in_(scope_ids()), Inquiry.status == OPEN)
        .options(selectinload(Inquiry.customer_deadline).selectinload(Deadline.owner),
                 selectinload(Inquiry.unit))
        .outerjoin(Deadline, Inquiry.customer_deadline_id == Deadline.id)
        .order_by(Deadline.due_at.is_(None), Deadline.due_at, Inquiry.id).limit(limit)).all()


def _search(q: str) -> tuple[list[Inquiry], list[Relabel]]:
    """Earlier inquiries of the waybill in the user's area, and its re-labels network-wide.

    Re-labels are looked up across the network on purpose, like the tracking: a parcel
    re-labelled in another region is asked about under its old number, and only the
    re-label tells the station the new number and who answers for it (EXP-R17).  The
    lookup needs the exact number; nothing lists another region's re-labels.
    """
    q = q.strip()
    found = db.session.scalars(
        svc.visible_inquiries(scope_ids()).where(Inquiry.waybill == q)
        .options(selectinload(Inquiry.unit)).order_by(Inquiry.created_at.desc()).limit(LIST_LIMIT)).all()
    relabels = db.session.scalars(select(Relabel).where((Relabel.old_waybill == q) | (Relabel.new_waybill == q))
                                  .options(selectinload(Relabel.unit))).all()
    return found, relabels


@bp.route("/")
@permission_required("express.view")
def inbox():
    q = request.args.get("q", "").strip()
    context = {"now": utcnow(), "q": q, "waiting": _waiting(), "customers": _customer_clocks()}
    if q:
        context["found"], context["relabels"] = _search(q)
    return render_page("express/inbox.html", "express/_inbox_lists.html", **context)


@bp.route("/panel")
@permission_required("express.view")
def panel():
    return render_template("express/_panel.html", now=utcnow(), waiting=_waiting(10),
                           customers=_customer_clocks(10))


# --- intake (EXP-R01, R02) --------------------------------------------------------------------


def _partners(unit: Unit) -> list[Partner]:
    """The agent-delivery partners 能达 publishes anywhere in the company (EXP-R16)."""
    ids = descendant_ids({unit.lineage()[-1].id})
    return db.session.scalars(select(Partner).where(Partner.unit_id.in_(ids), Partner.active)
                              .order_by(Partner.name)).all()


@bp.route("/new", methods=["GET", "POST"])
@permission_required("express.handle")
def new():
    unit = current_unit()
    form = IntakeForm(waybill_pattern=settings.value(unit, "express.waybill_pattern"))
    partners = _partners(unit)
    form.partner_id.choices = [(0, _("— not agent-delivered —"))] + [(p.id, f"{p.name} {p.phone}") for p in partners]
    station = svc.level_of(unit) == "station"
    if not station:
        flash(_("Inquiries are taken by station customer service."), "warning")
    elif form.validate_on_submit():
        try:
            inquiry = svc.take_inquiry(
                unit, current_user, waybill=form.waybill.data, inquirer_name=form.inquirer_name.data,
                inquirer_phone=form.inquirer_phone.data, inquirer_org=form.inquirer_org.data or "",
                notes=form.notes.data or "", partner_id=form.partner_id.data or None,
                confirm_repeat=form.confirm_repeat.data)
        except rules.LadderError as error:
            db.session.rollback()
            getattr(form, error.field or "waybill", form.waybill).errors.append(error.message)
        else:
            db.session.commit()
            flash(_("Inquiry recorded: answer the customer within the clock."), "success")
            return redirect_to(url_for("express.detail", inquiry_id=inquiry.id))
    earlier = _search(form.waybill.data)[0] if form.waybill.data else []
    status = 403 if request.method == "POST" and not station else 400 if form.errors else 200
    return render_template("express/new.html", form=form, earlier=earlier), status


@bp.route("/lookup")
@permission_required("express.view")
def lookup():
    """Earlier inquiries and re-labels of a waybill (htmx, while the agent types)."""
    found, relabels = _search(request.args.get("waybill", ""))
    return render_template("express/_lookup.html", found=found, relabels=relabels)


# --- one inquiry ------------------------------------------------------------------------------


def _inquiry_or_404(inquiry_id: int) -> Inquiry:
    inquiry = db.session.scalar(svc.visible_inquiries(scope_ids()).where(Inquiry.id == inquiry_id).options(
        selectinload(Inquiry.hops).selectinload(Hop.checks)))
    if inquiry is None:
        abort(404)
    return inquiry


def _hop_or_404(inquiry: Inquiry, hop_id: int) -> Hop:
    for hop in inquiry.hops:
        if hop.id == hop_id:
            return hop
    abort(404)


def _lang() -> str:
    return "en" if get_locale().language == "en" else "zh"


def _targets(level: str, exclude: int | None = None) -> list[Unit]:
    """Units of ``level`` with the plugin on: where a forward may go."""
    units = db.session.scalars(select(Unit).order_by(Unit.code)).all()
    levels = svc.levels(units)
    return [u for u in units if levels[u.id] == level and u.id != exclude and plugin_enabled(u, "express")]


def _forward_form(inquiry: Inquiry, hop: Hop | None, form: ForwardForm | None = None) -> ForwardForm:
    stage = (hop.stage if hop else 1) + 1
    if hop is None and inquiry.partner_id is not None:
        stage = 3  # agent-delivered: the center's CS handles it (EXP-R16)
    form = form or ForwardForm(prefix=f"forward{hop.id if hop else ''}", formdata=None,
                               data={"from_hop": hop.id if hop else ""})
    form.target.choices = [(u.id, u.name) for u in _targets(rules.STAGE_LEVEL.get(stage, ""), inquiry.unit_id)]
    return form


def _check_form(hop: Hop, form: CheckForm | None = None) -> CheckForm:
    form = form or CheckForm(prefix=f"check{hop.id}", formdata=None)
    lang = _lang()
    done = svc.done_steps(hop)
    form.step.choices = [(s.key, s.label_en if lang == "en" else s.label_zh)
                         for s in rules.steps(hop.stage) if s.key not in done]
    return form


def _reply_form(hop: Hop, form: ReplyForm | None = None) -> ReplyForm:
    form = form or ReplyForm(prefix=f"reply{hop.id}", formdata=None)
    form.outcome.choices = [(o, rules.outcome_label(o)) for o in rules.reply_outcomes(hop.stage, hop.kind)]
    return form


def _help_form(hop: Hop, kind: str, form: HelpForm | None = None) -> HelpForm:
    form = form or HelpForm(prefix=f"{kind}{hop.id}", formdata=None, data={"kind": kind})
    form.target.choices = [(u.id, u.name) for u in _targets("network")]
    return form


def _signed_form(inquiry: Inquiry, tracking) -> SignedForm:
    """The signature form, filled in from the tracking when it shows one (EXP-R02)."""
    signed = tracking.signed if tracking is not None else None
    data = None
    if signed is not None:
        local = signed.at.astimezone(settings.unit_zone(inquiry.unit)).replace(tzinfo=None, second=0, microsecond=0)
        data = {"signer": signed.signer, "signed_at": local}
    return SignedForm(prefix="signed", formdata=None, data=data)


def _actions(inquiry: Inquiry, bound: dict, tracking=None) -> dict:
    """The forms the user may use on this inquiry now, fresh or as they were posted."""
    user, out = current_user, {"hops": {}}
    if inquiry.status != OPEN:
        return out
    if can(user, svc.HANDLE, inquiry.unit):
        out["customer"] = bound.get("customer") or CustomerForm(prefix="customer", formdata=None)
        if not any(h.parent_id is None and h.kind == rules.FORWARD for h in inquiry.hops):
            out["forward"] = _forward_form(inquiry, None, bound.get("forward"))
            out["signed"] = bound.get("signed") or _signed_form(inquiry, tracking)
    for hop in inquiry.hops:
        acts: dict = {}
        permission = svc.SUPERVISE if hop.kind == rules.SUPERVISOR else svc.HANDLE
        if not hop.is_open and not (hop.kind == rules.FORWARD and hop.outcome == rules.NOT_FOUND
                                    and not hop.escalated):
            continue
        if not can(user, permission, hop.to_unit):
            continue
        key = lambda name: bound.get(f"{name}{hop.id}")  # noqa: E731
        if hop.is_open:
            acts["take"] = hop.holder_id != user.id
            acts["reply"] = _reply_form(hop, key("reply"))
            if hop.kind == rules.FORWARD and rules.steps(hop.stage):
                acts["check"] = _check_form(hop, key("check"))
                acts["facts"] = key("facts") or FactsForm(prefix=f"facts{hop.id}", formdata=None,
                                                          data=inquiry.facts or {})
        if hop.kind == rules.FORWARD and hop.stage < rules.TOP_STAGE and not hop.escalated:
            acts["forward"] = _forward_form(inquiry, hop, key("forward"))
        if hop.kind == rules.FORWARD and hop.stage == 3 and hop.is_open:
            acts["supervisor"] = _help_form(hop, rules.SUPERVISOR, key("supervisor"))
        if hop.kind == rules.SUPERVISOR and hop.is_open and can(user, svc.SUPERVISE, hop.to_unit):
            acts["assist"] = _help_form(hop, rules.ASSIST, key("assist"))
        if hop.stage == rules.TOP_STAGE and hop.is_open and can(user, svc.SUPERVISE, hop.to_unit):
            acts["vp"] = key("vp") or VpForm(prefix=f"vp{hop.id}", formdata=None)
        out["hops"][hop.id] = acts
    return out


def _unplaced(actions: dict, bound: dict) -> list[str]:
    """The messages of a posted form the page no longer shows (the inquiry was closed meanwhile,
    the step is not the user's): shown above the inquiry instead of being lost."""
    shown = {id(f) for f in actions.values() if isinstance(f, FlaskForm)}
    shown |= {id(f) for acts in actions["hops"].values() for f in acts.values()}
    return [str(m) for form in bound.values() if id(form) not in shown
            for messages in form.errors.values() for m in messages]


def _render(inquiry: Inquiry, status: int = 200, **bound):
    tracking = tracking_for(inquiry.waybill)
    actions = _actions(inquiry, bound, tracking)
    return render_page("express/detail.html", "express/_detail_body.html", status=status,
                       inquiry=inquiry, now=utcnow(), actions=actions, refusals=_unplaced(actions, bound),
                       step_label=lambda stage, key: rules.step_label(stage, key, _lang()),
                       fact_labels=svc.FACT_LABELS, tracking=tracking)


@bp.route("/<int:inquiry_id>")
@permission_required("express.view")
def detail(inquiry_id: int):
    return _render(_inquiry_or_404(inquiry_id))


@bp.route("/<int:inquiry_id>/clocks")
@permission_required("express.view")
def clocks(inquiry_id: int):
    inquiry = _inquiry_or_404(inquiry_id)
    return render_template("express/_clocks.html", inquiry=inquiry, now=utcnow())


def _done(inquiry: Inquiry, message: str):
    db.session.commit()
    flash(message, "success")
    return redirect_to(url_for("express.detail", inquiry_id=inquiry.id))


def _refused(inquiry: Inquiry, form, name: str, error: rules.LadderError):
    """Show the refusal next to its field; nothing is written but a refused forward's log."""
    db.session.rollback()
    if svc.log_refusal(error):
        db.session.commit()
    field = getattr(form, error.field or "", None)
    (field.errors if field is not None else form.form_errors).append(error.message)
    return _render(_inquiry_or_404(inquiry.id), 400, **{name: form})


def _step(inquiry: Inquiry, form, name: str, action, message):
    """Validate ``form``, run ``action()`` (a service call) and commit; or show what is wrong,
    next to its field, with what was typed (400).  ``message`` may depend on the result."""
    if not form.validate_on_submit():
        return _render(inquiry, 400, **{name: form})
    try:
        result = action()
    except rules.LadderError as error:
        return _refused(inquiry, form, name, error)
    return _done(inquiry, message(result) if callable(message) else message)


def _sent(hop: Hop) -> str:
    return _("Sent to %(unit)s; their clock has started.", unit=hop.to_unit.name)


@bp.route("/<int:inquiry_id>/forward", methods=["POST"])
@bp.route("/<int:inquiry_id>/hops/<int:hop_id>/forward", methods=["POST"])
@permission_required("express.handle")
def forward(inquiry_id: int, hop_id: int | None = None):
    inquiry = _inquiry_or_404(inquiry_id)
    hop = _hop_or_404(inquiry, hop_id) if hop_id else None
    name = f"forward{hop_id or ''}"
    form = _forward_form(inquiry, hop, ForwardForm(prefix=name))
    return _step(inquiry, form, name, lambda: svc.forward(
        inquiry, current_user, db.session.get(Unit, form.target.data), from_hop=hop,
        message=form.message.data or ""), _sent)


@bp.route("/<int:inquiry_id>/hops/<int:hop_id>/supervisor", methods=["POST"], defaults={"kind": "supervisor"})
@bp.route("/<int:inquiry_id>/hops/<int:hop_id>/assist", methods=["POST"], defaults={"kind": "assist"})
@permission_required("express.handle")
def help_request(inquiry_id: int, hop_id: int, kind: str):
    inquiry = _inquiry_or_404(inquiry_id)
    hop = _hop_or_404(inquiry, hop_id)
    name = f"{kind}{hop_id}"
    form = _help_form(hop, kind, HelpForm(prefix=name))
    return _step(inquiry, form, name, lambda: svc.request_help(
        inquiry, current_user, kind, hop, db.session.get(Unit, form.target.data) if form.target.data else None,
        message=form.message.data or ""), _sent)


@bp.route("/<int:inquiry_id>/hops/<int:hop_id>/take", methods=["POST"])
@permission_required("express.handle")
def take(inquiry_id: int, hop_id: int):
    inquiry = _inquiry_or_404(inquiry_id)
    try:
        svc.take(_hop_or_404(inquiry, hop_id), current_user)
    except rules.LadderError as error:  # not yours, or answered meanwhile: say so on the page (400)
        db.session.rollback()
        flash(error.message, "error")
        return _render(_inquiry_or_404(inquiry.id), 400)
    return _done(inquiry, _("You hold this request now; its clock is yours."))


@bp.route("/<int:inquiry_id>/hops/<int:hop_id>/facts", methods=["POST"])
@permission_required("express.handle")
def facts(inquiry_id: int, hop_id: int):
    inquiry = _inquiry_or_404(inquiry_id)
    hop = _hop_or_404(inquiry, hop_id)
    form = FactsForm(prefix=f"facts{hop_id}")
    return _step(inquiry, form, f"facts{hop_id}",
                 lambda: svc.save_facts(inquiry, hop, current_user, form.values()), _("Parcel data saved."))


@bp.route("/<int:inquiry_id>/hops/<int:hop_id>/check", methods=["POST"])
@permission_required("express.handle")
def check(inquiry_id: int, hop_id: int):
    inquiry = _inquiry_or_404(inquiry_id)
    hop = _hop_or_404(inquiry, hop_id)
    form = _check_form(hop, CheckForm(prefix=f"check{hop_id}"))
    return _step(inquiry, form, f"check{hop_id}",
                 lambda: svc.record_check(hop, current_user, form.step.data, form.result.data),
                 _("Check recorded."))


@bp.route("/<int:inquiry_id>/hops/<int:hop_id>/reply", methods=["POST"])
@permission_required("express.handle")
def reply(inquiry_id: int, hop_id: int):
    inquiry = _inquiry_or_404(inquiry_id)
    hop = _hop_or_404(inquiry, hop_id)
    form = _reply_form(hop, ReplyForm(prefix=f"reply{hop_id}"))
    return _step(inquiry, form, f"reply{hop_id}",
                 lambda: svc.reply(hop, current_user, form.outcome.data, form.text.data), _("Reply sent."))


@bp.route("/<int:inquiry_id>/hops/<int:hop_id>/vp", methods=["POST"])
@permission_required("express.handle")
def vp_request(inquiry_id: int, hop_id: int):
    inquiry = _inquiry_or_404(inquiry_id)
    hop = _hop_or_404(inquiry, hop_id)
    form = VpForm(prefix=f"vp{hop_id}")
    return _step(inquiry, form, f"vp{hop_id}",
                 lambda: svc.request_vp_intervention(hop, current_user, form.text.data),
                 _("The VP's intervention is requested; the department still owes the result."))


@bp.route("/<int:inquiry_id>/customer", methods=["POST"])
@permission_required("express.handle")
def customer(inquiry_id: int):
    inquiry = _inquiry_or_404(inquiry_id)
    form = CustomerForm(prefix="customer")
    return _step(inquiry, form, "customer",
                 lambda: svc.tell_customer(inquiry, current_user, form.kind.data, form.text.data),
                 lambda _inquiry: _("The customer has the result; the inquiry is closed.")
                 if form.kind.data == "result" else _("Progress recorded; the customer's clock starts again."))


@bp.route("/<int:inquiry_id>/signed", methods=["POST"])
@permission_required("express.handle")
def signed(inquiry_id: int):
    inquiry = _inquiry_or_404(inquiry_id)
    form = SignedForm(prefix="signed")

    def close():
        signed_at = rules.local_instant(form.signed_at.data, settings.unit_zone(inquiry.unit))
        if signed_at is None:
            raise rules.LadderError(rules.date_range_error(), "date", "signed_at")
        if signed_at > utcnow():
            raise rules.LadderError(_("The signature cannot be in the future."), "future", "signed_at")
        return svc.close_signed(inquiry, current_user, signer=form.signer.data, signed_at=signed_at,
                                answer=form.answer.data)

    return _step(inquiry, form, "signed", close,
                 _("Signed for: the customer has the answer; the inquiry is closed."))


def local_time(at: datetime | None, unit: Unit) -> str:
    return at.astimezone(settings.unit_zone(unit)).strftime("%Y-%m-%d %H:%M") if at else "—"


@bp.app_template_filter("express_local")
def _express_local(at, unit):
    return local_time(at, unit)


# the other pages of the plugin register their views on ``bp``
from plugins.express import routes_admin, routes_complaints, routes_refusals  # noqa: E402,F401
