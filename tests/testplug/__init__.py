"""A test plugin that implements every hook; registered explicitly by the test fixtures."""

from __future__ import annotations

from decimal import Decimal

import click
from flask import Blueprint, abort, render_template, request

from portal.auth.access import permission_required
from portal.extensions import db
from portal.hookspecs import hookimpl
from portal.plugin_api import (
    NavItem,
    Panel,
    PenaltyDraft,
    PenaltyRule,
    Permission,
    Role,
    SettingSpec,
    SlaPolicy,
)

bp = Blueprint("testplug", __name__, url_prefix="/testplug", template_folder="templates")
ISSUED: list = []  # what portal_penalty_issued was told
SEEDED: list = []  # what portal_seed_demo received
EVENTS: list = []  # every event portal_assess_penalties saw (the deadline sweep's tests count them)


@bp.route("/")
@permission_required("testplug.view")
def index():
    return render_template("testplug/index.html")


@bp.route("/panel")
@permission_required("testplug.view")
def panel():
    return "<p>testplug panel</p>"


@bp.route("/inspect")
@permission_required("testplug.inspect")
def inspect():
    return "inspected"


@bp.route("/probe/<int:probe_id>", methods=["POST"])
@permission_required("testplug.view")
def probe_change(probe_id):
    """Change or delete a sealed probe row through the ORM (tests of CORE-07 over HTTP)."""
    from tests.testplug.sealed_probe import SealedProbe

    probe = db.session.get(SealedProbe, probe_id)
    if probe is None:
        abort(404)
    action = request.form.get("action")
    if action == "delete":
        db.session.delete(probe)
    elif action in ("body", "status"):
        setattr(probe, action, request.form.get("value", ""))
    else:
        abort(400)
    db.session.commit()
    return "saved"


@hookimpl
def portal_register_blueprints(app):  # noqa: ARG001
    return [bp]


@hookimpl
def portal_register_roles():
    return [Role("inspector", "巡检员", "Inspector")]


@hookimpl
def portal_register_permissions():
    return [
        Permission("testplug.view", "查看", "View", ("staff", "supervisor", "inspector")),
        Permission("testplug.inspect", "巡检", "Inspect", ("inspector",)),
    ]


@hookimpl
def portal_register_settings():
    return [
        SettingSpec("testplug.reply_minutes", "minutes", 30, "回复时限（分钟）", "Reply within (minutes)",
                    rule="TST-R01", minimum=1, maximum=1440),
        SettingSpec("testplug.work_minutes", "minutes", 120, "处理时限（工作分钟）",
                    "Handle within (working minutes)", rule="TST-R02", minimum=0, maximum=100000),
        SettingSpec("testplug.fine", "decimal", Decimal("200.00"), "罚款金额", "Fine", rule="TST-P01",
                    minimum=Decimal("0")),
    ]


@hookimpl
def portal_nav_items(user, unit):  # noqa: ARG001
    return [NavItem("Testplug", "testplug.index", "testplug.view", order=50)]


@hookimpl
def portal_dashboard_panels(user, unit):  # noqa: ARG001
    return [Panel("testplug.panel", "Testplug panel", "testplug.panel", "testplug.view", order=50)]


@hookimpl
def portal_register_commands(cli):
    @cli.command("testplug-hello")
    @click.argument("name")
    def hello(name):
        """Say hello (a plugin command)."""
        click.echo(f"hello {name} from testplug")


@hookimpl
def portal_seed_demo(session, units, users):  # noqa: ARG001
    SEEDED.append((sorted(units), sorted(users)))


@hookimpl
def portal_register_penalty_rules():
    return [
        PenaltyRule("TST-P01", "迟复", "Late reply", "late reply clause", Decimal("200"), Decimal("200"),
                    escalation={3: "dismissal required"}),
        PenaltyRule("TST-P02", "二次投诉", "Second complaint", "range clause", Decimal("500"),
                    Decimal("1000")),
    ]


@hookimpl
def portal_assess_penalties(event):
    EVENTS.append(event)
    # TST-P01 is fixed: no amount, the core fills in the unit's fine in force at the offence
    if event.name == "testplug.reply.breached" and event.subject_user_id is not None:
        return [PenaltyDraft("TST-P01", event.unit_id, event.subject_user_id, event.occurred_at,
                             evidence=event.data.get("evidence", ""))]
    if event.name == "testplug.reply_late":
        return [PenaltyDraft("TST-P01", event.unit_id, event.subject_user_id, event.occurred_at,
                             evidence=event.data.get("evidence", ""))]
    if event.name == "testplug.second_complaint":
        # proposes whatever amount the event carries, so tests can step outside TST-P02's range
        return [PenaltyDraft("TST-P02", event.unit_id, event.subject_user_id, event.occurred_at,
                             evidence=event.data.get("evidence", ""),
                             amount=Decimal(event.data["amount"]))]
    return []


@hookimpl
def portal_penalty_issued(notice):
    ISSUED.append(notice)


@hookimpl
def portal_sla_policies():
    return [
        SlaPolicy("testplug.reply", "testplug.reply_minutes", calendar="wall", rule="TST-R01"),
        SlaPolicy("testplug.work", "testplug.work_minutes", calendar="working", rule="TST-R02",
                  pausable=True),
    ]
