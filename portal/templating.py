"""What every template can use: navigation, the unit switcher, plugin state."""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_babel import get_locale
from flask_login import current_user
from sqlalchemy import select

from portal.auth.access import can, current_unit, visible_unit_ids
from portal.extensions import db
from portal.units.models import Unit, plugin_enabled


def enabled_plugins(unit: Unit | None) -> set[str]:
    if unit is None:
        return set()
    registry = current_app.extensions["portal"]
    return {name for name in registry.feature_plugins() if plugin_enabled(unit, name)}


def nav_items():
    unit = current_unit()
    if unit is None or not current_user.is_authenticated:
        return []
    registry = current_app.extensions["portal"]
    hook = registry.hook_for("portal_nav_items", enabled_plugins(unit))
    items = [item for group in hook(user=current_user, unit=unit) for item in group or []]
    return sorted(
        (i for i in items if can(current_user, i.permission, unit)), key=lambda i: (i.order, i.label)
    )


def unit_choices() -> list[tuple[int, str]]:
    """Units the user may switch to, as an indented tree."""
    ids = visible_unit_ids(current_user)
    units = db.session.scalars(select(Unit).where(Unit.id.in_(ids))).all()
    return [(u.id, "\u3000" * depth + u.name) for u, depth in tree_order(units)]


def tree_order(units: list[Unit]) -> list[tuple[Unit, int]]:
    """Units in depth-first order with their depth within the given set."""
    by_parent: dict[int | None, list[Unit]] = {}
    ids = {u.id for u in units}
    for u in units:
        by_parent.setdefault(u.parent_id if u.parent_id in ids else None, []).append(u)
    out: list[tuple[Unit, int]] = []

    def walk(parent, depth):
        for u in sorted(by_parent.get(parent, []), key=lambda u: u.code):
            out.append((u, depth))
            walk(u.id, depth + 1)

    walk(None, 0)
    return out


def register_template_globals(app: Flask) -> None:
    from pathlib import Path

    from portal.units.models import kind_labels

    vendored = sorted(Path(app.static_folder, "vendor").glob("htmx-2.0.*.min.js"))
    if not vendored:
        raise RuntimeError("static/vendor/htmx-2.0.x.min.js is missing")
    app.jinja_env.globals["htmx_js"] = f"vendor/{vendored[-1].name}"
    app.jinja_env.globals["kind_labels"] = kind_labels()

    @app.context_processor
    def portal_context():
        authed = current_user.is_authenticated
        return {
            "current_unit": current_unit() if authed else None,
            "nav_items": nav_items if authed else (lambda: []),
            "unit_choices": unit_choices if authed else (lambda: []),
            "can": lambda permission: authed and can(current_user, permission, current_unit()),
            "lang": str(get_locale() or "zh_Hans"),
            "html_lang": "en" if str(get_locale()) == "en" else "zh-Hans",
            "request_path": request.full_path.rstrip("?"),
            "plugin_title": lambda name: app.extensions["portal"].title(
                name, "en" if str(get_locale()) == "en" else "zh"),
        }
