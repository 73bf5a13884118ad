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
        Permission("core.sla.view", "查看超时事项", "See overdue deadlines", ("supervisor", "manager", "auditor")),
        Permission("core.sla.stats", "查看超时统计", "See breach statistics", ("manager", "auditor")),
        Permission("core.sla.calendar", "管理工作日历", "Manage the working calendar"),
        Permission("core.audit.view", "查看审计记录", "See the audit trail", ("auditor",)),
        Permission("core.audit.verify", "校验审计链", "Verify the audit chain", ("auditor",)),
        Permission("core.penalties.view_own", "查看本人处罚并申诉", "See and appeal my penalties", everyone),
        Permission("core.penalties.view_all", "查看处罚台账", "See the penalty ledger", ("manager", "auditor")),
        Permission("core.penalties.issue", "起草与公布处罚", "Draft and publish penalties", ("auditor",)),
        Permission("core.penalties.decide", "处理申诉", "Decide appeals", ("auditor",)),
        Permission("core.penalties.payroll", "工资扣款表", "Payroll statements", ("manager", "auditor")),
    ]


@hookimpl(trylast=True)
def portal_register_blueprints(app):  # noqa: ARG001
    from portal.admin.routes import bp as admin_bp
    from portal.audit.routes import bp as audit_bp
    from portal.auth.routes import bp as auth_bp
    from portal.dashboard import bp as core_bp
    from portal.penalties.routes import bp as penalties_bp
    from portal.sla.routes import bp as sla_bp

    return [core_bp, auth_bp, admin_bp, sla_bp, audit_bp, penalties_bp]


@hookimpl(trylast=True)
def portal_nav_items(user, unit):  # noqa: ARG001
    return [
        NavItem(_l("Dashboard"), "core.dashboard", "core.dashboard", order=0),
        NavItem(_l("Users"), "admin.users", "core.users.manage", order=900),
        NavItem(_l("Units"), "admin.units", "core.units.manage", order=910),
        NavItem(_l("Settings"), "admin.settings_index", "core.settings.view", order=920),
        NavItem(_l("Overdue"), "sla.overdue", "core.sla.view", order=800),
        NavItem(_l("Breach statistics"), "sla.stats", "core.sla.stats", order=810),
        NavItem(_l("Working calendar"), "sla.calendar", "core.sla.calendar", order=930),
        NavItem(_l("Audit trail"), "audit.index", "core.audit.view", order=850),
        NavItem(_l("My penalties"), "penalties.mine", "core.penalties.view_own", order=700),
        NavItem(_l("Penalty ledger"), "penalties.ledger", "core.penalties.view_all", order=710),
        NavItem(_l("Payroll"), "penalties.payroll", "core.penalties.payroll", order=720),
    ]


@hookimpl(trylast=True)
def portal_dashboard_panels(user, unit):  # noqa: ARG001
    return [
        Panel("core.units", _l("My units"), "core.units_panel", "core.dashboard", order=900),
        Panel("core.sla_overdue", _l("Overdue"), "sla.panel", "core.sla.view", order=20),
    ]


@hookimpl(trylast=True)
def portal_register_commands(cli):
    """The core's commands are added in ``portal.cli``; the deadline sweep here."""
    from portal.audit.cli import register_commands as register_audit
    from portal.penalties.cli import register as register_penalties
    from portal.sla.cli import register as register_sla

    register_sla(cli)
    register_audit(cli)
    register_penalties(cli)


@hookimpl(trylast=True)
def portal_register_settings():
    from portal.audit.settings import audit_settings
    from portal.penalties.settings import penalty_settings
    from portal.sla.settings import sla_settings

    return [*sla_settings(), *audit_settings(), *penalty_settings()]
