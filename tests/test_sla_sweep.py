"""The sweep: breaches marked exactly once (also by two sweepers at once), warnings once,
breach events to the plugins' penalty assessment, failures isolated."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.extensions import db
from portal.penalties.models import InboxMessage, PenaltyNotice
from portal.sla import notify, service
from portal.sla.models import BREACHED, OPEN, Deadline
from portal.sla.sweep import sweep
from tests.sla_support import person
from tests import testplug

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 in Shanghai


@pytest.fixture
def staff(tree):
    return person("sweep.staff", (tree["north"], "staff"))


def audits(action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action))


def drafts() -> int:
    return db.session.scalar(select(func.count()).select_from(PenaltyNotice).where(
        PenaltyNotice.event_name == "testplug.reply.breached"))


def breach_events() -> list:
    return [e for e in testplug.EVENTS if e.name.endswith(".breached")]


def start_many(unit, owner, n: int, at: datetime, policy: str = "testplug.reply") -> list[int]:
    ids = [service.start(policy, unit, ("ticket", f"{at:%H%M}-{i}"), owner, at=at).id for i in range(n)]
    db.session.commit()
    return ids


def test_sweep_breaches_due_deadlines_once_and_emits_one_event_each(tree, staff):
    testplug.EVENTS.clear()
    due = start_many(tree["north"], staff, 3, T0)                       # due T0+30 min
    later = start_many(tree["north"], staff, 2, T0 + timedelta(hours=1))  # due T0+90 min
    now = T0 + timedelta(minutes=45)
    result = sweep(now=now)
    assert result.breached == 3
    rows = {d.id: d for d in db.session.scalars(select(Deadline))}
    assert {i for i, d in rows.items() if d.status == BREACHED} == set(due)
    assert all(rows[i].status == OPEN for i in later)
    assert all(rows[i].breached_at == now and rows[i].breached_owner_id == staff.id for i in due)
    events = breach_events()
    assert sorted(e.data["deadline_id"] for e in events) == sorted(due)
    assert {e.name for e in events} == {"testplug.reply.breached"}
    assert all(e.subject_user_id == staff.id and e.unit_id == tree["north"].id for e in events)
    assert events[0].data["rule"] == "TST-R01"
    assert audits("sla.breached") == 3
    # a second sweep at the same instant finds nothing more
    assert sweep(now=now).breached == 0
    assert len(breach_events()) == 3 and audits("sla.breached") == 3


def test_breach_is_exactly_at_the_due_instant_not_before(tree, staff):
    start_many(tree["north"], staff, 1, T0)
    assert sweep(now=T0 + timedelta(minutes=30)).breached == 0  # due_at itself is still on time
    assert sweep(now=T0 + timedelta(minutes=30, microseconds=1)).breached == 1


def test_breach_goes_to_the_owner_at_breach_time(tree, staff):
    other = person("sweep.other", (tree["north"], "staff"))
    testplug.EVENTS.clear()
    [ident] = start_many(tree["north"], staff, 1, T0)
    service.reassign(db.session.get(Deadline, ident), other, at=T0 + timedelta(minutes=10))
    db.session.commit()
    sweep(now=T0 + timedelta(hours=1))
    d = db.session.get(Deadline, ident)
    assert d.breached_owner_id == other.id
    assert [e.subject_user_id for e in breach_events()] == [other.id]


def test_warning_sent_once_and_not_for_met_or_paused_deadlines(tree, staff, monkeypatch):
    warned = []
    monkeypatch.setattr(notify, "warned", lambda d: warned.append(d.id))
    ids = start_many(tree["north"], staff, 3, T0)  # warn at T0+24 min
    service.meet(db.session.get(Deadline, ids[1]), at=T0 + timedelta(minutes=5))
    work = service.start("testplug.work", tree["north"], ("job", 1), staff, at=T0)  # 120 working min
    service.pause(work, at=T0 + timedelta(minutes=10))
    db.session.commit()
    now = T0 + timedelta(minutes=25)
    assert sweep(now=now).warned == 2
    assert sorted(warned) == sorted([ids[0], ids[2]])
    assert sweep(now=now + timedelta(minutes=1)).warned == 0
    assert audits("sla.warned") == 2
    # later: the open ones breach (no second warning); the paused one, past its warn time, stays quiet
    later = sweep(now=T0 + timedelta(minutes=100))
    assert (later.breached, later.warned) == (2, 0)
    assert len(warned) == 2
    assert db.session.get(Deadline, work.id).warned_at is None


def test_paused_deadline_never_breaches_until_resumed(tree, staff):
    work = service.start("testplug.work", tree["north"], ("job", 1), staff, at=T0)  # due 11:00 local
    service.pause(work, at=T0 + timedelta(minutes=30))
    db.session.commit()
    assert sweep(now=T0 + timedelta(days=3)).breached == 0
    work = db.session.get(Deadline, work.id)
    service.resume(work, at=T0 + timedelta(days=3))
    db.session.commit()
    assert sweep(now=T0 + timedelta(days=4)).breached == 1


def test_a_failing_deadline_does_not_stop_the_others(tree, staff, monkeypatch):
    ids = start_many(tree["north"], staff, 5, T0)
    poisoned = ids[2]
    real = notify.penalty_event

    def flaky(event):
        if event.data["deadline_id"] == poisoned:
            raise RuntimeError("a plugin hook failed")
        real(event)

    monkeypatch.setattr(notify, "penalty_event", flaky)
    testplug.EVENTS.clear()
    result = sweep(now=T0 + timedelta(hours=1), batch_size=10)
    assert result.breached == 4 and result.failed == {poisoned}
    statuses = dict(db.session.execute(select(Deadline.id, Deadline.status)).all())
    assert statuses[poisoned] == OPEN  # its breach was rolled back with its audit entry
    assert sum(s == BREACHED for s in statuses.values()) == 4
    assert audits("sla.breached") == 4
    # the batch was redone deadline by deadline: the hooks may have heard an event twice,
    # but the ledger holds one draft per breach
    assert {e.data["deadline_id"] for e in breach_events()} == set(ids) - {poisoned}
    assert drafts() == 4
    monkeypatch.setattr(notify, "penalty_event", real)
    assert sweep(now=T0 + timedelta(hours=1)).breached == 1
    assert drafts() == 5


def test_sweep_run_twice_concurrently_marks_each_breach_once(app, tree, staff):
    """Two sweepers, each with its own app context, session and connection, at the same time."""
    n_due = 60
    due = start_many(tree["north"], staff, n_due, T0)
    not_due = start_many(tree["north"], staff, 10, T0 + timedelta(hours=5))
    db.session.close()
    testplug.EVENTS.clear()
    now = T0 + timedelta(hours=1)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                results.append(sweep(now=now, batch_size=7))
                db.session.remove()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(results) == 2
    assert sum(r.breached for r in results) == n_due
    events = breach_events()
    assert len(events) == n_due
    assert sorted(e.data["deadline_id"] for e in events) == sorted(due)
    assert audits("sla.breached") == n_due
    assert drafts() == n_due  # one TST-P01 draft per breach, through the penalty ledger
    statuses = dict(db.session.execute(select(Deadline.id, Deadline.status)).all())
    assert all(statuses[i] == BREACHED for i in due)
    assert all(statuses[i] == OPEN for i in not_due)


def test_sla_sweep_command(app, tree, staff):
    start_many(tree["north"], staff, 2, datetime.now(timezone.utc) - timedelta(hours=2))
    result = app.test_cli_runner().invoke(args=["portal", "sla-sweep"])
    assert result.exit_code == 0, result.output
    assert "breached 2" in result.output
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Deadline).where(Deadline.status == BREACHED)) == 2


def test_owner_and_supervisors_hear_of_warnings_and_breaches(tree, staff):
    sup = person("sweep.sup", (tree["region"], "supervisor"))  # the nearest supervisors up the tree
    person("far.sup", (tree["company"], "supervisor"))           # further up: not told
    start_many(tree["north"], staff, 1, T0)
    sweep(now=T0 + timedelta(minutes=25))
    sweep(now=T0 + timedelta(minutes=31))
    messages = db.session.execute(
        select(InboxMessage.user_id, InboxMessage.kind, InboxMessage.link).order_by(InboxMessage.id)).all()
    assert [(m.user_id, m.link) for m in messages] == [
        (staff.id, "/sla/mine"),  # the warning
        (staff.id, "/sla/mine"),  # the breach, to the owner
        (sup.id, "/sla/"),        # and to the supervisor
    ]
    assert {m.kind for m in messages} == {"deadline"}
    notice = db.session.scalar(select(PenaltyNotice))
    assert (notice.user_id, notice.rule_id, notice.status) == (staff.id, "TST-P01", "draft")
    assert notice.occurred_at == T0 + timedelta(minutes=30)
