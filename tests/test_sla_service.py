"""Deadlines through the service: due times on the unit's calendar, lifecycle, who owned it."""

from __future__ import annotations

import os
import time as time_module
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.extensions import db
from portal.plugin_api import SettingError
from portal.settings import models as settings
from portal.sla import service
from portal.sla.models import BREACHED, CANCELLED, MET, OPEN, CalendarDay, Deadline
from portal.sla.service import SlaError
from portal.testing import make_unit
from tests.sla_support import person

SH = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


@pytest.fixture
def people(tree):
    return {
        "staff": person("sla.staff", (tree["north"], "staff")),
        "other": person("sla.other", (tree["north"], "staff")),
        "sup": person("sla.sup", (tree["north"], "supervisor")),
    }


def add_day(unit, day: date, kind: str, note: str = "") -> None:
    db.session.add(CalendarDay(unit_id=unit.id, day=day, kind=kind, note=note))
    db.session.commit()


def audits(action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action))


# --- due times ---------------------------------------------------------------------------------


def test_wall_policy_due_after_its_minutes_and_warns_at_80_percent(tree, people):
    start = local(2026, 11, 28, 23, 50)  # a Saturday night: wall time ignores the calendar
    d = service.start("testplug.reply", tree["north"], ("ticket", 1), people["staff"], at=start)
    assert d.status == OPEN and d.calendar == "wall" and d.duration_minutes == 30
    assert d.due_at == utc(local(2026, 11, 29, 0, 20))
    assert d.warn_at == utc(local(2026, 11, 29, 0, 14))  # 80 % of 30 min = 24 min
    assert d.due_at.tzinfo == timezone.utc
    assert audits("sla.started") == 1


def test_working_policy_skips_a_holiday_the_company_set(tree, people):
    # the company closes on Wednesday 2026-11-25; stations below inherit the day off
    add_day(tree["company"], date(2026, 11, 25), "holiday", "company day")
    # Tuesday 17:00 + 120 working minutes: 1 h on Tuesday, Wednesday off, 1 h on Thursday
    d = service.start("testplug.work", tree["north"], ("job", 1), people["staff"], at=local(2026, 11, 24, 17, 0))
    assert d.due_at == utc(local(2026, 11, 26, 10, 0))
    # another company (no override) works on Wednesday
    other = make_unit("other-co", kind="company", plugins={"testplug": True})
    d2 = service.start("testplug.work", other, ("job", 2), None, at=local(2026, 11, 24, 17, 0))
    assert d2.due_at == utc(local(2026, 11, 25, 10, 0))


def test_the_nearest_unit_override_wins(tree, people):
    add_day(tree["company"], date(2026, 11, 25), "holiday")
    add_day(tree["north"], date(2026, 11, 25), "workday", "north works anyway")
    d = service.start("testplug.work", tree["north"], ("job", 1), people["staff"], at=local(2026, 11, 24, 17, 0))
    assert d.due_at == utc(local(2026, 11, 25, 10, 0))
    south = service.start("testplug.work", tree["south"], ("job", 2), None, at=local(2026, 11, 24, 17, 0))
    assert south.due_at == utc(local(2026, 11, 26, 10, 0))


def test_working_policy_across_lunch_make_up_day_and_month_end(tree, people):
    north = tree["north"]
    # lunch break: Monday 11:40 + 30 → 13:10
    d = service.start("testplug.work", north, ("job", 1), None, at=local(2026, 11, 23, 11, 40))
    assert d.duration_minutes == 120
    settings.change(north, "testplug.work_minutes", "30", date(2026, 1, 1), None)
    db.session.commit()
    d = service.start("testplug.work", north, ("job", 2), None, at=local(2026, 11, 23, 11, 40))
    assert d.due_at == utc(local(2026, 11, 23, 13, 10))
    # a unit-declared make-up Saturday counts as a working day
    add_day(tree["company"], date(2026, 11, 28), "workday")
    d = service.start("testplug.work", north, ("job", 3), None, at=local(2026, 11, 27, 17, 50))
    assert d.due_at == utc(local(2026, 11, 28, 9, 20))
    # national 调休: Sat 2026-10-10 is a make-up workday (Fri 17:50 + 30 → Sat 09:20)
    d = service.start("testplug.work", north, ("job", 4), None, at=local(2026, 10, 9, 17, 50))
    assert d.due_at == utc(local(2026, 10, 10, 9, 20))
    # month boundary: Monday 2026-11-30 17:50 + 30 → Tuesday 2026-12-01 09:20
    d = service.start("testplug.work", north, ("job", 5), None, at=local(2026, 11, 30, 17, 50))
    assert d.due_at == utc(local(2026, 12, 1, 9, 20))


def test_unit_working_hours_setting_is_used(tree):
    north = tree["north"]
    settings.change(north, "core.work_hours", "Mon-Fri 08:00-17:00", date(2026, 1, 1), None)
    db.session.commit()
    d = service.start("testplug.work", north, ("job", 1), None, at=local(2026, 11, 23, 11, 40))
    assert d.due_at == utc(local(2026, 11, 23, 13, 40))  # no lunch break in these hours


def test_work_hours_setting_refuses_nonsense(app):
    spec = app.extensions["portal"].settings["core.work_hours"]
    assert spec.parse("Mon-Fri 09:00-12:00,13:00-18:00; Sat 09:00-12:00")
    for bad in ("", "Mon-Fri", "Mon-Fri 9-18", "Fri-Mon 09:00-18:00", "Mon 12:00-09:00",
                "Mon 09:00-12:00,11:00-13:00", "Mon 09:00-10:00; Mon 11:00-12:00"):
        with pytest.raises(SettingError):
            spec.parse(bad)


def test_results_identical_under_tz_utc_and_tz_shanghai(tree):
    add_day(tree["company"], date(2026, 11, 25), "holiday")
    saved = os.environ.get("TZ")
    results = []
    try:
        for tz in ("UTC", "Asia/Shanghai"):
            os.environ["TZ"] = tz
            time_module.tzset()
            for n, start in enumerate((local(2026, 11, 24, 17, 0), local(2026, 9, 30, 17, 30),
                                       local(2026, 11, 30, 11, 40))):
                work = service.start("testplug.work", tree["north"], ("job", f"{tz}{n}"), None, at=start)
                wall = service.start("testplug.reply", tree["north"], ("ticket", f"{tz}{n}"), None, at=start)
                results.append((tz, n, work.due_at, work.warn_at, wall.due_at))
            db.session.commit()
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time_module.tzset()
    by_tz = {tz: [r[2:] for r in results if r[0] == tz] for tz in ("UTC", "Asia/Shanghai")}
    assert by_tz["UTC"] == by_tz["Asia/Shanghai"]
    assert by_tz["UTC"][0][0] == utc(local(2026, 11, 26, 10, 0))
    # stored and read back the same way
    stored = db.session.scalars(select(Deadline.due_at).where(Deadline.object_type == "job",
                                           Deadline.object_id.in_(["UTC0", "Asia/Shanghai0"]))).all()
    assert stored == [utc(local(2026, 11, 26, 10, 0))] * 2


def test_core_10_duration_in_force_when_the_timer_starts(tree):
    north = tree["north"]
    settings.change(north, "testplug.reply_minutes", "60", date(2026, 11, 10), None)
    db.session.commit()
    before = service.start("testplug.reply", north, ("ticket", 1), None, at=local(2026, 11, 9, 23, 30))
    after = service.start("testplug.reply", north, ("ticket", 2), None, at=local(2026, 11, 10, 0, 10))
    assert before.duration_minutes == 30 and before.due_at == utc(local(2026, 11, 10, 0, 0))
    assert after.duration_minutes == 60 and after.due_at == utc(local(2026, 11, 10, 1, 10))


def test_warning_percent_setting_and_zero_means_no_warning(tree):
    north = tree["north"]
    settings.change(north, "core.sla_warning_percent", "50", date(2026, 1, 1), None)
    settings.change(tree["club"], "core.sla_warning_percent", "0", date(2026, 1, 1), None)
    db.session.commit()
    d = service.start("testplug.work", north, ("job", 1), None, at=local(2026, 11, 23, 11, 0))
    assert d.warn_at == utc(local(2026, 11, 23, 12, 0))  # 60 of 120 working minutes, before lunch
    assert service.start("testplug.work", tree["club"], ("job", 2), None, at=local(2026, 11, 23, 11, 0)).warn_at is None


def test_zero_duration_means_no_deadline(tree):
    settings.change(tree["north"], "testplug.work_minutes", "0", date(2026, 1, 1), None)
    db.session.commit()
    assert service.start("testplug.work", tree["north"], ("job", 1), None, at=local(2026, 11, 23, 9)) is None
    assert db.session.scalar(select(func.count()).select_from(Deadline)) == 0


def test_unknown_policy_and_naive_instants_are_refused(tree):
    with pytest.raises(SlaError):
        service.start("testplug.nope", tree["north"], ("x", 1))
    with pytest.raises(SlaError):
        service.start("testplug.reply", tree["north"], ("x", 1), at=datetime(2026, 11, 23, 9))


# --- lifecycle ---------------------------------------------------------------------------------


def test_meet_records_who_met_it_and_who_owned_it(tree, people):
    d = service.start("testplug.reply", tree["north"], ("ticket", 1), people["staff"], at=local(2026, 11, 23, 9))
    service.reassign(d, people["other"], by=people["sup"], at=local(2026, 11, 23, 9, 5))
    service.meet(d, by=people["sup"], at=local(2026, 11, 23, 9, 30))  # exactly at the due time: on time
    db.session.commit()
    d = db.session.get(Deadline, d.id)
    assert d.status == MET
    assert d.met_by_id == people["sup"].id and d.met_owner_id == people["other"].id
    assert d.met_at == utc(local(2026, 11, 23, 9, 30)) and d.breached_at is None
    with pytest.raises(SlaError):
        service.meet(d, at=local(2026, 11, 23, 9, 31))
    with pytest.raises(SlaError):
        service.reassign(d, people["staff"])
    assert audits("sla.met") == 1 and audits("sla.reassigned") == 1


def test_meeting_late_breaches_first_then_records_the_late_reply(tree, people):
    from tests import testplug

    testplug.EVENTS.clear()
    d = service.start("testplug.reply", tree["north"], ("ticket", 1), people["staff"], at=local(2026, 11, 23, 9))
    service.meet(d, by=people["staff"], at=local(2026, 11, 23, 9, 31))
    db.session.commit()
    d = db.session.get(Deadline, d.id)
    assert d.status == BREACHED and d.breached_owner_id == people["staff"].id
    assert d.met_at == utc(local(2026, 11, 23, 9, 31)) and d.met_owner_id == people["staff"].id
    events = [e for e in testplug.EVENTS if e.name == "testplug.reply.breached"]
    assert len(events) == 1 and events[0].subject_user_id == people["staff"].id
    assert events[0].occurred_at == d.due_at
    # a breached deadline met later is still met only once
    with pytest.raises(SlaError):
        service.meet(d, at=local(2026, 11, 23, 9, 40))


def test_pause_and_resume_shift_the_due_time_by_the_paused_working_time(tree, people):
    north = tree["north"]
    d = service.start("testplug.work", north, ("job", 1), people["staff"], at=local(2026, 11, 23, 9, 0))
    assert d.due_at == utc(local(2026, 11, 23, 11, 0))
    service.pause(d, at=local(2026, 11, 23, 10, 0))  # 60 working minutes left
    with pytest.raises(SlaError):
        service.pause(d, at=local(2026, 11, 23, 10, 1))
    service.resume(d, at=local(2026, 11, 23, 16, 0))  # paused 10:00–16:00 = 5 working hours
    db.session.commit()
    d = db.session.get(Deadline, d.id)
    assert d.paused_at is None and d.paused_seconds == 5 * 3600
    assert d.due_at == utc(local(2026, 11, 23, 17, 0))
    assert d.warn_at == utc(local(2026, 11, 23, 16, 36))  # 96 min = 80 %: 60 before, 36 after resuming
    assert audits("sla.paused") == 1 and audits("sla.resumed") == 1


def test_pause_on_a_wall_policy_or_after_the_due_time_is_refused(tree, people):
    wall = service.start("testplug.reply", tree["north"], ("ticket", 1), people["staff"], at=local(2026, 11, 23, 9))
    with pytest.raises(SlaError):
        service.pause(wall, at=local(2026, 11, 23, 9, 1))
    work = service.start("testplug.work", tree["north"], ("job", 1), None, at=local(2026, 11, 23, 9))
    with pytest.raises(SlaError):
        service.pause(work, at=local(2026, 11, 23, 11, 0))
    with pytest.raises(SlaError):
        service.resume(work, at=local(2026, 11, 23, 10))


def test_cancel_only_an_open_deadline(tree, people):
    d = service.start("testplug.reply", tree["north"], ("ticket", 1), people["staff"], at=local(2026, 11, 23, 9))
    assert service.find_open("testplug.reply", ("ticket", 1)) == [d]
    service.cancel(d, by=people["sup"], at=local(2026, 11, 23, 9, 10), reason="withdrawn")
    db.session.commit()
    assert db.session.get(Deadline, d.id).status == CANCELLED
    assert service.find_open("testplug.reply", ("ticket", 1)) == []
    with pytest.raises(SlaError):
        service.cancel(d)
    with pytest.raises(SlaError):
        service.meet(d)


def test_subject_may_be_a_model_instance(tree, people):
    d = service.start("testplug.reply", tree["north"], people["other"], people["staff"], at=local(2026, 11, 23, 9))
    assert (d.object_type, d.object_id) == ("users", str(people["other"].id))
