"""Working hours as an admin writes them: ``Mon-Fri 09:00-12:00,13:00-18:00``.

The format (the setting ``core.work_hours``):

* groups separated by ``;`` — ``Mon-Fri 09:00-12:00,13:00-18:00; Sat 09:00-12:00``;
* each group is a set of days, a space, then intervals;
* days are ``Mon Tue Wed Thu Fri Sat Sun``, as a range (``Mon-Fri``) or a list
  (``Mon,Wed,Fri``), or both (``Mon-Wed,Fri``); a day may appear in one group only;
* intervals are ``HH:MM-HH:MM`` separated by commas, in order, not overlapping, each
  ending after it starts, within one day (``00:00``–``23:59``; no ``24:00``);
* a day not named is a day off.  Make-up working days (调休上班) use Monday's hours.

Pure logic, no Flask: the setting's validator wraps ``WorkHoursError`` in a ``SettingError``.
"""

from __future__ import annotations

import re
from datetime import time

from portal.sla.calendar import Interval

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WORK_HOURS = "Mon-Fri 09:00-12:00,13:00-18:00"

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class WorkHoursError(ValueError):
    """The text is not a valid working-hours description; the message says where."""


def parse_work_hours(text: str) -> dict[int, tuple[Interval, ...]]:
    """Weekday (0 = Monday) → working intervals, from the documented text format."""
    groups = [g.strip() for g in (text or "").split(";") if g.strip()]
    if not groups:
        raise WorkHoursError("no working hours given")
    hours: dict[int, tuple[Interval, ...]] = {}
    for group in groups:
        parts = group.split(None, 1)
        if len(parts) != 2:
            raise WorkHoursError(f"{group!r}: write the days, a space, then the hours")
        days = _parse_days(parts[0])
        intervals = _parse_intervals(parts[1])
        for day in days:
            if day in hours:
                raise WorkHoursError(f"{DAYS[day].title()} appears twice")
            hours[day] = intervals
    return dict(sorted(hours.items()))


def format_work_hours(hours: dict[int, tuple[Interval, ...]]) -> str:
    """The canonical text of ``hours`` (days with equal hours grouped, consecutive as ranges)."""
    by_intervals: dict[tuple[Interval, ...], list[int]] = {}
    for day in sorted(hours):
        if hours[day]:
            by_intervals.setdefault(hours[day], []).append(day)
    groups = []
    for intervals, days in by_intervals.items():
        runs = [[days[0]]]
        for day in days[1:]:
            if day == runs[-1][-1] + 1:
                runs[-1].append(day)
            else:
                runs.append([day])
        labels = [DAYS[r[0]].title() if len(r) == 1 else f"{DAYS[r[0]].title()}-{DAYS[r[-1]].title()}"
                  for r in runs]
        text = ",".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in intervals)
        groups.append(f"{','.join(labels)} {text}")
    return "; ".join(groups)


def _parse_days(text: str) -> list[int]:
    out: list[int] = []
    for item in text.split(","):
        item = item.strip().lower()
        if "-" in item:
            first, _, last = item.partition("-")
            a, b = _day(first), _day(last)
            if b < a:
                raise WorkHoursError(f"{item!r}: a day range runs forward (Mon-Fri)")
            out.extend(range(a, b + 1))
        else:
            out.append(_day(item))
    if len(set(out)) != len(out):
        raise WorkHoursError(f"{text!r} names a day twice")
    return out


def _day(text: str) -> int:
    text = text.strip().lower()[:3]
    if text not in DAYS:
        raise WorkHoursError(f"{text!r} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
    return DAYS.index(text)


def _parse_intervals(text: str) -> tuple[Interval, ...]:
    intervals: list[Interval] = []
    for item in text.replace(" ", "").split(","):
        start_text, sep, end_text = item.partition("-")
        if not sep:
            raise WorkHoursError(f"{item!r}: write an interval as HH:MM-HH:MM")
        start, end = _time(start_text), _time(end_text)
        if not start < end:
            raise WorkHoursError(f"{item!r}: the end must be after the start")
        if intervals and start < intervals[-1][1]:
            raise WorkHoursError(f"{item!r}: intervals must be in order and not overlap")
        intervals.append((start, end))
    return tuple(intervals)


def _time(text: str) -> time:
    match = _TIME.match(text)
    if match is None:
        raise WorkHoursError(f"{text!r} is not a time HH:MM between 00:00 and 23:59")
    return time(int(match.group(1)), int(match.group(2)))
