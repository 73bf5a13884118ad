"""The demo company: four businesses as units, demo users for each role.

``seed_demo()`` is idempotent: it creates what is missing and leaves the rest.
The demo password is ``PORTAL_DEMO_PASSWORD`` if set; otherwise one is generated
on the first run and kept in ``instance/demo-password`` (readable by the owner only).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click
from flask import current_app
from sqlalchemy import select

from portal.audit import record
from portal.auth.models import Membership, User
from portal.auth.passwords import hash_password, verify_password
from portal.extensions import db
from portal.units.models import Unit, UnitPlugin

# code, parent code, kind, name_zh, name_en
UNITS = [
    ("demo", None, "company", "演示集团", "Demo Group"),
    ("express-east", "demo", "region", "能达速递华东区", "Nengda Express East Region"),
    ("express-sh", "express-east", "station", "能达速递上海浦东站", "Nengda Shanghai Pudong Station"),
    ("property", "demo", "center", "锦绣花园物业中心", "Jinxiu Garden Property Center"),
    ("property-desk", "property", "desk", "客服值班台", "Customer-service Duty Desk"),
    ("supermarket", "demo", "store", "万家超市服务台", "Wanjia Supermarket Service Counter"),
    ("ktv", "demo", "club", "星光KTV会所", "Starlight KTV Club"),
]

# username, full name, unit code, role
USERS = [
    ("admin", "系统管理员", "demo", "admin"),
    ("auditor", "监察部 李明", "demo", "auditor"),
    ("express.manager", "华东区经理 王强", "express-east", "manager"),
    ("express.supervisor", "客服主管 陈静", "express-sh", "supervisor"),
    ("express.staff", "站点客服 张丽", "express-sh", "staff"),
    ("duty.supervisor", "客服主任 刘洋", "property-desk", "supervisor"),
    ("duty.staff", "值班客服 赵敏", "property-desk", "staff"),
    ("store.staff", "总台客服 孙悦", "supermarket", "staff"),
    ("ktv.manager", "客服经理 周杰", "ktv", "manager"),
]

# plugin switched on at the company (inherited below) and off where it is not used
PLUGIN_STATES = [("notices", "demo", True), ("notices", "ktv", False)]


def _password() -> tuple[str, bool]:
    configured = current_app.config.get("PORTAL_DEMO_PASSWORD")
    if configured:
        return configured, False
    path = Path(current_app.instance_path) / "demo-password"
    if path.exists():
        return path.read_text().strip(), False
    password = "demo-" + secrets.token_urlsafe(9)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password)
    return password, True


def seed_demo() -> tuple[str, bool]:
    password, generated = _password()
    units: dict[str, Unit] = {}
    for code, parent, kind, name_zh, name_en in UNITS:
        unit = db.session.scalar(select(Unit).where(Unit.code == code))
        if unit is None:
            unit = Unit(code=code, name_zh=name_zh, name_en=name_en, kind=kind,
                        parent_id=units[parent].id if parent else None)
            db.session.add(unit)
            db.session.flush()
            record("unit.created", "unit", unit.id, unit_id=unit.id, after={"code": code, "demo": True})
        units[code] = unit
    users: dict[str, User] = {}
    for username, name, unit_code, role in USERS:
        user = db.session.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(username=username, display_name=name, password_hash=hash_password(password))
            db.session.add(user)
            db.session.flush()
            record("user.created", "user", user.id, after={"username": username, "demo": True})
        elif not verify_password(user, password):
            user.password_hash = hash_password(password)
            record("user.password_reset", "user", user.id, after={"demo": True})
        unit_id = units[unit_code].id
        if not db.session.scalar(select(Membership.id).where(
                Membership.user_id == user.id, Membership.unit_id == unit_id, Membership.role == role)):
            db.session.add(Membership(user_id=user.id, unit_id=unit_id, role=role))
        users[username] = user
    registry = current_app.extensions["portal"]
    for plugin, code, enabled in PLUGIN_STATES:
        if plugin in registry.plugins and not db.session.scalar(select(UnitPlugin.id).where(
                UnitPlugin.unit_id == units[code].id, UnitPlugin.plugin == plugin)):
            db.session.add(UnitPlugin(unit_id=units[code].id, plugin=plugin, enabled=enabled))
    db.session.flush()
    registry.hook.portal_seed_demo(session=db.session, units=units, users=users)
    db.session.commit()
    return password, generated


def print_logins(password: str, generated: bool) -> None:
    click.echo("Demo logins (username — role @ unit):")
    rows = db.session.execute(
        select(User.username, Membership.role, Unit.code).join(Membership, Membership.user_id == User.id)
        .join(Unit, Unit.id == Membership.unit_id).order_by(Unit.code, User.username)).all()
    core = {username: i for i, (username, *_rest) in enumerate(USERS)}
    for username, role, unit_code in sorted(rows, key=lambda r: (core.get(r[0], len(core)), r[2], r[0])):
        click.echo(f"  {username:<24} {role:<11} @ {unit_code}")
    if current_app.config.get("PORTAL_DEMO_PASSWORD"):
        click.echo("Password: the value of PORTAL_DEMO_PASSWORD")
    else:
        where = Path(current_app.instance_path) / "demo-password"
        click.echo(f"Password: {password}" + ("  (generated now, " if generated else "  (")
                   + f"kept in {where}; set PORTAL_DEMO_PASSWORD to choose one)")
