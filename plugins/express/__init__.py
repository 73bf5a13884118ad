"""Express inquiries (快件查询): the inquiry ladder of 能达速递 (seed 000, 第一篇, EXP-*).

A station's customer service takes a customer's inquiry about a parcel and passes it
up the ladder one level at a time — destination station, regional center, network
manager, network management department — each level recording its checks and
replying "found" or "not found" within its clock; the station keeps the customer
informed every 30 minutes.  Complaints verified by inspection become penalty drafts.
Mounted at ``/express``.
"""

from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l

from portal.hookspecs import hookimpl
from portal.plugin_api import NavItem, Panel, PenaltyRule, Permission, SettingSpec, SlaPolicy

TITLE = ("快件查询", "Express inquiries")


@hookimpl
def portal_register_blueprints(app):  # noqa: ARG001
    from plugins.express.routes import bp

    return [bp]


@hookimpl
def portal_register_permissions():
    return [
        Permission("express.view", "查看快件查询", "View express inquiries",
                   ("staff", "supervisor", "manager", "auditor")),
        Permission("express.handle", "受理与回复查询", "Take and answer inquiries",
                   ("staff", "supervisor", "manager")),
        Permission("express.supervise", "客服主管处理升级查询", "Handle escalated inquiries (supervisor)",
                   ("supervisor", "manager")),
        Permission("express.complaints", "登记投诉", "Record complaints", ("supervisor", "manager", "auditor")),
        Permission("express.verify", "核实投诉（监察部/质控部）", "Verify complaints (inspection)", ("auditor",)),
        Permission("express.stats", "查询时效统计", "Reply statistics", ("supervisor", "manager", "auditor")),
        Permission("express.configure", "网络层级与代理派送设置", "Configure levels and partners", ("manager",)),
    ]


def _minutes(key, default, zh, en, rule, minimum=1):
    return SettingSpec(key, "minutes", default, zh, en, rule=rule, minimum=minimum, maximum=7 * 24 * 60)


@hookimpl
def portal_register_settings():
    from plugins.express.rules import DEFAULT_WAYBILL_PATTERN, pattern_error

    return [
        _minutes("express.customer_minutes", 30, "站点客服回复客户时限（分钟）",
                 "Station CS answers the customer within (minutes)", "EXP-R09"),
        _minutes("express.customer_repeat_minutes", 30, "无结果时再次通报进度间隔（分钟，0=不重复）",
                 "Then report progress again every (minutes, 0 = no repeat)", "EXP-R09", minimum=0),
        _minutes("express.reply_minutes", 30, "站点与辖区客服之间回复时限（分钟）",
                 "Stations and center CS reply to each other within (minutes)", "EXP-R10"),
        _minutes("express.supervisor_minutes", 40, "客服主管/经理回复时限（分钟）",
                 "Supervisor gives the result or status within (minutes)", "EXP-R11"),
        _minutes("express.assist_minutes", 30, "辖区网管回复客服主管时限（分钟）",
                 "Network manager answers the supervisor within (minutes)", "EXP-R11"),
        _minutes("express.network_minutes", 30, "区域网管/总部客服回复时限（分钟）",
                 "Network manager / HQ CS reply within (minutes)", "EXP-R11"),
        _minutes("express.netdept_minutes", 30, "网络管理部给出结果时限（分钟）",
                 "Network management department gives a result within (minutes)", "EXP-R12"),
        SettingSpec("express.p05_response_minutes", "minutes", 3 * 24 * 60,
                    "站点经理回复质控部处罚通知时限（分钟）",
                    "Station manager answers a quality penalty notice within (minutes)", rule="EXP-P05",
                    minimum=0, maximum=60 * 24 * 60,
                    help_zh="原文未规定期限；默认 3 天（4320 分钟），0 = 不设期限。",
                    help_en="The regulation names no period; 3 days (4320 minutes) by default, 0 = none."),
        SettingSpec("express.intake_repeat_minutes", "minutes", 5,
                    "同一运单重复受理确认时间窗（分钟）",
                    "Ask before a second inquiry of the same waybill at the station within (minutes)",
                    minimum=0, maximum=24 * 60,
                    help_zh="同一站点在此时间内再次受理同一运单时，先请客服确认，以免重复计时；0 = 不询问。",
                    help_en="A second intake of the same waybill at the same station within this time "
                            "asks first, so one call does not start two customer clocks; 0 = never ask."),
        SettingSpec("express.waybill_pattern", "text", DEFAULT_WAYBILL_PATTERN, "运单号格式（正则表达式）",
                    "Waybill number format (regular expression)", rule="EXP-R01", validate=pattern_error),
    ]


@hookimpl
def portal_sla_policies():
    return [
        SlaPolicy("express.customer", "express.customer_minutes", rule="EXP-R09"),
        SlaPolicy("express.customer_repeat", "express.customer_repeat_minutes", rule="EXP-R09"),
        SlaPolicy("express.hop_reply", "express.reply_minutes", rule="EXP-R10"),
        SlaPolicy("express.supervisor", "express.supervisor_minutes", rule="EXP-R11"),
        SlaPolicy("express.assist", "express.assist_minutes", rule="EXP-R11"),
        SlaPolicy("express.network", "express.network_minutes", rule="EXP-R11"),
        SlaPolicy("express.netdept", "express.netdept_minutes", rule="EXP-R12"),
        SlaPolicy("express.p05_response", "express.p05_response_minutes", rule="EXP-P05"),
    ]


def _fixed(rule_id, zh, en, clause, amount, issuer, escalation=None):
    value = Decimal(amount)
    return PenaltyRule(rule_id, zh, en, clause, value, value, issuer=issuer, escalation=escalation or {})


@hookimpl
def portal_register_penalty_rules():
    return [
        _fixed("EXP-R14", "越级查询", "Inquiry past the levels (越级)", "S0:74, S0:80 每次罚款100元",
               "100", "总部行政部"),
        _fixed("EXP-P02", "客服服务质量不达标且未换岗", "CS quality still failing, not reassigned",
               "S0:92 处以200元/次", "200", "质控部"),
        _fixed("EXP-P03", "查询中谩骂、出口伤人", "Abuse or insults during an inquiry",
               "S0:92 每次处以200元", "200", "质控部"),
        _fixed("EXP-P04", "站点人员被客户投诉（服务态度）", "Customer complaint about a station staff member",
               "S0:98 一经查证，处罚200元/次", "200", "质控部",
               {3: "发生三次：站点经理须予辞退 (3rd: the station manager must dismiss them)"}),
        _fixed("EXP-P04-M", "站点经理被客户投诉（服务态度）", "Customer complaint about a station manager",
               "S0:100 一经查证，处罚500元/次", "500", "质控部",
               {3: "发生三次：全网络通报批评并加重处罚 (3rd: network-wide notice, heavier penalty)"}),
        _fixed("EXP-P05", "站点经理无视质控部处罚通知", "Station manager ignored a quality penalty notice",
               "S0:104 处以500元/次，网站通报批评", "500", "质控部"),
        PenaltyRule("EXP-P06", "拒不处理监管/媒体投诉且不服质控中心方案",
                    "Regulator/media complaint: plan refused and 质控中心's plan rejected",
                    "S0:106 500—10000元/次，清退出能达网络，通报省邮政管理局",
                    Decimal("500"), Decimal("10000"), issuer="质控中心",
                    escalation={1: "清退出能达网络并通报省邮政管理局 (expelled; provincial postal "
                                   "administration notified)"}),
        PenaltyRule("EXP-P07", "投诉未及时处理造成二次投诉", "Complaint not handled in time: second complaint",
                    "S0:108 500—1000元/次", Decimal("500"), Decimal("1000"), issuer="质控部"),
    ]


@hookimpl
def portal_assess_penalties(event):
    from plugins.express.penalties import assess

    return assess(event)


@hookimpl
def portal_penalty_issued(notice):
    """A published 质控部 service-quality notice opens the station manager's response (EXP-P05)."""
    from plugins.express.complaints import on_penalty_issued

    on_penalty_issued(notice)


@hookimpl
def portal_nav_items(user, unit):  # noqa: ARG001
    return [
        NavItem(_l("Inquiries"), "express.inbox", "express.view", order=20),
        NavItem(_l("Inquiry statistics"), "express.stats", "express.stats", order=21),
        NavItem(_l("Complaints"), "express.complaints", "express.complaints", order=22),
        NavItem(_l("Express setup"), "express.setup", "express.configure", order=23),
        NavItem(_l("Refused forwards"), "express.refused", "core.penalties.issue", order=24),
    ]


@hookimpl
def portal_dashboard_panels(user, unit):  # noqa: ARG001
    return [Panel("express.waiting", _l("Inquiries waiting for you"), "express.panel", "express.view",
                  order=20)]


@hookimpl
def portal_seed_demo(session, units, users):
    from plugins.express.demo import seed

    seed(session, units, users)
