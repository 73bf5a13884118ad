"""Issue 24: the penalty lifecycle is safe against double taps and two people at once.

Two threads, each with its own logged-in client, post the same step at the same moment
(``portal.testing.concurrently``), as often as fits in a couple of seconds: one publication,
one appeal, one decision — each with one audit entry and one message to the person — and
the other answer is the refusal a late second tap gets, never a 500.
"""

from __future__ import annotations

import html
from datetime import timedelta

from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.db_types import utcnow
from portal.extensions import db
from portal.penalties import rules as R
from portal.penalties import service
from portal.penalties.models import InboxMessage, PenaltyAppeal, PenaltyDecision, PenaltyNotice
from portal.testing import Tab, concurrently, make_user, race_rounds
from tests.penalty_support import cast, drafted, local

FIRST = local(2026, 11, 9, 15, 0)  # each round's offence a minute later: a draft of its own


def english(username, *roles, **fields):
    return make_user(username, *roles, locale="en", **fields)


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def entries(action: str, notice: PenaltyNotice) -> int:
    return count(AuditEntry, AuditEntry.action == action, AuditEntry.object_id == str(notice.id))


def answers(results) -> list:
    """Each status; an exception the app let through counts as a 500."""
    out = [getattr(r, "status_code", 500) for r in results]
    assert all(s < 500 for s in out), results
    return sorted(out)


def refusal(results) -> str:
    [refused] = [r for r in results if r.status_code == 400]
    return html.unescape(refused.get_data(as_text=True))


def test_core_03_publish_twice_at_once_publishes_once(app, tree):
    people = cast(tree, maker=english)
    tabs = [Tab(app, "ida"), Tab(app, "ida")]
    for n in race_rounds():
        notice = drafted(tree, people["sam"], at=FIRST + timedelta(minutes=n))
        results = concurrently(app, *(t.post(f"/penalties/{notice.id}/publish", {"amount": ""}) for t in tabs))
        assert answers(results) == [302, 400]
        assert "Only a draft can be published." in refusal(results)
        assert entries("penalty.published", notice) == 1
        assert count(InboxMessage, InboxMessage.kind == "penalty.published",
                     InboxMessage.link == f"/penalties/{notice.id}") == 1
        assert db.session.get(PenaltyNotice, notice.id).status == R.PUBLISHED


def _published(tree, people, n: int) -> PenaltyNotice:
    notice = drafted(tree, people["sam"], at=FIRST + timedelta(minutes=n))
    service.publish(notice, people["ida"], now=utcnow())
    db.session.commit()
    return notice


def test_core_04_appeal_twice_at_once_stores_one_appeal(app, tree):
    people = cast(tree, maker=english)
    tabs = [Tab(app, "sam"), Tab(app, "sam")]
    for n in race_rounds():
        notice = _published(tree, people, n)
        results = concurrently(app, *(t.post(f"/penalties/{notice.id}/appeal", {"text": "I answered in time."})
                                      for t in tabs))
        assert answers(results) == [200, 400]
        assert "This penalty has already been appealed." in refusal(results)
        assert count(PenaltyAppeal, PenaltyAppeal.notice_id == notice.id) == 1
        assert entries("penalty.appealed", notice) == 1
        assert count(InboxMessage, InboxMessage.kind == "penalty.appealed",
                     InboxMessage.link == f"/penalties/{notice.id}") == 1


def test_core_05_decide_twice_at_once_decides_once(app, tree):
    people = cast(tree, maker=english)
    tabs = [Tab(app, "ivy"), Tab(app, "ivy")]
    for n in race_rounds():
        notice = _published(tree, people, n)
        service.appeal(notice, people["sam"], "I answered in time.", now=utcnow())
        db.session.commit()
        results = concurrently(app, *(t.post(f"/penalties/{notice.id}/decide",
                                             {"outcome": R.UPHELD, "reason": "The log shows 45 minutes."})
                                      for t in tabs))
        assert answers(results) == [302, 400]
        assert "This penalty is final; it can no longer be changed." in refusal(results)
        assert count(PenaltyDecision, PenaltyDecision.notice_id == notice.id) == 1
        assert entries("penalty.decided", notice) == 1
