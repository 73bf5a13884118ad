"""The core's own features, registered as a default plugin named ``core``.

The core only loops over hooks; its dashboard panel, navigation, roles and
permissions come through the same hooks a regulation plugin uses.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from portal.hookspecs import hookimpl
from portal.plugin_api import NavItem, Panel, Permission, Role


@hookimpl(trylast=True)
def portal_register_roles():
    return [
        Role("staff", "客服人员", "Staff"),
        Role("supervisor", "主管", "Supervisor"),
        Role("manager", "经理", "Manager"),
        Role("auditor", "监察/质控", "Auditor"),
        Role("admin", "管理员", "Administrator"),
    ]


@hookimpl(trylast=True)
def portal_register_permissions():
    everyone = ("staff", "supervisor", "manager", "auditor")
    return [
        Permission("core.dashboard", "查看工作台", "See the dashboard", everyone),
        Permission("core.users.manage", "管理用户", "Manage users"),
        Permission("core.units.manage", "管理单位", "Manage units"),
        Permission("core.plugins.manage", "启用/停用功能", "Switch plugins on and off"),
        Permission("core.settings.view", "查看规章参数", "See regulation settings", ("manager", "auditor")),
        Permission("core.settings.manage", "修改规章参数", "Change regulation settings"),
    ]


@hookimpl(trylast=True)
def portal_register_blueprints(app):  # noqa: ARG001
    from portal.admin.routes import bp as admin_bp
    from portal.auth.routes import bp as auth_bp
    from portal.dashboard import bp as core_bp

    return [core_bp, auth_bp, admin_bp]


@hookimpl(trylast=True)
def portal_nav_items(user, unit):  # noqa: ARG001
    return [
        NavItem(_l("Dashboard"), "core.dashboard", "core.dashboard", order=0),
        NavItem(_l("Users"), "admin.users", "core.users.manage", order=900),
        NavItem(_l("Units"), "admin.units", "core.units.manage", order=910),
        NavItem(_l("Settings"), "admin.settings_index", "core.settings.view", order=920),
    ]


@hookimpl(trylast=True)
def portal_dashboard_panels(user, unit):  # noqa: ARG001
    return [Panel("core.units", _l("My units"), "core.units_panel", "core.dashboard", order=900)]


@hookimpl(trylast=True)
def portal_register_commands(cli):  # noqa: ARG001
    """The core's commands are added in ``portal.cli``; nothing more here."""
