"""Late replies per person and per station, and reply times per ladder level (EXP-R13, EXP-P01).

* **Late replies** are the express deadlines closed in the months asked, counted by
  the core (``portal.sla.stats.breach_stats``): a deadline counts in the local month
  of its due time, breached = late (a breach answered later stays late), charged to
  whoever held it when it was breached or met.  The clocks counted are the
  customer's (EXP-R09: ``express.customer``, ``express.customer_repeat``) and the
  hops' (EXP-R10..R12: ``express.hop_reply``, ``express.supervisor``,
  ``express.assist``, ``express.network``, ``express.netdept``).
* **Reply time per level** is ``hop.replied_at - hop.sent_at`` of the hops answered by
  a unit in scope, grouped by stage 2..5 (forwards) and by side request
  (supervisor, 网管 assist), in the local month of ``sent_at`` in the receiving
  unit's zone.

Percentages and averages are computed with integers and rounded half up to one
decimal; they are text (``"66.7"``) for the page and the CSV, exact decimals in the
XLSX.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from tempfile import SpooledTemporaryFile

from sqlalchemy import select

from plugins.express import rules
from plugins.express.models import Hop
from portal.auth.models import User
from portal.extensions import db
from portal.penalties.payroll import file_chunks, new_workbook, saved_workbook
from portal.sla import stats as sla_stats
from portal.units.models import Unit

CUSTOMER_POLICIES = ("express.customer", "express.customer_repeat")  # EXP-R09
LADDER_POLICIES = ("express.hop_reply", "express.supervisor", "express.assist", "express.network",
                   "express.netdept")  # EXP-R10..R12
MAX_MONTHS = 12
# the levels of the reply-time table, in ladder order: forwards by stage, then the side requests
LEVEL_KEYS = ("2", "3", "4", "5", rules.SUPERVISOR, rules.ASSIST)


class ExpressStatsError(ValueError):
    """A month range the statistics refuse."""


def months_between(first: str, last: str) -> list[str]:
    """``first``..``last`` as ``YYYY-MM`` strings, at most ``MAX_MONTHS``."""
    try:
        months = sla_stats.month_range(first, last)
    except sla_stats.StatsError as exc:
        raise ExpressStatsError(str(exc)) from exc
    if len(months) > MAX_MONTHS:
        raise ExpressStatsError(f"at most {MAX_MONTHS} months at a time")
    return months


# --- exact arithmetic -------------------------------------------------------------------------


def _tenths(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` in tenths, rounded half up (non-negative integers)."""
    return (numerator * 20 + denominator) // (denominator * 2)


def _text(tenths: int) -> str:
    return f"{tenths // 10}.{tenths % 10}"


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` in percent to one decimal (``"66.7"``), or ``""`` without a whole."""
    return _text(_tenths(part * 100, whole)) if whole else ""


def average_minutes(total_microseconds: int, count: int) -> str:
    """The mean of ``count`` durations in minutes to one decimal, or ``""`` if none."""
    return _text(_tenths(total_microseconds, count * 60_000_000)) if count else ""


def as_decimal(text: str) -> Decimal | None:
    return Decimal(text) if text else None


# --- rows -------------------------------------------------------------------------------------


@dataclass
class LateRow:
    """Closed clocks and late ones of a person (``user`` None: held by nobody) or of a unit."""

    month: str
    unit: Unit
    user: User | None = None
    closed: int = 0
    late: int = 0
    late_customer: int = 0  # EXP-R09
    late_ladder: int = 0  # EXP-R10..R12

    @property
    def on_time(self) -> int:
        return self.closed - self.late

    @property
    def on_time_pct(self) -> str:
        return percent(self.on_time, self.closed)

    def add(self, closed: int, late: int, customer: bool) -> None:
        self.closed += closed
        self.late += late
        if customer:
            self.late_customer += late
        else:
            self.late_ladder += late


@dataclass
class LevelRow:
    """Answered hops of one level in one month and their summed reply time."""

    month: str
    key: str  # "2".."5" (a forward's stage) or "supervisor" / "assist"
    replies: int = 0
    total_microseconds: int = 0

    @property
    def label(self) -> str:
        if self.key.isdigit():
            return str(rules.STAGE_LABELS[int(self.key)])
        return str(rules.KIND_LABELS[self.key])

    @property
    def average_minutes(self) -> str:
        return average_minutes(self.total_microseconds, self.replies)


@dataclass
class Report:
    months: list[str]
    people: list[LateRow] = field(default_factory=list)
    units: list[LateRow] = field(default_factory=list)
    levels: list[LevelRow] = field(default_factory=list)

    @property
    def closed(self) -> int:
        return sum(r.closed for r in self.units)

    @property
    def late(self) -> int:
        return sum(r.late for r in self.units)

    @property
    def on_time_pct(self) -> str:
        return percent(self.closed - self.late, self.closed)


def _sort_key(row: LateRow):
    return (row.month, row.unit.code, -row.late, row.user.username if row.user else "~")


def late_rows(units: list[Unit], months: list[str], zone_of) -> tuple[list[LateRow], list[LateRow]]:
    """Per (month, unit, person) and per (month, unit): closed and late express clocks."""
    people: dict[tuple, LateRow] = {}
    by_unit: dict[tuple, LateRow] = {}
    for policy in CUSTOMER_POLICIES + LADDER_POLICIES:
        customer = policy in CUSTOMER_POLICIES
        for row in sla_stats.breach_stats(units, months, zone_of, policy_id=policy, by_person=True):
            key = (row.month, row.unit.id, row.user.id if row.user else None)
            people.setdefault(key, LateRow(row.month, row.unit, row.user)).add(row.closed, row.breached,
                                                                              customer)
            by_unit.setdefault(key[:2], LateRow(row.month, row.unit)).add(row.closed, row.breached, customer)
    return sorted(people.values(), key=_sort_key), sorted(by_unit.values(), key=_sort_key)


def level_rows(units: list[Unit], months: list[str], zone_of) -> list[LevelRow]:
    """Reply time of the hops answered by ``units``, per level, in the local month sent."""
    if not units or not months:
        return []
    zones = {u.id: zone_of(u) for u in units}
    after = sla_stats.shift_month(months[-1], 1)
    low = min(sla_stats.month_start(months[0], z) for z in set(zones.values()))
    high = max(sla_stats.month_start(after, z) for z in set(zones.values()))
    wanted = set(months)
    rows: dict[tuple[str, str], LevelRow] = {}
    query = (select(Hop.to_unit_id, Hop.stage, Hop.kind, Hop.sent_at, Hop.replied_at)
             .where(Hop.to_unit_id.in_(list(zones)), Hop.replied_at.is_not(None),
                    Hop.sent_at >= low, Hop.sent_at < high)
             .execution_options(yield_per=2000))
    for unit_id, stage, kind, sent_at, replied_at in db.session.execute(query):
        local = sent_at.astimezone(zones[unit_id])
        month = f"{local.year:04d}-{local.month:02d}"
        key = str(stage) if kind == rules.FORWARD else kind
        if month not in wanted or key not in LEVEL_KEYS:
            continue
        row = rows.setdefault((month, key), LevelRow(month, key))
        row.replies += 1
        row.total_microseconds += max((replied_at - sent_at) // timedelta(microseconds=1), 0)
    return sorted(rows.values(), key=lambda r: (r.month, LEVEL_KEYS.index(r.key)))


def report(units: Iterable[Unit], months: list[str], zone_of) -> Report:
    """The EXP-R13 figures of ``units`` for ``months`` (``zone_of``: ``unit → ZoneInfo``)."""
    units = list(units)
    if not units or not months:
        return Report(months)
    people, by_unit = late_rows(units, months, zone_of)
    return Report(months, people, by_unit, level_rows(units, months, zone_of))


# --- exports ----------------------------------------------------------------------------------

HEADER = ("section", "month", "unit_code", "unit", "username", "person", "level", "closed", "late",
          "late_customer_r09", "late_ladder_r10_r12", "on_time_pct", "replies", "avg_reply_minutes")


def records(rep: Report, unit_name=lambda u: u.name_zh) -> list[tuple]:
    """Plain cells, one tuple a line: the persons, the units, then the ladder levels."""
    out = []
    for section, rows in (("person", rep.people), ("unit", rep.units)):
        for r in rows:
            out.append((section, r.month, r.unit.code, unit_name(r.unit),
                        r.user.username if r.user else "", r.user.display_name if r.user else "",
                        "", r.closed, r.late, r.late_customer, r.late_ladder, r.on_time_pct, "", ""))
    for r in rep.levels:
        out.append(("level", r.month, "", "", "", "", r.key, "", "", "", "", "", r.replies,
                    r.average_minutes))
    return out


def csv_chunks(rows: Iterable[tuple]) -> Iterator[bytes]:
    """UTF-8 CSV with a BOM (for spreadsheet programs), CRLF, formula-safe text cells."""
    return (line.encode("utf-8") for line in sla_stats.csv_lines(rows, HEADER))


NUMERIC = {"on_time_pct", "avg_reply_minutes"}


def xlsx_file(rows: Iterable[tuple], months: list[str]) -> SpooledTemporaryFile:
    """The same lines as an XLSX workbook (openpyxl write-only); percentages as exact decimals."""
    year, mon = sla_stats.parse_month(months[0])
    workbook = new_workbook(f"express reply statistics {months[0]}..{months[-1]}", year, mon)
    sheet = workbook.create_sheet(title="EXP-R13")
    sheet.append(list(HEADER))
    for cells in rows:
        line = []
        for name, value in zip(HEADER, cells, strict=True):
            if name in NUMERIC:
                value = as_decimal(value)
            elif value == "":
                value = None
            line.append(sla_stats.safe_cell(value))
        sheet.append(line)
    return saved_workbook(workbook, year, mon)


def export(rep: Report, fmt: str, unit_name=lambda u: u.name_zh) -> Iterator[bytes]:
    rows = records(rep, unit_name)  # read now, while the session is open
    if fmt == "csv":
        return csv_chunks(rows)
    if fmt == "xlsx":
        return file_chunks(xlsx_file(rows, rep.months))
    raise ValueError(f"unknown export format {fmt!r}")
