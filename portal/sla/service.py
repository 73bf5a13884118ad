"""Starting, meeting, pausing, reassigning and cancelling deadlines.

A plugin calls these from its own views; none of them commits (the caller commits,
so the timer changes with the record it belongs to).  Instants are UTC-aware.

* ``start`` reads the policy's duration from the unit's setting **in force when the
  timer starts** (CORE-10) and computes ``due_at`` once, on wall-clock time or on the
  unit's working calendar (China's holidays and 调休 + the unit's overrides + the
  unit's ``core.work_hours``), in the unit's zone.  A duration of 0 (or none set)
  means the unit has no such deadline: ``start`` returns ``None``.
* ``warn_at`` is at ``core.sla_warning_percent`` of the duration (80 % by default, on
  the same calendar; 0 = no warning).
* ``meet`` records who met it and who owned it then.  Met after the due time (before
  the sweep noticed) it is breached first, exactly as the sweep would, then met late.
* ``pause``/``resume`` only for a policy declared ``pausable``; resuming moves the due
  time (and a warning not yet due) by the time spent paused, on the deadline's calendar.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from portal.audit import record
from portal.db_types import utcnow
from portal.extensions import db
from portal.plugin_api import SlaPolicy
from portal.settings import models as settings
from portal.sla.calendar import WorkingCalendar, china_calendar, wall_deadline
from portal.sla.hours import parse_work_hours
from portal.sla.models import BREACHED, CANCELLED, HOLIDAY, MET, OPEN, CalendarDay, Deadline
from portal.units.models import Unit

WARNING_SETTING = "core.sla_warning_percent"
WORK_HOURS_SETTING = "core.work_hours"


class SlaError(ValueError):
    """The deadline cannot do that now (met twice, pause a policy that does not pause, …)."""


# --- policies and calendars -------------------------------------------------------------


def get_policy(policy_id: str) -> SlaPolicy:
    policies = current_app.extensions["portal"].sla_policies
    if policy_id not in policies:
        raise SlaError(f"unknown deadline policy {policy_id!r}")
    return policies[policy_id]


def calendar_overrides(unit: Unit) -> dict[date, str]:
    """Day → 'holiday' | 'workday' for ``unit``: its own entries, then its ancestors'."""
    lineage = unit.lineage()
    rank = {u.id: i for i, u in enumerate(lineage)}
    best: dict[date, CalendarDay] = {}
    for row in db.session.scalars(select(CalendarDay).where(CalendarDay.unit_id.in_(rank))):
        held = best.get(row.day)
        if held is None or rank[row.unit_id] < rank[held.unit_id]:
            best[row.day] = row
    return {day: row.kind for day, row in best.items()}


def unit_calendar(unit: Unit, at: datetime, years: tuple[int, ...] | None = None) -> WorkingCalendar:
    """The unit's working calendar as in force at ``at`` (hours setting, overrides, zone)."""
    zone = settings.unit_zone(unit)
    if years is None:
        first = at.astimezone(zone).year
        years = (first, first + 1)
    overrides = calendar_overrides(unit)
    return china_calendar(
        zone=zone.key,
        years=years,
        hours=parse_work_hours(settings.value(unit, WORK_HOURS_SETTING, at=at)),
        extra_holidays=[d for d, kind in overrides.items() if kind == HOLIDAY],
        extra_workdays=[d for d, kind in overrides.items() if kind != HOLIDAY],
    )


class _Clock:
    """Adds and measures time on a deadline's calendar ('wall' or the unit's 'working')."""

    def __init__(self, kind: str, unit: Unit, at: datetime):
        self.kind, self.unit, self.at = kind, unit, at
        self._cal: WorkingCalendar | None = None

    def _calendar(self, until: datetime | None = None) -> WorkingCalendar:
        zone = settings.unit_zone(self.unit)
        first = self.at.astimezone(zone).year
        last = max(first + 1, (until.astimezone(zone).year + 1) if until else 0)
        if self._cal is None or last > max(self._years):
            self._years = tuple(range(first, last + 1))
            self._cal = unit_calendar(self.unit, self.at, self._years)
        return self._cal

    def add(self, start: datetime, duration: timedelta) -> datetime:
        if self.kind == "wall":
            return wall_deadline(start, duration)
        result = self._calendar().add(start, duration)
        if result.astimezone(settings.unit_zone(self.unit)).year > max(self._years):
            # a long duration ran past the holidays we loaded: load enough years and redo
            result = self._calendar(until=result).add(start, duration)
        return result

    def between(self, start: datetime, end: datetime) -> timedelta:
        if self.kind == "wall":
            return max(end - start, timedelta(0))
        return self._calendar(until=end).working_time_between(start, end)


# --- helpers ----------------------------------------------------------------------------


def _now(at: datetime | None) -> datetime:
    if at is None:
        return utcnow()
    if at.tzinfo is None or at.utcoffset() is None:
        raise SlaError(f"naive datetime {at!r}: pass timezone-aware instants")
    return at


def _user_id(user: Any) -> int | None:
    if user is None or isinstance(user, int):
        return user
    return user.id


def _actor(user: Any):
    return None if user is None or isinstance(user, int) else user


def subject_key(subject: Any) -> tuple[str, str]:
    """``(object_type, object_id)`` of a model instance or a ``(type, id)`` pair."""
    if isinstance(subject, tuple):
        object_type, object_id = subject
    else:
        object_type, object_id = subject.__tablename__, subject.id
    if object_id is None:
        raise SlaError("the subject has no id yet: flush it first")
    return str(object_type), str(object_id)


def _snapshot(deadline: Deadline) -> dict[str, Any]:
    return {
        "policy": deadline.policy_id, "status": deadline.status, "owner_id": deadline.owner_id,
        "due_at": deadline.due_at, "warn_at": deadline.warn_at, "paused_at": deadline.paused_at,
    }


def _unit(deadline: Deadline) -> Unit:
    return deadline.unit if deadline.unit is not None else db.session.get(Unit, deadline.unit_id)


# --- the lifecycle ----------------------------------------------------------------------


def start(policy_id: str, unit: Unit, subject: Any, owner: Any = None,
          at: datetime | None = None, by: Any = None) -> Deadline | None:
    """Start a timer of ``policy_id`` on ``subject`` for ``owner``; ``None`` if switched off."""
    policy = get_policy(policy_id)
    started_at = _now(at)
    minutes = settings.value(unit, policy.setting_key, at=started_at)
    if not minutes or minutes <= 0:
        return None
    duration = timedelta(minutes=int(minutes))
    clock = _Clock(policy.calendar, unit, started_at)
    due_at = clock.add(started_at, duration)
    percent = settings.value(unit, WARNING_SETTING, at=started_at)
    warn_at = None
    if percent and 0 < percent < 100:
        warn_at = clock.add(started_at, timedelta(seconds=round(duration.total_seconds() * percent / 100)))
    object_type, object_id = subject_key(subject)
    deadline = Deadline(
        policy_id=policy.id, unit_id=unit.id, object_type=object_type, object_id=object_id,
        owner_id=_user_id(owner), calendar=policy.calendar, duration_minutes=int(minutes),
        started_at=started_at, due_at=due_at, warn_at=warn_at, status=OPEN, paused_seconds=0,
    )
    db.session.add(deadline)
    db.session.flush()
    record("sla.started", "sla_deadline", deadline.id, unit_id=unit.id, actor=_actor(by),
           after={**_snapshot(deadline), "subject": f"{object_type}:{object_id}",
                  "minutes": deadline.duration_minutes, "calendar": deadline.calendar})
    return deadline


def meet(deadline: Deadline, by: Any = None, at: datetime | None = None) -> Deadline:
    """Stop the timer: the item was done by ``by`` at ``at``.  Late → breached, then met."""
    now = _now(at)
    if deadline.status in (MET, CANCELLED) or deadline.met_at is not None:
        raise SlaError(f"deadline {deadline.id} is already {deadline.status}")
    if deadline.status == OPEN and deadline.paused_at is None and deadline.due_at < now:
        from portal.sla.sweep import breach_one

        breach_one(deadline.id, now)
        db.session.refresh(deadline)
    before = _snapshot(deadline)
    values = {"met_at": now, "met_by_id": _user_id(by), "met_owner_id": Deadline.owner_id,
              "paused_at": None}
    if deadline.status == OPEN:
        values["status"] = MET
        condition = Deadline.status == OPEN
    else:  # breached earlier: record that it was eventually done (stays breached)
        condition = (Deadline.status == BREACHED) & Deadline.met_at.is_(None)
    if deadline.paused_at is not None:
        values["paused_seconds"] = deadline.paused_seconds + _paused_seconds(deadline, now)
    result = db.session.execute(
        update(Deadline).where(Deadline.id == deadline.id, condition).values(**values)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # somebody else closed it meanwhile (a concurrent sweep or meet)
        db.session.refresh(deadline)
        if deadline.status == BREACHED and deadline.met_at is None:
            return meet(deadline, by=by, at=now)
        raise SlaError(f"deadline {deadline.id} is already {deadline.status}")
    db.session.refresh(deadline)
    record("sla.met", "sla_deadline", deadline.id, unit_id=deadline.unit_id, actor=_actor(by),
           before=before, after={**_snapshot(deadline), "met_at": now, "met_by_id": deadline.met_by_id,
                                 "late": deadline.status == BREACHED})
    return deadline


def _paused_seconds(deadline: Deadline, now: datetime) -> int:
    clock = _Clock(deadline.calendar, _unit(deadline), deadline.paused_at)
    return int(clock.between(deadline.paused_at, now).total_seconds())


def _require_open(deadline: Deadline) -> None:
    if deadline.status != OPEN:
        raise SlaError(f"deadline {deadline.id} is {deadline.status}, not open")


def pause(deadline: Deadline, by: Any = None, at: datetime | None = None) -> Deadline:
    """Stop the clock for now (only for a pausable policy, before the deadline has passed)."""
    now = _now(at)
    _require_open(deadline)
    if not get_policy(deadline.policy_id).pausable:
        raise SlaError(f"policy {deadline.policy_id} cannot be paused")
    if deadline.paused_at is not None:
        raise SlaError(f"deadline {deadline.id} is already paused")
    if now >= deadline.due_at:
        raise SlaError(f"deadline {deadline.id} has already passed")
    before = _snapshot(deadline)
    result = db.session.execute(
        update(Deadline).where(Deadline.id == deadline.id, Deadline.status == OPEN,
                               Deadline.paused_at.is_(None)).values(paused_at=now)
        .execution_options(synchronize_session=False))
    db.session.refresh(deadline)
    if result.rowcount != 1:
        raise SlaError(f"deadline {deadline.id} is {deadline.status}, not open")
    record("sla.paused", "sla_deadline", deadline.id, unit_id=deadline.unit_id, actor=_actor(by),
           before=before, after=_snapshot(deadline))
    return deadline


def resume(deadline: Deadline, by: Any = None, at: datetime | None = None) -> Deadline:
    """Restart the clock; the due time moves by the time spent paused (on its calendar)."""
    now = _now(at)
    _require_open(deadline)
    if deadline.paused_at is None:
        raise SlaError(f"deadline {deadline.id} is not paused")
    if now < deadline.paused_at:
        raise SlaError("cannot resume before the pause")
    before = _snapshot(deadline)
    paused_at = deadline.paused_at
    clock = _Clock(deadline.calendar, _unit(deadline), paused_at)
    # what was left at the pause is what is left now
    due_at = clock.add(now, clock.between(paused_at, deadline.due_at))
    warn_at = deadline.warn_at
    if warn_at is not None and deadline.warned_at is None and warn_at > paused_at:
        warn_at = clock.add(now, clock.between(paused_at, warn_at))
    paused = int(clock.between(paused_at, now).total_seconds())
    deadline.due_at, deadline.warn_at = due_at, warn_at
    deadline.paused_at = None
    deadline.paused_seconds = (deadline.paused_seconds or 0) + paused
    db.session.flush()
    record("sla.resumed", "sla_deadline", deadline.id, unit_id=deadline.unit_id, actor=_actor(by),
           before=before, after={**_snapshot(deadline), "paused_seconds": paused})
    return deadline


def reassign(deadline: Deadline, owner: Any, by: Any = None, at: datetime | None = None) -> Deadline:
    """Hand the item (and its clock) to ``owner``; the due time does not change."""
    _now(at)
    _require_open(deadline)
    before = _snapshot(deadline)
    deadline.owner_id = _user_id(owner)
    db.session.flush()
    record("sla.reassigned", "sla_deadline", deadline.id, unit_id=deadline.unit_id, actor=_actor(by),
           before=before, after=_snapshot(deadline))
    return deadline


def cancel(deadline: Deadline, by: Any = None, at: datetime | None = None, reason: str = "") -> Deadline:
    """Drop an open timer whose item no longer needs it (withdrawn, merged, …)."""
    now = _now(at)
    before = _snapshot(deadline)
    result = db.session.execute(
        update(Deadline).where(Deadline.id == deadline.id, Deadline.status == OPEN)
        .values(status=CANCELLED, cancelled_at=now).execution_options(synchronize_session=False))
    db.session.refresh(deadline)
    if result.rowcount != 1:
        raise SlaError(f"deadline {deadline.id} is {deadline.status}, not open")
    record("sla.cancelled", "sla_deadline", deadline.id, unit_id=deadline.unit_id, actor=_actor(by),
           before=before, after={**_snapshot(deadline), "reason": reason})
    return deadline


# --- queries ----------------------------------------------------------------------------


def find_open(policy_id: str, subject: Any) -> list[Deadline]:
    """Open deadlines of ``policy_id`` on ``subject``, earliest due first."""
    object_type, object_id = subject_key(subject)
    return list(db.session.scalars(
        select(Deadline).where(Deadline.policy_id == policy_id, Deadline.object_type == object_type,
                               Deadline.object_id == object_id, Deadline.status == OPEN)
        .order_by(Deadline.due_at)))


def overdue_condition(now: datetime):
    """Past due and not done: open (not paused) past ``due_at``, or breached and not yet met."""
    return (
        (Deadline.due_at < now)
        & (
            ((Deadline.status == OPEN) & Deadline.paused_at.is_(None))
            | ((Deadline.status == BREACHED) & Deadline.met_at.is_(None))
        )
    )
