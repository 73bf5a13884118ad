"""Login throttling kept in the database, so it holds across workers and hosts.

After ``PORTAL_LOGIN_MAX_FAILURES`` (10) failures within ``PORTAL_LOGIN_WINDOW``
(15 min) the account is locked for ``PORTAL_LOGIN_LOCKOUT`` (15 min).
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app, request
from sqlalchemy import func, select

from portal.audit import record
from portal.auth.models import LoginAttempt, User
from portal.db_types import utcnow
from portal.extensions import db

log = logging.getLogger("portal.security")


def locked_until(user: User | None, username: str = "") -> datetime | None:
    """When the lock on this login name ends, or None.

    A name that belongs to no account is "locked" the same way, so that the lock
    message does not tell which usernames exist.
    """
    now = utcnow()
    if user is None:
        return _unknown_name_lock(username, now)
    if user.locked_until and user.locked_until > now:
        return user.locked_until
    return None


def _unknown_name_lock(username: str, now: datetime) -> datetime | None:
    cfg = current_app.config
    recent = db.session.scalars(
        select(LoginAttempt.at)
        .where(LoginAttempt.username == username, LoginAttempt.success.is_(False),
               LoginAttempt.at > now - cfg["PORTAL_LOGIN_WINDOW"] - cfg["PORTAL_LOGIN_LOCKOUT"])
        .order_by(LoginAttempt.at.desc())
        .limit(cfg["PORTAL_LOGIN_MAX_FAILURES"])
    ).all()
    if len(recent) < cfg["PORTAL_LOGIN_MAX_FAILURES"] or recent[0] - recent[-1] > cfg["PORTAL_LOGIN_WINDOW"]:
        return None
    until = recent[0] + cfg["PORTAL_LOGIN_LOCKOUT"]
    return until if until > now else None


def note_success(username: str) -> None:
    db.session.add(LoginAttempt(username=username, success=True, remote_addr=request.remote_addr))


def note_failure(username: str, user: User | None) -> datetime | None:
    """Record a failed login; lock the account when the limit is reached.  Returns the lock end."""
    cfg = current_app.config
    now = utcnow()
    db.session.add(LoginAttempt(username=username, success=False, remote_addr=request.remote_addr))
    log.warning("login failed: username=%s addr=%s", username, request.remote_addr)
    record("auth.login_failed", "user", user.id if user else None, actor=user,
           after={"username": username})
    if user is None:
        db.session.commit()
        return _unknown_name_lock(username, now)
    since = now - cfg["PORTAL_LOGIN_WINDOW"]
    last_success = db.session.scalar(
        select(func.max(LoginAttempt.at)).where(
            LoginAttempt.username == username, LoginAttempt.success.is_(True)
        )
    )
    if user.locked_until and user.locked_until > since:
        since = user.locked_until  # failures before the last lock ended do not count again
    if last_success and last_success > since:
        since = last_success
    db.session.flush()
    failures = db.session.scalar(
        select(func.count()).where(
            LoginAttempt.username == username,
            LoginAttempt.success.is_(False),
            LoginAttempt.at > since,
        )
    )
    if failures >= cfg["PORTAL_LOGIN_MAX_FAILURES"]:
        user.locked_until = now + cfg["PORTAL_LOGIN_LOCKOUT"]
        log.warning("account locked: username=%s until=%s", username, user.locked_until)
        record("auth.locked", "user", user.id, actor=user,
               after={"locked_until": user.locked_until, "failures": failures})
    db.session.commit()
    return locked_until(user)
