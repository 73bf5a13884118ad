"""Helpers for the deadline tests: users that never log in (no slow password hashing)."""

from __future__ import annotations

from portal.auth.models import Membership, User
from portal.auth.passwords import DUMMY_HASH
from portal.extensions import db


def person(username: str, *roles, display_name: str | None = None) -> User:
    user = User(username=username, display_name=display_name or username.title(), password_hash=DUMMY_HASH)
    db.session.add(user)
    db.session.flush()
    for unit, role in roles:
        db.session.add(Membership(user_id=user.id, unit_id=unit.id, role=role))
    db.session.commit()
    return user
