"""Server-side sessions: logout, disabling a user or a new password end them for real.

The signed cookie carries a random token; the database keeps its SHA-256 with the
login time and last activity, so a copied cookie stops working the moment the
session ends, and idle (30 min) and absolute (12 h) limits hold on every worker.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app, request
from sqlalchemy import select, update

from portal.auth.models import User, UserSession
from portal.db_types import utcnow
from portal.extensions import db

TOUCH_EVERY = timedelta(seconds=60)


def start(user: User) -> str:
    token = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(
            token_hash=UserSession.hash_token(token),
            user_id=user.id,
            user_agent=(request.user_agent.string or "")[:255],
            remote_addr=request.remote_addr,
        )
    )
    user.session_token = token
    return token


def load(token: str) -> User | None:
    """The user of a live session, or None (an expired session is ended on the way)."""
    row = db.session.scalar(
        select(UserSession).where(UserSession.token_hash == UserSession.hash_token(token))
    )
    if row is None or row.ended_at is not None:
        return None
    now = utcnow()
    cfg = current_app.config
    if now - row.last_seen_at > cfg["PORTAL_IDLE_TIMEOUT"]:
        _end(row, "idle")
        return None
    if now - row.created_at > cfg["PORTAL_ABSOLUTE_TIMEOUT"]:
        _end(row, "absolute")
        return None
    user = row.user
    if not user.active:
        _end(row, "disabled")
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
        db.session.commit()
    user.session_token = token
    return user


def _end(row: UserSession, reason: str) -> None:
    row.ended_at = utcnow()
    row.end_reason = reason
    db.session.commit()


def end(token: str | None, reason: str = "logout") -> None:
    if not token:
        return
    db.session.execute(
        update(UserSession)
        .where(UserSession.token_hash == UserSession.hash_token(token), UserSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    )


def end_all(user: User, reason: str) -> None:
    """End every open session of ``user`` (disabled, password changed)."""
    db.session.execute(
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    )
