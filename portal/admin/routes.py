"""Admin pages.  Every query is limited to the current unit's subtree."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from portal.admin.forms import (
    GrantForm,
    PasswordResetForm,
    SettingForm,
    UnitForm,
    UserCreateForm,
    UserEditForm,
)
from portal.audit import record
from portal.auth import sessions, throttle
from portal.auth.access import (
    can,
    current_unit,
    get_in_scope_or_404,
    permission_required,
    scope_ids,
)
from portal.auth.models import Membership, User
from portal.auth.passwords import hash_password
from portal.extensions import db
from portal.db_types import utcnow
from portal.htmx import is_htmx, redirect_to, render_page
from portal.plugin_api import SettingError, lock
from portal.settings import models as settings
from portal.templating import tree_order
from portal.units.models import Unit, UnitPlugin, plugin_enabled, set_plugin, would_create_cycle

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _registry():
    return current_app.extensions["portal"]


def _scope_units() -> list[tuple[Unit, int]]:
    return tree_order(db.session.scalars(select(Unit).where(Unit.id.in_(scope_ids()))).all())


def _unit_choices():
    return [(u.id, "\u3000" * depth + u.name) for u, depth in _scope_units()]


def _role_choices():
    return [(r.name, _role_label(r)) for r in _registry().roles.values()]


def _role_label(role) -> str:
    from flask_babel import get_locale

    return role.label_en if str(get_locale()) == "en" else role.label_zh


# ---- users -------------------------------------------------------------------------------


def _user_in_scope_or_404(user_id: int) -> User:
    user = db.session.scalar(
        select(User)
        .join(Membership)
        .where(User.id == user_id, Membership.unit_id.in_(scope_ids()))
        .limit(1)
    )
    if user is None:
        abort(404)
    return user


def _fully_in_scope(user: User) -> bool:
    """An admin may disable or reset only users whose every role lies in the admin's scope."""
    return all(m.unit_id in scope_ids() for m in user.memberships)


@bp.route("/users")
@permission_required("core.users.manage")
def users():
    q = (request.args.get("q") or "").strip()
    query = (
        select(User)
        .where(User.id.in_(select(Membership.user_id).where(Membership.unit_id.in_(scope_ids()))))
        .order_by(User.username)
    )
    if q:
        like = f"%{q.lower()}%"
        query = query.where(func.lower(User.username).like(like) | func.lower(User.display_name).like(like))
    rows = db.session.scalars(query).all()
    return render_page("admin/users.html", "admin/_user_rows.html", users=rows, q=q,
                       role_label=lambda name: _role_label(_registry().roles[name]))


@bp.route("/users/new", methods=["GET", "POST"])
@permission_required("core.users.manage")
def user_new():
    form = UserCreateForm()
    form.unit_id.choices = _unit_choices()
    form.role.choices = _role_choices()
    if request.method == "GET":
        form.unit_id.data = current_unit().id
    if form.validate_on_submit():
        username = form.username.data.strip().lower()
        if db.session.scalar(select(User.id).where(func.lower(User.username) == username)):
            form.username.errors.append(_("This username is taken."))
        else:
            user = User(username=username, display_name=form.display_name.data.strip(),
                        email=form.email.data or None, password_hash=hash_password(form.password.data))
            db.session.add(user)
            db.session.flush()
            db.session.add(Membership(user_id=user.id, unit_id=form.unit_id.data, role=form.role.data))
            record("user.created", "user", user.id, unit_id=form.unit_id.data,
                   after={"username": username, "display_name": user.display_name,
                          "role": form.role.data, "unit_id": form.unit_id.data})
            db.session.commit()
            flash(_("User %(name)s created.", name=username), "success")
            return redirect_to(url_for("admin.user_detail", user_id=user.id))
    return render_template("admin/user_new.html", form=form), 400 if form.errors else 200


def _user_page(user: User, edit=None, reset=None, grant=None, status=200):
    edit = edit or UserEditForm(obj=user, formdata=None)
    reset = reset or PasswordResetForm(formdata=None)
    grant = grant or GrantForm(formdata=None)
    grant.unit_id.choices = _unit_choices()
    grant.role.choices = _role_choices()
    if grant.unit_id.data is None:
        grant.unit_id.data = current_unit().id
    memberships = sorted(user.memberships, key=lambda m: (m.unit.code, m.role))
    return render_template(
        "admin/user_detail.html", user=user, edit=edit, reset=reset, grant=grant,
        memberships=memberships, in_scope=scope_ids(), full_control=_fully_in_scope(user),
        role_label=lambda name: _role_label(_registry().roles[name]) if name in _registry().roles else name,
    ), status


@bp.route("/users/<int:user_id>")
@permission_required("core.users.manage")
def user_detail(user_id: int):
    return _user_page(_user_in_scope_or_404(user_id))


@bp.route("/users/<int:user_id>/edit", methods=["POST"])
@permission_required("core.users.manage")
def user_edit(user_id: int):
    user = _user_in_scope_or_404(user_id)
    form = UserEditForm()
    if not form.validate_on_submit():
        return _user_page(user, edit=form, status=400)
    if form.active.data != user.active and not _fully_in_scope(user):
        abort(403)
    if user.id == current_user.id and not form.active.data:
        form.active.errors.append(_("You cannot disable your own account."))
        return _user_page(user, edit=form, status=400)
    before = {"display_name": user.display_name, "email": user.email, "active": user.active}
    user.display_name = form.display_name.data.strip()
    user.email = form.email.data or None
    if user.active and not form.active.data:
        sessions.end_all(user, "disabled")
    user.active = form.active.data
    record("user.updated", "user", user.id, before=before,
           after={"display_name": user.display_name, "email": user.email, "active": user.active})
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect_to(url_for("admin.user_detail", user_id=user.id))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@permission_required("core.users.manage")
def user_password(user_id: int):
    user = _user_in_scope_or_404(user_id)
    if not _fully_in_scope(user):
        abort(403)
    form = PasswordResetForm()
    if not form.validate_on_submit():
        return _user_page(user, reset=form, status=400)
    user.password_hash = hash_password(form.password.data)
    sessions.end_all(user, "password_reset")
    record("user.password_reset", "user", user.id,
           after={"failed_logins_cleared": throttle.clear_account(user.username)})
    db.session.commit()
    flash(_("Password reset; the user's sessions have ended."), "success")
    return redirect_to(url_for("admin.user_detail", user_id=user.id))


@bp.route("/users/<int:user_id>/roles", methods=["POST"])
@permission_required("core.users.manage")
def user_grant(user_id: int):
    user = _user_in_scope_or_404(user_id)
    form = GrantForm()
    form.unit_id.choices = _unit_choices()
    form.role.choices = _role_choices()
    if not form.validate_on_submit():
        return _user_page(user, grant=form, status=400)
    exists = any(m.unit_id == form.unit_id.data and m.role == form.role.data for m in user.memberships)
    if exists:
        form.role.errors.append(_("The user already has this role on this unit."))
        return _user_page(user, grant=form, status=400)
    membership = Membership(user_id=user.id, unit_id=form.unit_id.data, role=form.role.data)
    db.session.add(membership)
    record("membership.granted", "user", user.id, unit_id=form.unit_id.data,
           after={"role": form.role.data, "unit_id": form.unit_id.data})
    db.session.commit()
    flash(_("Role granted."), "success")
    return redirect_to(url_for("admin.user_detail", user_id=user.id))


@bp.route("/users/<int:user_id>/roles/<int:membership_id>/revoke", methods=["POST"])
@permission_required("core.users.manage")
def user_revoke(user_id: int, membership_id: int):
    user = _user_in_scope_or_404(user_id)
    get_in_scope_or_404(Membership, membership_id)
    membership = lock(Membership, membership_id)  # revoked by someone else meanwhile: not found
    if membership is None or membership.user_id != user.id:
        abort(404)
    if user.id == current_user.id and membership.role == "admin":
        flash(_("You cannot revoke your own admin role."), "error")
        return redirect_to(url_for("admin.user_detail", user_id=user.id))
    record("membership.revoked", "user", user.id, unit_id=membership.unit_id,
           before={"role": membership.role, "unit_id": membership.unit_id})
    db.session.delete(membership)
    db.session.commit()
    flash(_("Role revoked."), "success")
    if not any(m.unit_id in scope_ids() for m in user.memberships):
        return redirect_to(url_for("admin.users"))
    return redirect_to(url_for("admin.user_detail", user_id=user.id))


# ---- failed logins -----------------------------------------------------------------------
#
# An admin sees the accounts of the units they administer (a user with a role in their subtree)
# and may clear one whose every role lies there, as for a password reset.  Addresses concern
# every account, and names that belong to no account, so they are shown to, and cleared by,
# admins working at the top unit only.


def _at_top_unit() -> bool:
    return current_unit().parent_id is None


def _scoped_users() -> list[User]:
    return db.session.scalars(
        select(User).where(
            User.id.in_(select(Membership.user_id).where(Membership.unit_id.in_(scope_ids()))))
    ).all()


def _logins_page(done: str | None = None):
    top = _at_top_unit()
    address_rows, address_total = throttle.addresses() if top else ([], 0)
    return render_page(
        "admin/logins.html", "admin/_logins.html",
        accounts=throttle.accounts(_scoped_users()), addresses=address_rows,
        address_total=address_total, at_top=top, now=utcnow(), done=done,
        full_control=_fully_in_scope,
        window_hours=int(current_app.config["PORTAL_LOGIN_WINDOW"].total_seconds() // 3600),
    )


def _logins_cleared(message: str):
    if is_htmx():
        return _logins_page(done=message)
    flash(message, "success")
    return redirect_to(url_for("admin.logins"))


@bp.route("/logins")
@permission_required("core.users.manage")
def logins():
    return _logins_page()


@bp.route("/logins/users/<int:user_id>/clear", methods=["POST"])
@permission_required("core.users.manage")
def logins_clear_account(user_id: int):
    user = _user_in_scope_or_404(user_id)
    if not _fully_in_scope(user):
        abort(403)
    state = next(iter(throttle.accounts([user])), None)
    cleared = throttle.clear_account(user.username)
    record("auth.throttle_cleared", "user", user.id,
           before=_throttle_dict(state), after={"username": user.username, "cleared": cleared})
    db.session.commit()
    return _logins_cleared(_("Failed logins of %(name)s cleared; the delays are lifted.",
                             name=user.username))


@bp.route("/logins/addresses/clear", methods=["POST"])
@permission_required("core.users.manage")
def logins_clear_address():
    if not _at_top_unit():
        abort(403)
    address = request.form.get("address", "")  # (request.form holds no file parts)
    if len(address) > 64:
        abort(400)
    address = address or None  # empty: attempts that came without an address
    state = throttle.address_state(address)
    cleared = throttle.clear_address(address)
    record("auth.throttle_cleared", "address", address,
           before=_throttle_dict(state), after={"remote_addr": address, "cleared": cleared})
    db.session.commit()
    return _logins_cleared(_("Failed logins from %(address)s cleared; the delays are lifted.",
                             address=address or "?"))


def _throttle_dict(state) -> dict:
    if state is None:
        return {"failures": 0}
    return {"failures": state.failures, "last_at": state.last_at, "until": state.until}


# ---- units -------------------------------------------------------------------------------


@bp.route("/units")
@permission_required("core.units.manage")
def units():
    return render_template("admin/units.html", rows=_scope_units())


def _unit_form(form: UnitForm, unit: Unit | None):
    choices = [(u.id, "\u3000" * depth + u.name) for u, depth in _scope_units()
               if unit is None or not would_create_cycle(unit, u)]
    form.parent_id.choices = choices
    return form


@bp.route("/units/new", methods=["GET", "POST"])
@permission_required("core.units.manage")
def unit_new():
    form = _unit_form(UnitForm(), None)
    if request.method == "GET":
        form.parent_id.data = current_unit().id
        form.kind.data = "station"
    if form.validate_on_submit():
        if db.session.scalar(select(Unit.id).where(Unit.code == form.code.data.strip())):
            form.code.errors.append(_("This code is taken."))
        else:
            unit = Unit(code=form.code.data.strip(), name_zh=form.name_zh.data.strip(),
                        name_en=form.name_en.data.strip(), kind=form.kind.data,
                        parent_id=form.parent_id.data, timezone=form.timezone.data or None)
            db.session.add(unit)
            db.session.flush()
            record("unit.created", "unit", unit.id, unit_id=unit.id, after=_unit_dict(unit))
            db.session.commit()
            flash(_("Unit %(name)s created.", name=unit.name), "success")
            return redirect_to(url_for("admin.units"))
    return render_template("admin/unit_form.html", form=form, unit=None), 400 if form.errors else 200


def _unit_dict(unit: Unit) -> dict:
    return {"code": unit.code, "name_zh": unit.name_zh, "name_en": unit.name_en, "kind": unit.kind,
            "parent_id": unit.parent_id, "timezone": unit.timezone}


@bp.route("/units/<int:unit_id>", methods=["GET", "POST"])
@permission_required("core.units.manage")
def unit_edit(unit_id: int):
    unit = get_in_scope_or_404(Unit, unit_id, Unit.id)
    is_scope_root = unit.id == current_unit().id
    form = _unit_form(UnitForm(obj=unit), unit)
    if is_scope_root:
        # the unit you administer from cannot be moved out from under you
        form.parent_id.choices = [(unit.parent_id or 0, unit.parent.name if unit.parent else "—")]
    if request.method == "GET":
        form.parent_id.data = unit.parent_id or 0
        form.timezone.data = unit.timezone or ""
    if form.validate_on_submit():
        code = form.code.data.strip()
        if code != unit.code and db.session.scalar(select(Unit.id).where(Unit.code == code)):
            form.code.errors.append(_("This code is taken."))
        else:
            before = _unit_dict(unit)
            unit.code = code
            unit.name_zh = form.name_zh.data.strip()
            unit.name_en = form.name_en.data.strip()
            unit.kind = form.kind.data
            unit.timezone = form.timezone.data or None
            if not is_scope_root:
                unit.parent_id = form.parent_id.data
            record("unit.updated", "unit", unit.id, unit_id=unit.id, before=before,
                   after=_unit_dict(unit))
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect_to(url_for("admin.units"))
    return render_template("admin/unit_form.html", form=form, unit=unit), 400 if form.errors else 200


# ---- plugins per unit -----------------------------------------------------------------------


@bp.route("/units/<int:unit_id>/plugins")
@permission_required("core.plugins.manage")
def unit_plugins(unit_id: int):
    unit = get_in_scope_or_404(Unit, unit_id, Unit.id)
    return render_template("admin/unit_plugins.html", unit=unit, rows=_plugin_rows(unit))


def _plugin_rows(unit: Unit):
    own = {
        row.plugin: row.enabled
        for row in db.session.scalars(select(UnitPlugin).where(UnitPlugin.unit_id == unit.id))
    }
    registry = _registry()
    return [
        {"name": name, "enabled": plugin_enabled(unit, name), "own": own.get(name),
         "doc": (getattr(registry.plugins[name], "__doc__", "") or "").strip().splitlines()[0:1]}
        for name in registry.feature_plugins()
    ]


@bp.route("/units/<int:unit_id>/plugins/<name>", methods=["POST"])
@permission_required("core.plugins.manage")
def unit_plugin_toggle(unit_id: int, name: str):
    unit = get_in_scope_or_404(Unit, unit_id, Unit.id)
    if name not in _registry().feature_plugins():
        abort(404)
    state = request.form.get("state")
    if state not in ("on", "off", "inherit"):
        abort(400)
    before = plugin_enabled(unit, name)
    set_plugin(unit, name, {"on": True, "off": False, "inherit": None}[state])
    db.session.flush()
    record("unit.plugin", "unit", unit.id, unit_id=unit.id,
           before={"plugin": name, "enabled": before},
           after={"plugin": name, "enabled": plugin_enabled(unit, name), "state": state})
    db.session.commit()
    row = next(r for r in _plugin_rows(unit) if r["name"] == name)
    return render_page("admin/unit_plugins.html", "admin/_plugin_row.html", unit=unit,
                       row=row, rows=_plugin_rows(unit))


# ---- settings ------------------------------------------------------------------------------


@bp.route("/settings")
@permission_required("core.settings.view")
def settings_index():
    unit = current_unit()
    rows = []
    for spec in sorted(_registry().settings.values(), key=lambda s: s.key):
        in_force = settings.in_force(unit, spec.key)
        pending = [r for r in settings.history(unit, spec.key)
                   if r.effective_from > settings.local_date(unit, _now())]
        rows.append({"spec": spec, "value": settings.value(unit, spec.key), "row": in_force,
                     "pending": pending, "inherited": in_force is not None and in_force.unit_id != unit.id})
    return render_template("admin/settings.html", rows=rows, unit=unit)


def _now():
    return utcnow()


@bp.route("/settings/<key>", methods=["GET", "POST"])
@permission_required("core.settings.view")
def setting_detail(key: str):
    unit = current_unit()
    spec = _registry().settings.get(key)
    if spec is None:
        abort(404)
    form = SettingForm()
    status = 200
    if request.method == "GET":
        form.effective_from.data = settings.default_effective_date(unit)
        form.value.data = spec.dump(settings.value(unit, key))
    elif not can(current_user, "core.settings.manage", unit):
        abort(403)  # managers and auditors may look, not change: refused before validation
    elif form.validate_on_submit():
        today = settings.local_date(unit, _now())
        try:
            spec.parse(form.value.data)
        except SettingError as exc:
            form.value.errors.append(str(exc))
        if form.effective_from.data < today:
            form.effective_from.errors.append(
                _("A change cannot apply to the past (events are judged by the value in force then)."))
        if not form.errors:
            settings.change(unit, key, form.value.data, form.effective_from.data, current_user,
                            form.note.data or "")
            db.session.commit()
            flash(_("New value recorded; in force from %(date)s.", date=form.effective_from.data.isoformat()),
                  "success")
            return redirect_to(url_for("admin.setting_detail", key=key))
        status = 400
    else:
        status = 400
    return render_template(
        "admin/setting_detail.html", spec=spec, form=form, unit=unit,
        value=settings.value(unit, key), history=settings.history(unit, key),
        today=settings.local_date(unit, _now()),
    ), status
