"""Breach statistics per person, per unit and per month (EXP-R13, appraisal).

A deadline counts in the **local month of its due time** (in its unit's zone), once
it is closed: met on time, or breached (a breach met late is still a breach).  The
person is whoever owned it when it was breached, or when it was met.  The grouping is
done by the database over the ``(status, due_at)`` index: for each time zone among the
units, the local month boundaries become a ``CASE`` over ``due_at``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select

from portal import inputs
from portal.auth.models import User
from portal.extensions import db
from portal.sla.models import BREACHED, MET, Deadline
from portal.units.models import Unit

MAX_MONTHS = 36


class StatsError(ValueError):
    """A month range the statistics refuse."""


@dataclass
class StatsRow:
    month: str
    unit: Unit
    user: User | None
    closed: int
    breached: int

    @property
    def rate(self) -> float:
        return self.breached / self.closed if self.closed else 0.0


def parse_month(text: str, *, last_year: int = inputs.LAST_YEAR) -> tuple[int, int]:
    """``YYYY-MM`` read by the core's bounded parser (``portal.inputs``); ``StatsError`` otherwise."""
    try:
        return inputs.parse_month(text, last_year=last_year)
    except inputs.InputError as exc:
        raise StatsError(f"{str(text)[:20]!r} is not a month YYYY-MM from {inputs.FIRST_YEAR} to "
                         f"{inputs.LAST_YEAR}") from exc


def month_range(first: str, last: str) -> list[str]:
    """``first``..``last`` inclusive, as ``YYYY-MM`` strings."""
    y, m = parse_month(first)
    end = parse_month(last)
    if (y, m) > end:
        raise StatsError("the first month is after the last")
    out = []
    while (y, m) <= end:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        if len(out) > MAX_MONTHS:
            raise StatsError(f"at most {MAX_MONTHS} months at a time")
    return out


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def shift_month(month: str, delta: int) -> str:
    y, m = parse_month(month, last_year=inputs.LAST_YEAR + 1)
    index = y * 12 + (m - 1) + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_start(month: str, zone: ZoneInfo) -> datetime:
    """The first instant of the local ``month`` in ``zone``, in UTC (the month after the last
    one a person may ask for included: a range ends there)."""
    y, m = parse_month(month, last_year=inputs.LAST_YEAR + 1)
    return datetime(y, m, 1, tzinfo=zone).astimezone(timezone.utc)


def breach_stats(units: Iterable[Unit], months: list[str], zone_of, policy_id: str | None = None,
                 by_person: bool = True) -> list[StatsRow]:
    """Closed and breached deadlines per (month, unit[, person]) for ``units``.

    :param zone_of: ``unit → ZoneInfo`` (``portal.settings.models.unit_zone``).
    """
    units = list(units)
    by_zone: dict[str, list[Unit]] = {}
    for unit in units:
        by_zone.setdefault(zone_of(unit).key, []).append(unit)
    unit_by_id = {u.id: u for u in units}
    counts: dict[tuple[str, int, int | None], list[int]] = {}
    for zone_key, zone_units in by_zone.items():
        zone = ZoneInfo(zone_key)
        bounds = [month_start(m, zone) for m in [*months, shift_month(months[-1], 1)]]
        month = case(*[(Deadline.due_at < bounds[i + 1], months[i]) for i in range(len(months))])
        person = func.coalesce(Deadline.breached_owner_id, Deadline.met_owner_id)
        inner = (
            select(month.label("month"), Deadline.unit_id.label("unit_id"), person.label("person"),
                   case((Deadline.status == BREACHED, 1), else_=0).label("is_breach"))
            .where(Deadline.status.in_((MET, BREACHED)), Deadline.due_at >= bounds[0],
                   Deadline.due_at < bounds[-1], Deadline.unit_id.in_([u.id for u in zone_units]))
        )
        if policy_id:
            inner = inner.where(Deadline.policy_id == policy_id)
        inner = inner.subquery()
        query = (select(inner.c.month, inner.c.unit_id, inner.c.person, func.count(),
                        func.sum(inner.c.is_breach))
                 .group_by(inner.c.month, inner.c.unit_id, inner.c.person))
        for row_month, unit_id, person_id, closed, breached in db.session.execute(query):
            key = (row_month, unit_id, person_id if by_person else None)
            total = counts.setdefault(key, [0, 0])
            total[0] += closed
            total[1] += int(breached or 0)
    user_ids = {k[2] for k in counts if k[2] is not None}
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}
    rows = [StatsRow(m, unit_by_id[u], users.get(p), c, b) for (m, u, p), (c, b) in counts.items()]
    rows.sort(key=lambda r: (r.month, r.unit.code, -r.breached, r.user.username if r.user else ""))
    return rows


# --- CSV --------------------------------------------------------------------------------------

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A cell a spreadsheet will not run: text starting with = + - @ (or tab/CR) gets a ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


CSV_HEADER = ("month", "unit_code", "unit", "username", "person", "closed", "breached", "breach_rate")


def csv_records(rows: Iterable[StatsRow], unit_name=lambda u: u.name_zh) -> list[tuple]:
    """Plain values for the CSV (read while the database session is still open)."""
    return [(row.month, row.unit.code, unit_name(row.unit),
             row.user.username if row.user else "", row.user.display_name if row.user else "",
             row.closed, row.breached, f"{row.rate:.4f}") for row in rows]


def csv_lines(records: Iterable[tuple], header: tuple[str, ...] = CSV_HEADER) -> Iterator[str]:
    """The CSV text, line by line (UTF-8 with a BOM first so spreadsheet programs read Chinese)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([safe_cell(c) for c in cells])
        return buffer.getvalue()

    yield "\ufeff" + line(header)
    for record in records:
        yield line(record)
