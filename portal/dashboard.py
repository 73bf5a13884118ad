"""The dashboard (built from plugin panels), its core panel, and the health check."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template
from flask_login import current_user
from sqlalchemy import select, text

from portal.auth.access import can, current_unit, permission_required, public, visible_unit_ids
from portal.extensions import db
from portal.templating import enabled_plugins, tree_order
from portal.units.models import Unit

bp = Blueprint("core", __name__)


@bp.route("/")
@permission_required("core.dashboard")
def dashboard():
    unit = current_unit()
    registry = current_app.extensions["portal"]
    hook = registry.hook_for("portal_dashboard_panels", enabled_plugins(unit))
    panels = sorted(
        (p for group in hook(user=current_user, unit=unit) for p in group or []
         if can(current_user, p.permission, unit)),
        key=lambda p: (p.order, p.id),
    )
    return render_template("core/dashboard.html", panels=panels)


@bp.route("/panels/units")
@permission_required("core.dashboard")
def units_panel():
    ids = visible_unit_ids(current_user)
    units = db.session.scalars(select(Unit).where(Unit.id.in_(ids))).all()
    direct = {m.unit_id: m.role for m in current_user.memberships}
    roles: dict[int, list[str]] = {}
    for m in current_user.memberships:
        roles.setdefault(m.unit_id, []).append(m.role)
    registry = current_app.extensions["portal"]
    return render_template(
        "core/_units_panel.html",
        rows=tree_order(units),
        roles=roles,
        direct=direct,
        enabled={u.id: sorted(enabled_plugins(u)) for u in units},
        role_labels=registry.roles,
    )


@bp.route("/healthz")
@public
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
        ok = True
    except Exception:  # any failure to reach the database
        db.session.rollback()
        ok = False
    body = {"status": "ok" if ok else "unavailable", "database": "ok" if ok else "unreachable"}
    return jsonify(body), 200 if ok else 503
