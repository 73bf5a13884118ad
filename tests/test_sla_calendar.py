"""Working-calendar deadlines in Asia/Shanghai: lunch break, holiday, 调休, month end."""

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from portal.sla.calendar import (
    CalendarError,
    WorkingCalendar,
    china_calendar,
    wall_deadline,
)

SH = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return china_calendar("Asia/Shanghai", years=[2026, 2027])


def test_deadline_across_lunch_break(cal):
    # Monday 2026-11-23 11:40 + 30 working minutes: 20 before lunch, 10 after 13:00
    assert cal.add(local(2026, 11, 23, 11, 40), timedelta(minutes=30)) == local(2026, 11, 23, 13, 10)


def test_deadline_started_during_lunch_waits_for_the_afternoon(cal):
    assert cal.add(local(2026, 11, 23, 12, 15), timedelta(minutes=30)) == local(2026, 11, 23, 13, 30)


def test_deadline_across_national_day_holiday(cal):
    # Wednesday 2026-09-30 17:30 + 1 h: 30 min that day, then 1–7 Oct are holidays
    # (Sat 10-10 is a make-up workday, but Thu 10-08 comes first)
    assert cal.add(local(2026, 9, 30, 17, 30), timedelta(hours=1)) == local(2026, 10, 8, 9, 30)


def test_make_up_workday_on_a_weekend_counts(cal):
    # Friday 2026-10-09 17:00 + 2 h: 1 h Friday, then Saturday 10-10 is 调休上班
    assert cal.is_working_day(date(2026, 10, 10))
    assert cal.add(local(2026, 10, 9, 17, 0), timedelta(hours=2)) == local(2026, 10, 10, 10, 0)


def test_deadline_across_a_month_boundary(cal):
    # Monday 2026-11-30 17:00 + 3 h → Tuesday 2026-12-01 11:00
    assert cal.add(local(2026, 11, 30, 17, 0), timedelta(hours=3)) == local(2026, 12, 1, 11, 0)


def test_results_are_utc_and_independent_of_process_tz(cal, monkeypatch):
    import time as time_module

    start = local(2026, 11, 23, 11, 40)
    results = []
    for tz in ("UTC", "Asia/Shanghai", "America/New_York"):
        monkeypatch.setenv("TZ", tz)
        time_module.tzset()
        results.append(cal.add(start, timedelta(minutes=30)))
    monkeypatch.delenv("TZ")
    time_module.tzset()
    assert len(set(results)) == 1
    assert results[0].tzinfo == timezone.utc
    assert results[0] == datetime(2026, 11, 23, 5, 10, tzinfo=timezone.utc)


def test_working_time_between_is_the_inverse_of_add(cal):
    start = local(2026, 9, 30, 10, 0)
    for minutes in (0, 30, 150, 480, 2000):
        end = cal.add(start, timedelta(minutes=minutes))
        assert cal.working_time_between(start, end) == timedelta(minutes=minutes)


def test_unit_specific_holiday_and_workday_overrides():
    company_day = date(2026, 11, 25)  # a Wednesday the company closes
    extra_sat = date(2026, 11, 28)
    cal = china_calendar(years=[2026], extra_holidays=[company_day], extra_workdays=[extra_sat])
    assert not cal.is_working_day(company_day)
    assert cal.is_working_day(extra_sat)
    assert cal.add(local(2026, 11, 24, 17, 30), timedelta(hours=1)) == local(2026, 11, 26, 9, 30)


def test_wall_clock_deadline_ignores_calendars():
    start = local(2026, 10, 1, 23, 50)
    assert wall_deadline(start, timedelta(minutes=30)) == local(2026, 10, 2, 0, 20)


def test_naive_instants_and_empty_calendars_are_refused():
    cal = WorkingCalendar(zone=SH, hours={})
    with pytest.raises(CalendarError):
        cal.add(local(2026, 1, 5, 9), timedelta(minutes=1))
    with pytest.raises(CalendarError):
        china_calendar(years=[2026]).add(datetime(2026, 1, 5, 9), timedelta(minutes=1))
    with pytest.raises(CalendarError):
        WorkingCalendar(zone=SH, hours={0: ((time(13), time(18)), (time(9), time(12)))})
