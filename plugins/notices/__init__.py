"""Notice board (公告栏): a unit publishes notices; staff below it read and acknowledge them.

The smallest real plugin, proving every mechanism a regulation plugin uses:
a blueprint at ``/notices``, models with prefixed tables and their own migration
branch, a form, permissions, a navigation item, a dashboard panel, a per-unit
setting and demo data.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from portal.hookspecs import hookimpl
from portal.plugin_api import NavItem, Panel, Permission, SettingSpec

TITLE = ("公告栏", "Notice board")


@hookimpl
def portal_register_blueprints(app):  # noqa: ARG001
    from plugins.notices.routes import bp

    return [bp]


@hookimpl
def portal_register_permissions():
    return [
        Permission("notices.read", "阅读公告", "Read notices",
                   ("staff", "supervisor", "manager", "auditor")),
        Permission("notices.post", "发布公告", "Post notices", ("supervisor", "manager")),
    ]


@hookimpl
def portal_register_settings():
    return [
        SettingSpec("notices.visible_days", "int", 30, "公告默认展示天数",
                    "Days a notice stays up by default", minimum=1, maximum=366,
                    help_zh="发布时可另行指定下架日期。",
                    help_en="The poster may choose another end date."),
    ]


@hookimpl
def portal_nav_items(user, unit):  # noqa: ARG001
    return [NavItem(_l("Notices"), "notices.index", "notices.read", order=10)]


@hookimpl
def portal_dashboard_panels(user, unit):  # noqa: ARG001
    return [Panel("notices.latest", _l("Latest notices"), "notices.panel", "notices.read", order=10)]


@hookimpl
def portal_seed_demo(session, units, users):
    from plugins.notices.demo import seed

    seed(session, units, users)
