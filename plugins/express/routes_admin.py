"""Statistics, setup, stranded-parcel contacts and tracking pages of the express plugin.

Registered on ``plugins.express.routes.bp`` (imported at the end of ``routes.py``):

* ``/express/stats`` — late replies per person and per unit, reply time per level
  (EXP-R13, EXP-P01), with CSV/XLSX exports (``?format=csv|xlsx``), audited;
* ``/express/setup`` — ladder levels and centers' stranded-parcel contacts (EXP-R18),
  agent-delivery partners (EXP-R16), re-labelled parcels (EXP-R17);
* ``/express/stranded`` — every center's stranded-parcel contact, for HQ-level units;
* ``/express/tracking`` — the tracking of a waybill, manual entry and CSV import (EXP-R02).

A refused form comes back with status 400, the message next to its field and what
was typed; nothing is written.  Every change is audited.
"""

from __future__ import annotations

from flask import Response, abort, flash, render_template, request, stream_with_context, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from plugins.express import rules
from plugins.express import service as svc
from plugins.express import stats as xstats
from plugins.express import tracking as trk
from plugins.express.models import Partner, Relabel, TrackingEvent, UnitLevel
from plugins.express.routes import bp
from portal.audit import record
from portal.auth.access import (
    can,
    current_unit,
    get_in_scope_or_404,
    permission_required,
    scope_ids,
)
from portal.auth.models import User
from portal.db_types import utcnow
from portal.extensions import db
from portal.htmx import redirect_to, render_page
from portal.plugin_api import InputError, LocalDateTimeField, accepts_files
from portal.settings import models as settings
from portal.sla import stats as sla_stats
from portal.templating import tree_order
from portal.units.models import Unit, descendant_ids, kind_labels, plugin_enabled

CONFIGURE = "express.configure"
HQ_LEVELS = ("network", "netdept", "vp")
LIST_LIMIT = 200


# --- forms ------------------------------------------------------------------------------------


def _phone(form, field):  # noqa: ARG001
    if field.data and rules.phone_error(field.data):
        raise ValidationError(str(rules.phone_error(field.data)))


class LevelForm(FlaskForm):
    level = SelectField(_l("Ladder level"), validators=[DataRequired()])
    stranded_contact = StringField(_l("Stranded-parcel responsible person (EXP-R18)"),
                                   validators=[Optional(), Length(max=80)])
    stranded_phone = StringField(_l("Their phone"), validators=[Optional(), Length(max=40), _phone],
                                 render_kw={"inputmode": "tel"})


class PartnerForm(FlaskForm):
    name = StringField(_l("Agent-delivery partner"), validators=[DataRequired(), Length(max=120)])
    area = StringField(_l("Area served"), validators=[Optional(), Length(max=200)])
    phone = StringField(_l("Published inquiry phone"), validators=[DataRequired(), Length(max=40), _phone],
                        render_kw={"inputmode": "tel"})


class RelabelForm(FlaskForm):
    old_waybill = StringField(_l("Old waybill number"), validators=[DataRequired(), Length(max=40)],
                              render_kw={"inputmode": "numeric", "autocomplete": "off"})
    new_waybill = StringField(_l("New waybill number"), validators=[DataRequired(), Length(max=40)],
                              render_kw={"inputmode": "numeric", "autocomplete": "off"})
    unit_id = SelectField(_l("Re-labelled by (responsible)"), coerce=int, validators=[DataRequired()])
    reason = TextAreaField(_l("Reason"), validators=[Optional(), Length(max=2000)], render_kw={"rows": 2})


class StatusForm(FlaskForm):
    waybill = StringField(_l("Waybill number"), validators=[DataRequired(), Length(max=40)],
                          render_kw={"inputmode": "numeric", "autocomplete": "off"})
    time = LocalDateTimeField(_l("Time (local)"), validators=[DataRequired(
        message=_l("A local time such as 2026-11-16 10:00."))])
    status = SelectField(_l("Status"), choices=[(s, trk.STATUS_LABELS[s]) for s in trk.STATUSES],
                         validators=[DataRequired()])
    place = StringField(_l("Place"), validators=[Optional(), Length(max=trk.PLACE_MAX)])
    signer = StringField(_l("Signed for by"), validators=[Optional(), Length(max=trk.SIGNER_MAX)],
                         render_kw={"autocomplete": "off"})


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(message=_l("Choose a CSV file."))])


# --- setup logic (EXP-R16, R17, R18) ----------------------------------------------------------


def _scope_units() -> list[Unit]:
    """Units in scope with the plugin on, in tree order."""
    units = db.session.scalars(select(Unit).where(Unit.id.in_(scope_ids()))).all()
    return [u for u, _depth in tree_order(units) if plugin_enabled(u, "express")]


def level_choice(unit: Unit, row: UnitLevel | None) -> str:
    """What the level form shows: ``default``, ``none`` or a level."""
    if row is None:
        return "default"
    return row.level or "none"


def level_choices(unit: Unit) -> list[tuple[str, str]]:
    default = rules.default_level(unit.kind)
    kind = kind_labels().get(unit.kind, unit.kind)
    return ([("default", _("Default for the kind (%(kind)s): %(level)s", kind=kind,
                           level=rules.level_label(default)))]
            + [(level, rules.level_label(level)) for level in rules.LEVELS]
            + [("none", _("Not on the inquiry ladder"))])


def save_level(unit: Unit, form: LevelForm, actor: User) -> bool:
    """Apply the level form; ``False`` with errors on the form when refused (nothing written)."""
    choice = form.level.data
    level = rules.default_level(unit.kind) if choice == "default" else None if choice == "none" else choice
    contact, phone = (form.stranded_contact.data or "").strip(), (form.stranded_phone.data or "").strip()
    if (contact or phone) and level != "center":
        form.stranded_contact.errors.append(_("Only a center names a stranded-parcel contact (EXP-R18)."))
        return False
    if contact and not phone:
        form.stranded_phone.errors.append(_("Give the responsible person's phone."))
        return False
    if phone and not contact:
        form.stranded_contact.errors.append(_("Name the person who answers this phone."))
        return False
    if phone:
        phone = rules.normalise_phone(phone)
    row = db.session.scalar(select(UnitLevel).where(UnitLevel.unit_id == unit.id))
    if choice == "default" and not contact:
        if row is not None:  # back to the default of the kind: the unit's own row goes
            record("express.level_set", "express_unit_level", row.id, unit_id=unit.id, actor=actor,
                   before={"level": row.level, "stranded_contact": row.stranded_contact,
                           "stranded_phone": row.stranded_phone},
                   after={"level": "default", "stranded_contact": "", "stranded_phone": ""})
            db.session.delete(row)
        return True
    if row is not None and (row.level, row.stranded_contact, row.stranded_phone) == (level, contact, phone):
        return True
    svc.set_level(unit, level, actor, contact, phone)
    return True


def add_partner(unit: Unit, form: PartnerForm, actor: User) -> Partner | None:
    name = form.name.data.strip()
    duplicate = db.session.scalar(select(Partner.id).where(Partner.unit_id == unit.id, Partner.active,
                                                           Partner.name == name))
    if duplicate is not None:
        form.name.errors.append(_("This partner is already listed; deactivate the old entry first."))
        return None
    partner = Partner(unit_id=unit.id, name=name, area=(form.area.data or "").strip(),
                      phone=rules.normalise_phone(form.phone.data), active=True)
    db.session.add(partner)
    db.session.flush()
    record("express.partner_added", "express_partner", partner.id, unit_id=unit.id, actor=actor,
           after={"name": partner.name, "area": partner.area, "phone": partner.phone})
    return partner


def deactivate_partner(partner: Partner, actor: User) -> bool:
    if not partner.active:
        return False
    partner.active = False
    record("express.partner_deactivated", "express_partner", partner.id, unit_id=partner.unit_id,
           actor=actor, before={"active": True}, after={"active": False, "name": partner.name,
                                                        "phone": partner.phone})
    return True


def add_relabel(form: RelabelForm, units: dict[int, Unit], actor: User) -> Relabel | None:
    """Old → new waybill; both of the unit's format, different, neither already re-labelled."""
    unit = units.get(form.unit_id.data)
    if unit is None:
        form.unit_id.errors.append(_("Choose a unit of yours."))
        return None
    pattern = settings.value(unit, "express.waybill_pattern")
    old, new = form.old_waybill.data.strip(), form.new_waybill.data.strip()
    ok = True
    for field, value in ((form.old_waybill, old), (form.new_waybill, new)):
        error = rules.waybill_error(value, pattern)
        if error:
            field.errors.append(str(error))
            ok = False
    if ok and old == new:
        form.new_waybill.errors.append(_("The new waybill number must differ from the old one."))
        ok = False
    if ok:
        taken = db.session.scalar(select(Relabel).where(
            (Relabel.new_waybill == new) | (Relabel.old_waybill == new)).limit(1))
        if taken is not None:
            form.new_waybill.errors.append(_("%(waybill)s is already in a re-label (%(old)s → %(new)s).",
                                             waybill=new, old=taken.old_waybill, new=taken.new_waybill))
            ok = False
        earlier = db.session.scalar(select(Relabel).where(Relabel.old_waybill == old).limit(1))
        if earlier is not None:
            form.old_waybill.errors.append(_("%(waybill)s was already re-labelled as %(new)s.",
                                             waybill=old, new=earlier.new_waybill))
            ok = False
    if not ok:
        return None
    relabel = Relabel(old_waybill=old, new_waybill=new, unit_id=unit.id,
                      reason=(form.reason.data or "").strip(), by_id=actor.id, at=utcnow())
    db.session.add(relabel)
    db.session.flush()
    record("express.relabel_recorded", "express_relabel", relabel.id, unit_id=unit.id, actor=actor,
           after={"old": old, "new": new, "unit": unit.code, "reason": relabel.reason})
    return relabel


# --- statistics (EXP-R13, P01) ----------------------------------------------------------------


def _stats_params() -> dict:
    unit = current_unit()
    this_month = sla_stats.month_of(settings.local_date(unit, utcnow()))
    month = request.args.get("month", "").strip()
    first = month or request.args.get("from", "").strip() or this_month
    last = month or request.args.get("to", "").strip() or first
    error, months = None, []
    try:
        months = xstats.months_between(first, last)
    except xstats.ExpressStatsError:
        error = _("Choose months as YYYY-MM, the first not after the last, at most %(n)s months.",
                  n=xstats.MAX_MONTHS)
    return {"first": first, "last": last, "months": months, "error": error}


@bp.route("/stats")
@permission_required("express.stats")
def stats():
    params = _stats_params()
    fmt = request.args.get("format") or "html"
    if fmt not in ("html", "csv", "xlsx"):
        abort(400)
    if params["error"] and fmt != "html":
        raise InputError(params["error"])  # 400 with the message
    units = db.session.scalars(select(Unit).where(Unit.id.in_(scope_ids()))).all()
    rep = xstats.report(units, params["months"], settings.unit_zone)
    if fmt == "html":
        return render_page("express/stats.html", "express/stats_table.html", report=rep,
                           status=400 if params["error"] else 200, **params)
    unit = current_unit()
    english = str(get_locale()) == "en"
    body = xstats.export(rep, fmt, (lambda u: u.name_en) if english else (lambda u: u.name_zh))
    record("express.stats_exported", "express_stats", unit.code, unit_id=unit.id,
           after={"from": params["first"], "to": params["last"], "format": fmt,
                  "rows": len(rep.people) + len(rep.units) + len(rep.levels)})
    db.session.commit()
    mimetype = "text/csv; charset=utf-8" if fmt == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = Response(stream_with_context(body), mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="express-stats-{unit.code}-{params["first"]}-{params["last"]}.{fmt}"')
    response.headers["Cache-Control"] = "no-store"
    return response


# --- setup (EXP-R16, R17, R18) ----------------------------------------------------------------


def _relabel_form(form: RelabelForm | None = None) -> RelabelForm:
    form = form or RelabelForm(prefix="relabel", formdata=None, data={"unit_id": current_unit().id})
    form.unit_id.choices = [(u.id, u.name) for u in _scope_units()]
    return form


def _setup_page(status: int = 200, partner_form: PartnerForm | None = None,
                relabel_form: RelabelForm | None = None):
    units = _scope_units()
    levels = svc.levels(units)
    rows = {r.unit_id: r for r in db.session.scalars(
        select(UnitLevel).where(UnitLevel.unit_id.in_([u.id for u in units])))} if units else {}
    partners = db.session.scalars(select(Partner).where(Partner.unit_id.in_(scope_ids()))
                                  .options(selectinload(Partner.unit))
                                  .order_by(Partner.active.desc(), Partner.name, Partner.id)).all()
    relabels = db.session.scalars(select(Relabel).where(Relabel.unit_id.in_(scope_ids()))
                                  .options(selectinload(Relabel.unit))
                                  .order_by(Relabel.at.desc(), Relabel.id.desc()).limit(LIST_LIMIT)).all()
    return render_template(
        "express/admin/setup.html", units=units, levels=levels, rows=rows, partners=partners,
        relabels=relabels, partner_form=partner_form or PartnerForm(prefix="partner", formdata=None),
        relabel_form=_relabel_form(relabel_form), unit_kinds=kind_labels()), status


@bp.route("/setup")
@permission_required(CONFIGURE)
def setup():
    return _setup_page()


def _unit_in_scope_or_404(unit_id: int) -> Unit:
    unit = db.session.get(Unit, unit_id)
    if unit is None or unit.id not in scope_ids() or not plugin_enabled(unit, "express"):
        abort(404)
    return unit


@bp.route("/setup/units/<int:unit_id>", methods=["GET", "POST"])
@permission_required(CONFIGURE)
def setup_unit(unit_id: int):
    unit = _unit_in_scope_or_404(unit_id)
    row = db.session.scalar(select(UnitLevel).where(UnitLevel.unit_id == unit.id))
    data = {"level": level_choice(unit, row), "stranded_contact": row.stranded_contact if row else "",
            "stranded_phone": row.stranded_phone if row else ""}
    form = LevelForm(data=data) if request.method == "GET" else LevelForm()
    form.level.choices = level_choices(unit)
    if form.validate_on_submit() and save_level(unit, form, current_user):
        db.session.commit()
        flash(_("Level of %(unit)s saved.", unit=unit.name), "success")
        return redirect_to(url_for("express.setup"))
    db.session.rollback()
    return render_template("express/admin/unit_level.html", unit=unit, form=form,
                           level=svc.level_of(unit)), 400 if form.errors else 200


@bp.route("/setup/partners", methods=["POST"])
@permission_required(CONFIGURE)
def partner_add():
    form = PartnerForm(prefix="partner")
    if form.validate_on_submit() and add_partner(current_unit(), form, current_user) is not None:
        db.session.commit()
        flash(_("Partner added to the published list."), "success")
        return redirect_to(url_for("express.setup"))
    db.session.rollback()
    return _setup_page(400, partner_form=form)


@bp.route("/setup/partners/<int:partner_id>/deactivate", methods=["POST"])
@permission_required(CONFIGURE)
def partner_deactivate(partner_id: int):
    partner = get_in_scope_or_404(Partner, partner_id)
    if deactivate_partner(partner, current_user):
        db.session.commit()
        flash(_("%(name)s is no longer on the published list.", name=partner.name), "success")
    return redirect_to(url_for("express.setup"))


@bp.route("/setup/relabels", methods=["POST"])
@permission_required(CONFIGURE)
def relabel_add():
    form = _relabel_form(RelabelForm(prefix="relabel"))
    units = {u.id: u for u in _scope_units()}
    if form.validate_on_submit() and add_relabel(form, units, current_user) is not None:
        db.session.commit()
        flash(_("Re-label recorded: inquire by the new waybill number."), "success")
        return redirect_to(url_for("express.setup"))
    db.session.rollback()
    return _setup_page(400, relabel_form=form)


# --- stranded-parcel contacts (EXP-R18) -------------------------------------------------------


def is_hq_level(unit: Unit) -> bool:
    """HQ customer service and the levels above a center, or the company itself."""
    return unit.parent_id is None or svc.level_of(unit) in HQ_LEVELS


@bp.route("/stranded")
@permission_required("express.view")
def stranded():
    unit = current_unit()
    if not is_hq_level(unit):
        abort(403)
    root = unit.lineage()[-1]
    units = db.session.scalars(select(Unit).where(Unit.id.in_(descendant_ids({root.id})))).all()
    levels = svc.levels(units)
    centers = [u for u, _d in tree_order(units) if levels[u.id] == "center" and plugin_enabled(u, "express")]
    rows = {r.unit_id: r for r in db.session.scalars(
        select(UnitLevel).where(UnitLevel.unit_id.in_([u.id for u in centers])))} if centers else {}
    return render_template("express/admin/stranded.html", centers=centers, rows=rows)


# --- tracking (EXP-R02) -----------------------------------------------------------------------


def _tracking_page(status: int = 200, status_form: StatusForm | None = None,
                   import_form: ImportForm | None = None, import_result: trk.ImportResult | None = None):
    waybill = request.args.get("waybill", "").strip()
    manage = can(current_user, CONFIGURE, current_unit())
    recent = db.session.scalars(select(TrackingEvent).where(TrackingEvent.unit_id.in_(scope_ids()))
                                .order_by(TrackingEvent.created_at.desc(), TrackingEvent.id.desc())
                                .limit(50)).all() if manage else []
    return render_template(
        "express/admin/tracking.html", waybill=waybill,
        tracking=trk.tracking_for(waybill) if waybill else None,
        manage=manage, recent=recent, status_labels=trk.STATUS_LABELS,
        status_form=status_form or StatusForm(prefix="status", formdata=None, data={"waybill": waybill}),
        import_form=import_form or ImportForm(prefix="import", formdata=None), import_result=import_result,
        columns=",".join(trk.CSV_COLUMNS), max_kib=trk.MAX_IMPORT_BYTES // 1024), status


@bp.route("/tracking")
@permission_required("express.view")
def tracking():
    return _tracking_page()


@bp.route("/tracking/status", methods=["POST"])
@permission_required(CONFIGURE)
def tracking_add():
    unit = current_unit()
    form = StatusForm(prefix="status")
    if form.validate_on_submit():
        entry, errors = trk.check_entry(
            form.waybill.data, form.time.data, form.status.data, form.place.data, form.signer.data,
            pattern=settings.value(unit, "express.waybill_pattern"), zone=settings.unit_zone(unit),
            now=utcnow())
        for name, message in errors.items():
            getattr(form, name).errors.append(message)
        if entry is not None:
            event = trk.add_status(entry, unit, current_user)
            db.session.commit()
            flash(_("Tracking status recorded.") if event else _("This status was already recorded."),
                  "success" if event else "info")
            return redirect_to(url_for("express.tracking", waybill=entry.waybill))
    db.session.rollback()
    return _tracking_page(400, status_form=form)


@bp.route("/tracking/import", methods=["POST"])
@permission_required(CONFIGURE)
@accepts_files("import-file")
def tracking_import():
    unit = current_unit()
    form = ImportForm(prefix="import")
    result = None
    if form.validate_on_submit():
        upload = form.file.data
        data = upload.stream.read(trk.MAX_IMPORT_BYTES + 1)
        result = trk.import_csv(data, upload.filename or "", unit, current_user,
                                pattern=settings.value(unit, "express.waybill_pattern"),
                                zone=settings.unit_zone(unit), now=utcnow())
        if not result.errors:
            db.session.commit()
            flash(_("%(n)s tracking statuses imported, %(skipped)s already recorded.",
                    n=result.imported, skipped=result.skipped), "success")
            return redirect_to(url_for("express.tracking"))
        form.file.errors.append(_("Nothing was imported: correct the lines below and import the file again."))
    db.session.rollback()
    return _tracking_page(400, import_form=form, import_result=result)
