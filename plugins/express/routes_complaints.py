"""Pages of the complaints (EXP-P02..P07, R15) and of the station manager's responses (EXP-P05).

Registered on ``plugins.express.routes.bp`` (mounted at /express).  The rules live in
``plugins.express.complaints``; a refused form comes back with the messages next to
its fields, what was typed kept, status 400 (403 for a person who may not act), and
nothing written.
"""

from __future__ import annotations

from flask import abort, current_app, flash, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import selectinload
from wtforms import (
    BooleanField,
    RadioField,
    SelectField,
    TextAreaField,
)
from wtforms.validators import Length, Optional

from plugins.express import complaints as cx
from plugins.express.models import Complaint, QualityResponse
from plugins.express.routes import bp
from portal.auth.access import current_unit, get_in_scope_or_404, permission_required, scope_ids
from portal.db_types import utcnow
from portal.extensions import db
from portal.htmx import redirect_to, render_page
from portal.penalties import rules as R
from portal.plugin_api import IntegerField, LocalDateTimeField, id_or_none
from portal.settings import models as settings

LIST_LIMIT = 200
TEXT = [Optional(), Length(max=4000)]


# --- forms ----------------------------------------------------------------------------------


class ComplaintForm(FlaskForm):
    kind = SelectField(_l("Kind of complaint"), validate_choice=False)
    unit_id = SelectField(_l("Unit"), coerce=id_or_none, validate_choice=False)
    person_id = SelectField(_l("Person the complaint is about"), coerce=id_or_none, validate_choice=False)
    received_at = LocalDateTimeField(_l("Received at (local time)"), validators=[Optional()])
    description = TextAreaField(_l("What the customer complained about"), validators=TEXT,
                                render_kw={"rows": 4})
    inquiry_id = IntegerField(_l("Inquiry no. (optional)"), validators=[Optional()])  # an id
    earlier_id = IntegerField(_l("First complaint no. (second complaints, EXP-P07)"),
                              validators=[Optional()])
    station_plan = TextAreaField(_l("The station's handling plan submitted to 质控中心"), validators=TEXT,
                                 render_kw={"rows": 3})
    plan_refused = BooleanField(_l("The station refuses to give a handling plan"))
    center_plan_rejected = BooleanField(_l("The station rejects 质控中心's plan"))


class VerifyForm(FlaskForm):
    outcome = RadioField(_l("Inspection result"), choices=[("verified", _l("Verified (一经查证)")),
                                                          ("rejected", _l("Rejected: not substantiated"))],
                         validate_choice=False)
    finding = TextAreaField(_l("Finding"), validators=TEXT, render_kw={"rows": 3})
    conditions_met = BooleanField(_l("Rectification and training were given, the person still fails and "
                                     "was not reassigned (EXP-P02)"))
    plan_refused = BooleanField(_l("The station refuses to give a handling plan"))
    center_plan_rejected = BooleanField(_l("The station rejects 质控中心's plan"))


class DecisionForm(FlaskForm):
    decision = TextAreaField(_l("Decision of the leader in charge (分管领导)"), validators=TEXT,
                             render_kw={"rows": 3})


class ResponseForm(FlaskForm):
    educated = BooleanField(_l("The staff member has been educated"))
    apologised = BooleanField(_l("We apologised to the customer"))
    handling = TextAreaField(_l("Handling method"), validators=TEXT, render_kw={"rows": 3})
    measures = TextAreaField(_l("Improvement measures"), validators=TEXT, render_kw={"rows": 3})


def _apply(form: FlaskForm, error: cx.ComplaintError) -> None:
    for name, message in error.errors.items():
        field = getattr(form, name, None) if name else None
        if field is not None:
            field.errors = [*field.errors, str(message)]
        else:
            form.form_errors.append(str(message))


def _lang() -> str:
    return "en" if get_locale().language == "en" else "zh"


def _role_label(role: str) -> str:
    spec = current_app.extensions["portal"].roles.get(role)
    if spec is None:
        return role
    return spec.label_en if _lang() == "en" else spec.label_zh


@bp.context_processor
def _complaint_labels():
    return {"complaint_kinds": cx.kind_labels(), "complaint_statuses": cx.status_labels(),
            "notice_statuses": R.status_labels()}


# --- complaints -----------------------------------------------------------------------------


@bp.route("/complaints")
@permission_required("express.complaints")
def complaints():
    status = request.args.get("status", cx.OPEN)
    if status not in (*cx.STATUSES, "all"):
        status = cx.OPEN
    query = cx.visible_complaints(scope_ids()).options(
        selectinload(Complaint.unit), selectinload(Complaint.person))
    if status != "all":
        query = query.where(Complaint.status == status)
    rows = db.session.scalars(query.order_by(Complaint.received_at.desc(), Complaint.id.desc())
                              .limit(LIST_LIMIT)).all()
    return render_page("express/complaints/index.html", "express/complaints/_list.html",
                       complaints=rows, shown_status=status, counts=cx.counts_by_status(scope_ids()),
                       rule_for=cx.rule_for)


def _complaint_form(form: ComplaintForm | None = None) -> ComplaintForm:
    """The choices: the units in scope, and the people of the chosen unit (all, before one is)."""
    form = form or ComplaintForm()
    units = cx.units_in(scope_ids())
    form.kind.choices = [("", "—"), *cx.kind_labels().items()]
    form.unit_id.choices = [("", "—"), *((u.id, u.name) for u in units)]
    chosen = [u for u in units if u.id == form.unit_id.data]
    people = cx.people_in(chosen or units)
    form.person_id.choices = [("", "—"), *(
        (user.id, f"{user.display_name} ({user.username}) · "
                  + ", ".join(f"{unit.name}: {_role_label(role)}" for unit, role in roles))
        for user, roles in people)]
    return form


@bp.route("/complaints/people")
@permission_required("express.complaints")
def complaint_people():
    """The person field for the unit chosen on the complaint form (htmx)."""
    form = _complaint_form(ComplaintForm(formdata=None, data={"unit_id": id_or_none(request.args.get("unit_id"))}))
    return render_template("express/complaints/_person_field.html", form=form)


@bp.route("/complaints/new", methods=["GET", "POST"])
@permission_required("express.complaints")
def complaint_new():
    form = _complaint_form()
    if form.validate_on_submit():
        try:
            complaint = cx.record_complaint(
                current_user, scope_ids(), kind=form.kind.data, unit_id=form.unit_id.data,
                person_id=form.person_id.data, received_local=form.received_at.data,
                description=form.description.data, inquiry_id=form.inquiry_id.data,
                earlier_id=form.earlier_id.data, station_plan=form.station_plan.data,
                plan_refused=form.plan_refused.data, center_plan_rejected=form.center_plan_rejected.data)
        except cx.ComplaintError as error:
            db.session.rollback()
            _apply(form, error)
        else:
            db.session.commit()
            flash(_("Complaint recorded: the inspection department verifies it."), "success")
            return redirect_to(url_for("express.complaint_detail", complaint_id=complaint.id))
    elif request.method == "GET":
        form.received_at.data = utcnow().astimezone(settings.unit_zone(current_unit())).replace(
            tzinfo=None, second=0, microsecond=0)
        form.kind.data = request.args.get("kind", "")
        form.earlier_id.data = id_or_none(request.args.get("earlier"))
        if form.earlier_id.data:
            form.kind.data = "secondary"
    return render_template("express/complaints/new.html", form=form), 400 if form.errors else 200


def _complaint_or_404(complaint_id: int) -> Complaint:
    return get_in_scope_or_404(Complaint, complaint_id)


def _render_complaint(complaint: Complaint, status: int = 200, **forms):
    notice = cx.notice_for(complaint)
    verify_form = forms.get("verify_form")
    if verify_form is None and cx.may_verify(current_user, complaint):
        verify_form = VerifyForm(formdata=None, data={"plan_refused": complaint.plan_refused,
                                                      "center_plan_rejected": complaint.center_plan_rejected})
    decision_form = forms.get("decision_form")
    if decision_form is None and cx.may_decide(current_user, complaint):
        decision_form = DecisionForm(formdata=None)
    later = db.session.scalars(cx.visible_complaints(scope_ids()).where(Complaint.earlier_id == complaint.id)
                               .order_by(Complaint.id)).all()
    return render_page("express/complaints/detail.html", "express/complaints/_detail_body.html",
                       status=status, complaint=complaint, notice=notice, rule=cx.rule_for(complaint),
                       repeat=cx.repeat_info(complaint, notice), response=cx.response_for_notice(notice),
                       verify_form=verify_form, decision_form=decision_form, later=later)


@bp.route("/complaints/<int:complaint_id>")
@permission_required("express.complaints")
def complaint_detail(complaint_id: int):
    return _render_complaint(_complaint_or_404(complaint_id))


def _complaint_step(complaint_id: int, form, name: str, action, message):
    """Validate ``form``, run ``action(complaint)`` and commit; or show what is wrong on the page."""
    complaint = _complaint_or_404(complaint_id)
    status = 400
    if form.validate_on_submit():
        try:
            result = action(complaint)
        except cx.ComplaintError as error:
            db.session.rollback()
            _apply(form, error)
            status = error.status
        else:
            db.session.commit()
            flash(message(complaint, result), "success")
            return redirect_to(url_for("express.complaint_detail", complaint_id=complaint_id))
    return _render_complaint(_complaint_or_404(complaint_id), status, **{name: form})


def _verified_message(complaint: Complaint, notices) -> str:
    if notices:
        return _("Complaint verified: the draft penalty %(rule)s is in the ledger for an auditor "
                 "to publish.", rule=notices[0].rule_id)
    return _("Complaint %(status)s.", status=cx.status_labels()[complaint.status])


@bp.route("/complaints/<int:complaint_id>/verify", methods=["POST"])
@permission_required("express.verify")
def complaint_verify(complaint_id: int):
    form = VerifyForm()
    return _complaint_step(complaint_id, form, "verify_form", lambda complaint: cx.verify(
        complaint, current_user, form.outcome.data or "", form.finding.data,
        conditions_met=form.conditions_met.data, plan_refused=form.plan_refused.data,
        center_plan_rejected=form.center_plan_rejected.data), _verified_message)


@bp.route("/complaints/<int:complaint_id>/decision", methods=["POST"])
@permission_required("express.verify")
def complaint_decision(complaint_id: int):
    form = DecisionForm()
    return _complaint_step(complaint_id, form, "decision_form",
                           lambda complaint: cx.record_decision(complaint, current_user, form.decision.data),
                           lambda _complaint, _result: _("The leader's decision is recorded."))


# --- EXP-P05: responses to 质控部's notices --------------------------------------------------


@bp.route("/responses")
@permission_required("express.complaints")
def responses():
    include_answered = request.args.get("all") == "1"
    rows = cx.responses_in(scope_ids(), include_answered, LIST_LIMIT)
    return render_page("express/complaints/responses.html", "express/complaints/_responses_list.html",
                       responses=rows, include_answered=include_answered, now=utcnow(),
                       notices=cx.notices_by_id([r.notice_id for r in rows]))


def _render_response(response: QualityResponse, status: int = 200, form: ResponseForm | None = None):
    if form is None and cx.may_respond(current_user, response):
        form = ResponseForm(formdata=None)
    notice = cx.notices_by_id([response.notice_id]).get(response.notice_id)
    return render_page("express/complaints/response.html", "express/complaints/_response_body.html",
                       status=status, response=response, notice=notice, form=form, now=utcnow(),
                       breach=cx.breach_notice(response))


@bp.route("/responses/<int:response_id>")
@permission_required("express.complaints")
def response_detail(response_id: int):
    return _render_response(get_in_scope_or_404(QualityResponse, response_id))


@bp.route("/responses/<int:response_id>/respond", methods=["POST"])
@permission_required("express.complaints")
def response_respond(response_id: int):
    response = get_in_scope_or_404(QualityResponse, response_id)
    if not cx.may_respond(current_user, response) and response.responded_at is None:
        abort(403)
    form = ResponseForm()
    status = 400
    if form.validate_on_submit():
        try:
            cx.respond(response, current_user, educated=form.educated.data, apologised=form.apologised.data,
                       handling=form.handling.data, measures=form.measures.data)
        except cx.ComplaintError as error:
            db.session.rollback()
            _apply(form, error)
            status = error.status
        else:
            db.session.commit()
            flash(_("Your response is reported to 质控部."), "success")
            return redirect_to(url_for("express.response_detail", response_id=response_id))
    return _render_response(get_in_scope_or_404(QualityResponse, response_id), status, form)
