"""Deny by default: every view declares what it needs; queries are scoped to units.

A view is marked with exactly one of ``@public``, ``@authenticated`` or
``@permission_required("plugin.action")``.  ``guard_request`` (a
``before_request`` hook) enforces the mark; a view without one is refused at
start-up by ``check_every_view_declares_access``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, abort, current_app, g, request, session
from flask_login import current_user
from sqlalchemy import select

from portal.extensions import db, login_manager
from portal.units.models import Unit, descendant_ids, plugin_enabled

log = logging.getLogger("portal.security")

PUBLIC = "<public>"
AUTHENTICATED = "<authenticated>"


def public(view: Callable) -> Callable:
    view._portal_access = PUBLIC
    return view


def authenticated(view: Callable) -> Callable:
    view._portal_access = AUTHENTICATED
    return view


def permission_required(permission: str) -> Callable[[Callable], Callable]:
    def mark(view: Callable) -> Callable:
        view._portal_access = permission
        return view

    return mark


def registry():
    return current_app.extensions["portal"]


def roles_on(user, unit: Unit) -> set[str]:
    """Roles ``user`` holds on ``unit`` directly or through an ancestor."""
    lineage = {u.id for u in unit.lineage()}
    return {m.role for m in user.memberships if m.unit_id in lineage}


def can(user, permission: str, unit: Unit | None) -> bool:
    if unit is None or not getattr(user, "is_authenticated", False):
        return False
    roles = roles_on(user, unit)
    if "admin" in roles:
        return permission in registry().permissions
    grants = registry().grants
    return any(permission in grants.get(role, ()) for role in roles)


def visible_unit_ids(user) -> set[int]:
    """Units the user has a role on, and all their sub-units."""
    if "visible_unit_ids" not in g:
        g.visible_unit_ids = descendant_ids({m.unit_id for m in user.memberships})
    return g.visible_unit_ids


def current_unit() -> Unit | None:
    """The unit the user works in now (chosen in the header), or None without any role."""
    if "unit" in g:
        return g.unit
    unit = None
    if current_user.is_authenticated:
        visible = visible_unit_ids(current_user)
        wanted = session.get("unit_id")
        if wanted in visible:
            unit = db.session.get(Unit, wanted)
        elif visible:
            # default: the highest unit the user has a role on
            direct = sorted(current_user.memberships, key=lambda m: (len(m.unit.ancestors()), m.unit_id))
            unit = direct[0].unit
            session["unit_id"] = unit.id
    g.unit = unit
    return unit


def scope_ids() -> set[int]:
    """Ids of the current unit and its sub-units: what unit-owned queries may return."""
    unit = current_unit()
    if unit is None:
        return set()
    if "scope_ids" not in g:
        g.scope_ids = descendant_ids({unit.id})
    return g.scope_ids


def get_in_scope_or_404(model, ident, unit_column=None):
    """Load ``model`` by id only if it belongs to the current unit's subtree; else 404."""
    column = unit_column if unit_column is not None else model.unit_id
    row = db.session.scalar(select(model).where(model.id == ident, column.in_(scope_ids())))
    if row is None:
        abort(404)
    return row


def guard_request():
    """``before_request``: enforce the view's declared access and the plugin's enabling."""
    endpoint = request.endpoint
    if endpoint is None or endpoint == "static":
        return None
    view = current_app.view_functions[endpoint]
    access = getattr(view, "_portal_access", None)
    if access == PUBLIC:
        return None
    if access is None:  # cannot happen after the start-up check, but deny anyway
        abort(403)
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    unit = current_unit()
    plugin = registry().blueprint_plugin.get(request.blueprint or "")
    if plugin is not None and (unit is None or not plugin_enabled(unit, plugin)):
        abort(404)
    if access == AUTHENTICATED:
        return None
    if not can(current_user, access, unit):
        log.warning(
            "access denied: user=%s permission=%s unit=%s path=%s",
            current_user.username, access, unit.code if unit else None, request.path,
        )
        from portal.audit import record

        record("access.denied", "route", request.path, unit_id=unit.id if unit else None,
               after={"permission": access})
        db.session.commit()
        abort(403)
    return None


def check_every_view_declares_access(app: Flask) -> None:
    undeclared = [
        endpoint
        for endpoint, view in app.view_functions.items()
        if endpoint != "static" and getattr(view, "_portal_access", None) is None
    ]
    if undeclared:
        raise RuntimeError(
            "these views declare no access (use @public, @authenticated or "
            f"@permission_required): {', '.join(sorted(undeclared))}"
        )
    perms = app.extensions["portal"].permissions
    unknown = sorted(
        {
            view._portal_access
            for view in app.view_functions.values()
            if getattr(view, "_portal_access", PUBLIC) not in (PUBLIC, AUTHENTICATED)
            and view._portal_access not in perms
        }
    )
    if unknown:
        raise RuntimeError(f"views require permissions nobody registered: {', '.join(unknown)}")
