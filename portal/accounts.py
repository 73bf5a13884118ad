"""Creating users outside a request (CLI, demo seed)."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from portal.audit import record
from portal.auth.models import Membership, User
from portal.auth.passwords import MIN_LENGTH, hash_password
from portal.extensions import db
from portal.units.models import Unit

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")


class AccountError(ValueError):
    pass


def root_unit() -> Unit:
    """The top of the tree; created as a plain company unit on an empty database."""
    unit = db.session.scalar(select(Unit).where(Unit.parent_id.is_(None)).order_by(Unit.id))
    if unit is None:
        unit = Unit(code="company", name_zh="公司", name_en="Company", kind="company")
        db.session.add(unit)
        db.session.flush()
        record("unit.created", "unit", unit.id, unit_id=unit.id, after={"code": unit.code})
    return unit


def create_user(username: str, display_name: str, password: str, unit_code: str | None,
                role: str) -> tuple[User, Unit]:
    from flask import current_app

    username = username.strip().lower()
    if not USERNAME.match(username):
        raise AccountError("username: 2–63 lowercase letters, digits, dots, dashes or underscores")
    if db.session.scalar(select(User.id).where(func.lower(User.username) == username)):
        raise AccountError(f"username {username!r} is taken")
    if len(password) < MIN_LENGTH:
        raise AccountError(f"password: at least {MIN_LENGTH} characters")
    if role not in current_app.extensions["portal"].roles:
        raise AccountError(f"unknown role {role!r}")
    if unit_code:
        unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
        if unit is None:
            raise AccountError(f"no unit with code {unit_code!r}")
    else:
        unit = root_unit()
    user = User(username=username, display_name=display_name, password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    db.session.add(Membership(user_id=user.id, unit_id=unit.id, role=role))
    record("user.created", "user", user.id, unit_id=unit.id,
           after={"username": username, "role": role, "unit": unit.code})
    db.session.commit()
    return user, unit
