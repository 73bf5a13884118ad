"""Helpers for the penalty-ledger tests: a cast of people and notices at fixed instants."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from portal.auth.models import Membership, User
from portal.auth.passwords import DUMMY_HASH
from portal.extensions import db
from portal.penalties import service
from portal.plugin_api import DomainEvent

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def person(username: str, *roles, display_name: str | None = None) -> User:
    """A user who never logs in (no slow password hashing)."""
    user = User(username=username, display_name=display_name or username.title(),
                password_hash=DUMMY_HASH)
    db.session.add(user)
    db.session.flush()
    for unit, role in roles:
        db.session.add(Membership(user_id=user.id, unit_id=unit.id, role=role))
    db.session.commit()
    return user


def cast(tree, maker=person) -> dict[str, User]:
    """sam (staff, north), ida and ivy (auditors, region), max (manager, region), cal (club staff)."""
    return {
        "sam": maker("sam", (tree["north"], "staff")),
        "ida": maker("ida", (tree["region"], "auditor")),
        "ivy": maker("ivy", (tree["region"], "auditor")),
        "max": maker("max", (tree["region"], "manager")),
        "cal": maker("cal", (tree["club"], "staff")),
    }


def late_reply(unit, user, at: datetime, evidence: str = "ticket 7 answered after 45 min"):
    """The test plugin proposes a TST-P01 draft (200 yuan) for this event."""
    return DomainEvent("testplug.reply_late", unit.id, at, subject_user_id=user.id,
                       data={"evidence": evidence})


def drafted(tree, sam, at: datetime | None = None, evidence: str = "ticket 7"):
    at = at or local(2026, 11, 9, 15, 0)
    [notice] = service.record_event(late_reply(tree["north"], sam, at, evidence))
    db.session.commit()
    return notice


def published(tree, people, at: datetime, occurred: datetime | None = None, evidence="ticket 7"):
    notice = drafted(tree, people["sam"], occurred or at - timedelta(hours=2), evidence)
    service.publish(notice, people["ida"], now=at)
    db.session.commit()
    return notice
