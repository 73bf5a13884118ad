"""Monthly payroll statements of penalties and their exports (CORE-05).

A statement line is either

* a **deduction**: a notice whose ``payroll_month`` is the month (the local month
  it became final, or of publication where ``core.deduction_month`` says so),
  at ``payroll_amount``; every notice has at most one deduction, so a penalty
  appears in exactly one month; or
* a **refund**: with deduction at publication, a decision that reduced or
  withdrew the penalty later, in the decision's local month (negative amount).

Exports (CSV, XLSX) are streamed and **byte-identical** for the same month and
unit: the lines have a fixed order (unit code, username, booking instant,
notice id, kind), the files carry no timestamp of the export (the XLSX
properties and its zip entries are dated from the month itself), and nothing
depends on the UI language.  Text cells that a spreadsheet would read as a
formula (starting with ``= + - @``, a tab or a carriage return) get a leading
apostrophe; amounts are written as numbers.
"""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from tempfile import SpooledTemporaryFile

from sqlalchemy import case, literal, select, type_coerce, union_all

from portal.auth.models import User
from portal.db_types import Money, UTCDateTime
from portal.extensions import db
from portal.penalties import rules as R
from portal.penalties.models import PenaltyDecision, PenaltyNotice
from portal.settings.models import unit_zone
from portal.units.models import Unit

DEDUCTION = "deduction"
REFUND = "refund"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 64 * 1024

HEADER = (
    "月份 month", "单位代码 unit code", "单位 unit", "工号 username", "姓名 name",
    "通知编号 notice no.", "规章编号 rule", "规章 rule title", "违规日期 occurred on",
    "入账日期 booked on", "类别 kind", "金额(元) amount (CNY)",
)
KIND_LABELS = {DEDUCTION: "扣款 deduction", REFUND: "退还 refund"}


@dataclass(frozen=True)
class Line:
    month: str
    unit_id: int
    unit_code: str
    unit_name: str
    username: str
    person: str
    notice_id: int
    rule_id: str
    rule_title: str
    occurred_on: date
    booked_on: date
    kind: str
    amount: Decimal

    def cells(self) -> tuple:
        return (self.month, self.unit_code, self.unit_name, self.username, self.person,
                self.notice_id, self.rule_id, self.rule_title, self.occurred_on.isoformat(),
                self.booked_on.isoformat(), KIND_LABELS[self.kind], self.amount)


def _rows_query(month: str, unit_ids: set[int] | None):
    booked = case((PenaltyNotice.deduction_mode == R.DEDUCT_ON_PUBLISHED, PenaltyNotice.published_at),
                  else_=PenaltyNotice.final_at)
    deductions = (
        select(PenaltyNotice.id.label("notice_id"), PenaltyNotice.unit_id.label("unit_id"),
               Unit.code.label("unit_code"), User.username.label("username"),
               type_coerce(booked, UTCDateTime).label("booked_at"),
               literal(1).label("kind_order"),
               type_coerce(PenaltyNotice.payroll_amount, Money).label("amount"),
               PenaltyNotice.rule_id.label("rule_id"),
               type_coerce(PenaltyNotice.occurred_at, UTCDateTime).label("occurred_at"),
               User.display_name.label("person"))
        .join(Unit, Unit.id == PenaltyNotice.unit_id).join(User, User.id == PenaltyNotice.user_id)
        .where(PenaltyNotice.payroll_month == month)
    )
    refunds = (
        select(PenaltyNotice.id, PenaltyNotice.unit_id, Unit.code, User.username,
               type_coerce(PenaltyDecision.decided_at, UTCDateTime), literal(2),
               type_coerce(PenaltyDecision.adjustment_amount, Money), PenaltyNotice.rule_id,
               type_coerce(PenaltyNotice.occurred_at, UTCDateTime), User.display_name)
        .join(PenaltyNotice, PenaltyNotice.id == PenaltyDecision.notice_id)
        .join(Unit, Unit.id == PenaltyNotice.unit_id).join(User, User.id == PenaltyNotice.user_id)
        .where(PenaltyDecision.adjustment_month == month)
    )
    if unit_ids is not None:
        deductions = deductions.where(PenaltyNotice.unit_id.in_(unit_ids))
        refunds = refunds.where(PenaltyNotice.unit_id.in_(unit_ids))
    both = union_all(deductions, refunds).subquery()
    return select(both).order_by(both.c.unit_code, both.c.username, both.c.booked_at,
                                 both.c.notice_id, both.c.kind_order)


def lines(month: str, unit_ids: set[int] | None = None, batch: int = 2000) -> Iterator[Line]:
    """The statement lines of ``month`` (``YYYY-MM``), optionally only for ``unit_ids``, in order."""
    R.parse_month(month)
    from portal.penalties.service import penalty_rules

    rules = penalty_rules()
    units: dict[int, tuple[Unit, object]] = {}
    result = db.session.execute(_rows_query(month, unit_ids).execution_options(yield_per=batch))
    for row in result:
        if row.unit_id not in units:
            unit = db.session.get(Unit, row.unit_id)
            units[row.unit_id] = (unit, unit_zone(unit))
        unit, zone = units[row.unit_id]
        rule = rules.get(row.rule_id)
        yield Line(month=month, unit_id=unit.id, unit_code=row.unit_code, unit_name=unit.name_zh,
                   username=row.username, person=row.person, notice_id=row.notice_id,
                   rule_id=row.rule_id, rule_title=rule.title_zh if rule else "",
                   occurred_on=row.occurred_at.astimezone(zone).date(),
                   booked_on=row.booked_at.astimezone(zone).date(),
                   kind=DEDUCTION if row.kind_order == 1 else REFUND,
                   amount=Decimal(row.amount).quantize(R.CENT))


@dataclass
class PersonTotal:
    username: str
    person: str
    unit_code: str
    unit_name: str
    deductions: Decimal
    refunds: Decimal
    count: int

    @property
    def net(self) -> Decimal:
        return self.deductions + self.refunds


def summarise(items: Iterable[Line]) -> tuple[list[PersonTotal], dict[str, Decimal]]:
    """Totals per (unit, person), in statement order, and per unit code."""
    people: dict[tuple[str, str], PersonTotal] = {}
    by_unit: dict[str, Decimal] = {}
    for line in items:
        key = (line.unit_code, line.username)
        total = people.setdefault(key, PersonTotal(line.username, line.person, line.unit_code,
                                                   line.unit_name, Decimal("0.00"),
                                                   Decimal("0.00"), 0))
        if line.kind == DEDUCTION:
            total.deductions += line.amount
            total.count += 1
        else:
            total.refunds += line.amount
        by_unit[line.unit_code] = by_unit.get(line.unit_code, Decimal("0.00")) + line.amount
    return list(people.values()), by_unit


# --- formula injection ------------------------------------------------------------------------


def safe_text(value: str) -> str:
    """A text cell a spreadsheet will not run: a leading apostrophe before = + - @ TAB CR."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _safe_cells(cells: tuple) -> list:
    return [safe_text(c) if isinstance(c, str) else c for c in cells]


# --- CSV --------------------------------------------------------------------------------------


def csv_chunks(items: Iterable[Line]) -> Iterator[bytes]:
    """UTF-8 CSV (with BOM, for Excel), CRLF line ends, streamed in chunks of ~64 KiB."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(HEADER)
    for line in items:
        cells = _safe_cells(line.cells())
        cells[-1] = format(line.amount, "f")  # a number, never escaped
        writer.writerow(cells)
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


# --- XLSX -------------------------------------------------------------------------------------


class _FixedTimeZip(zipfile.ZipFile):
    """A zip whose entries all carry one fixed timestamp and mode (deterministic bytes)."""

    fixed_time = (1980, 1, 1, 0, 0, 0)

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.fixed_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        return info

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        name = zinfo_or_arcname.filename if isinstance(zinfo_or_arcname, zipfile.ZipInfo) \
            else zinfo_or_arcname
        super().writestr(self._info(name), data)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        with open(filename, "rb") as src, self.open(self._info(arcname or filename), "w",
                                                    force_zip64=True) as dst:
            shutil.copyfileobj(src, dst, CHUNK)


def new_workbook(title: str, year: int, month: int):
    """A write-only openpyxl workbook stamped with the first of ``month`` (deterministic bytes)."""
    from openpyxl import Workbook

    stamp = datetime(year, month, 1)
    workbook = Workbook(write_only=True)
    workbook.properties.creator = "regulation-portal"
    workbook.properties.created = stamp
    workbook.properties.modified = stamp
    workbook.properties.title = title
    return workbook


def saved_workbook(workbook, year: int, month: int) -> SpooledTemporaryFile:
    """``workbook`` as XLSX bytes in a rewound temporary file, every zip entry dated ``month``."""
    from openpyxl.writer.excel import ExcelWriter

    out = SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    archive = _FixedTimeZip(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
    archive.fixed_time = (max(year, 1980), month, 1, 0, 0, 0)
    ExcelWriter(workbook, archive).save()  # not save_workbook(): that stamps "modified" with now
    out.seek(0)
    return out


def xlsx_file(items: Iterable[Line], month: str) -> SpooledTemporaryFile:
    """The statement as an XLSX workbook (openpyxl write-only), in a rewound temporary file."""
    from openpyxl.cell import WriteOnlyCell

    year, mon = R.parse_month(month)
    workbook = new_workbook(f"penalties {month}", year, mon)
    sheet = workbook.create_sheet(title=month)
    sheet.append(list(HEADER))
    for line in items:
        cells = _safe_cells(line.cells())
        amount = WriteOnlyCell(sheet, value=line.amount)
        amount.number_format = "0.00"
        cells[-1] = amount
        sheet.append(cells)
    return saved_workbook(workbook, year, mon)


def file_chunks(handle) -> Iterator[bytes]:
    try:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            yield chunk
    finally:
        handle.close()


def export(month: str, unit_ids: set[int] | None, fmt: str) -> Iterator[bytes]:
    """The bytes of an export, as an iterator of chunks (``fmt``: ``csv`` or ``xlsx``)."""
    if fmt == "csv":
        return csv_chunks(lines(month, unit_ids))
    if fmt == "xlsx":
        return file_chunks(xlsx_file(lines(month, unit_ids), month))
    raise ValueError(f"unknown export format {fmt!r}")


def filename(month: str, unit_code: str | None, fmt: str) -> str:
    return f"penalties-{month}{'-' + unit_code if unit_code else ''}.{fmt}"
