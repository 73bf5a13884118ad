"""Working calendars: working hours per weekday, lunch breaks, public holidays and
make-up working days (调休), as China's calendar has them.

Pure logic, no Flask: instants are timezone-aware; the calendar reasons in its own
zone and answers in UTC.  ``holidays.China`` supplies statutory holidays and
make-up days; a unit adds its own (days announced later, company-specific days).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

Interval = tuple[time, time]

# Monday–Friday 09:00–12:00 and 13:00–18:00 (a one-hour lunch break); weekends off.
OFFICE_HOURS: dict[int, tuple[Interval, ...]] = {
    wd: ((time(9), time(12)), (time(13), time(18))) for wd in range(5)
}

MAX_SEARCH_DAYS = 3 * 366


class CalendarError(ValueError):
    """The calendar cannot answer (no working time at all, a naive instant, …)."""


@dataclass(frozen=True)
class WorkingCalendar:
    """When work happens.

    :param zone: the unit's time zone, e.g. ``ZoneInfo("Asia/Shanghai")``.
    :param hours: working intervals per weekday (0 = Monday), in local time.
    :param holidays: days off whatever their weekday (statutory holidays, 调休 rest days).
    :param workdays: make-up working days (调休上班) — weekends that are worked.
    :param makeup_hours: the intervals worked on a make-up day (default: Monday's).
    """

    zone: ZoneInfo
    hours: dict[int, tuple[Interval, ...]] = field(default_factory=lambda: dict(OFFICE_HOURS))
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    makeup_hours: tuple[Interval, ...] | None = None

    def __post_init__(self) -> None:
        for weekday, intervals in self.hours.items():
            previous_end = time.min
            for start, end in intervals:
                if not start < end or start < previous_end:
                    raise CalendarError(f"weekday {weekday}: intervals must be ordered and not overlap")
                previous_end = end

    def is_working_day(self, day: date) -> bool:
        if day in self.holidays:
            return False
        if day in self.workdays:
            return True
        return bool(self.hours.get(day.weekday()))

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        if day in self.holidays:
            return ()
        if day in self.workdays and not self.hours.get(day.weekday()):
            return self.makeup_hours or self.hours.get(0, ())
        return self.hours.get(day.weekday(), ())

    def _local_intervals(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        for start, end in self.intervals_on(day):
            yield (datetime.combine(day, start, tzinfo=self.zone),
                   datetime.combine(day, end, tzinfo=self.zone))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant ``duration`` of working time after ``start`` (UTC)."""
        _aware(start)
        if duration < timedelta(0):
            raise CalendarError("duration must not be negative")
        local = start.astimezone(self.zone)
        remaining = duration
        day = local.date()
        for _ in range(MAX_SEARCH_DAYS):
            for begin, end in self._local_intervals(day):
                if end <= local:
                    continue
                begin = max(begin, local)
                available = end - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(timezone.utc)
                remaining -= available
            day += timedelta(days=1)
        raise CalendarError("no working time within three years: check the working hours")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time elapsed from ``start`` to ``end`` (zero if ``end`` is not later)."""
        _aware(start)
        _aware(end)
        if end <= start:
            return timedelta(0)
        total = timedelta(0)
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        while day <= last:
            for begin, finish in self._local_intervals(day):
                overlap = min(finish, end) - max(begin, start)
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total


def china_calendar(
    zone: str = "Asia/Shanghai",
    years: Iterable[int] = (),
    hours: dict[int, tuple[Interval, ...]] | None = None,
    extra_holidays: Iterable[date] = (),
    extra_workdays: Iterable[date] = (),
) -> WorkingCalendar:
    """A calendar with China's statutory holidays and make-up working days for ``years``."""
    statutory, makeup = china_days(tuple(sorted(set(years))))
    off = set(statutory) | set(extra_holidays)
    work = (set(makeup) | set(extra_workdays)) - set(extra_holidays)
    return WorkingCalendar(
        zone=ZoneInfo(zone),
        hours=dict(OFFICE_HOURS if hours is None else hours),
        holidays=frozenset(off - set(extra_workdays)),
        workdays=frozenset(work),
    )


@lru_cache(maxsize=32)
def china_days(years: tuple[int, ...]) -> tuple[frozenset[date], frozenset[date]]:
    """China's statutory holidays and make-up working days (调休上班) in ``years`` (cached)."""
    cn = holidays_lib.China(years=list(years))
    workdays = {d for d in getattr(cn, "weekend_workdays", set()) if d.year in set(cn.years)}
    return frozenset(cn.keys()), frozenset(workdays)


def wall_deadline(start: datetime, duration: timedelta) -> datetime:
    """A wall-clock deadline: elapsed time, whatever the day (UTC)."""
    _aware(start)
    return (start + duration).astimezone(timezone.utc)


def _aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CalendarError(f"naive datetime {moment!r}: pass timezone-aware instants")
