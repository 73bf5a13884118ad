"""Monthly payroll statements and their exports (CORE-05)."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.penalties import payroll as P
from portal.penalties import rules as R
from portal.penalties import service
from portal.settings import models as settings
from tests.penalty_support import cast, late_reply, local, person, published


@pytest.fixture
def people(tree):
    return cast(tree)


def _export(month, fmt, unit_ids=None) -> bytes:
    return b"".join(P.export(month, unit_ids, fmt))


def _csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def _notice_ids(month: str) -> list[int]:
    return [line.notice_id for line in P.lines(month)]


def _month_of_finals(tree, people):
    """Notices that become final on either side of the November/December boundary (Shanghai)."""
    sam = people["sam"]
    a = published(tree, people, local(2026, 11, 27, 10), evidence="a")  # final 11-30 00:00 → Nov
    b = published(tree, people, local(2026, 11, 28, 10), evidence="b")  # final 12-01 00:00 → Dec
    c = published(tree, people, local(2026, 11, 29, 10), evidence="c")  # appealed, decided 11-30 23:59:59
    d = published(tree, people, local(2026, 11, 29, 11), evidence="d")  # decided 12-01 00:00:00
    e = published(tree, people, local(2026, 10, 20, 10), evidence="e")  # final in October
    w = published(tree, people, local(2026, 11, 20, 10), evidence="w")  # withdrawn: no month
    for notice in (c, d, w):
        service.appeal(notice, sam, "x", now=notice.published_at)
    service.decide(c, people["ivy"], R.REDUCED, "r", amount="80", now=local(2026, 11, 30, 23, 59, 59))
    service.decide(d, people["ivy"], R.UPHELD, "r", now=local(2026, 12, 1, 0, 0, 0))
    service.decide(w, people["ivy"], R.WITHDRAWN, "r", now=local(2026, 11, 21))
    service.finalise_due(local(2026, 12, 10))
    db.session.commit()
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "w": w}


def test_core_05_final_penalty_in_exactly_one_month(app, tree, people):
    n = _month_of_finals(tree, people)
    months = {m: _notice_ids(m) for m in ("2026-09", "2026-10", "2026-11", "2026-12", "2027-01")}
    assert sorted(months["2026-10"]) == [n["e"].id]
    assert sorted(months["2026-11"]) == sorted([n["a"].id, n["c"].id])
    assert sorted(months["2026-12"]) == sorted([n["b"].id, n["d"].id])
    assert months["2026-09"] == months["2027-01"] == []
    every = [i for ids in months.values() for i in ids]
    assert len(every) == len(set(every)) == 5  # each final penalty once; the withdrawn one never
    november = {line.notice_id: line for line in P.lines("2026-11")}
    assert november[n["c"].id].amount == Decimal("80.00")  # the reduced amount
    assert november[n["c"].id].booked_on == date(2026, 11, 30)


def test_core_05_statement_per_person_and_unit(app, tree, people):
    _month_of_finals(tree, people)  # sam (north): a 200 and c 80 in November
    dan = person("dan", (tree["company"], "auditor"))
    [club] = service.record_event(late_reply(tree["club"], people["cal"], local(2026, 11, 2, 8)))
    service.publish(club, dan, now=local(2026, 11, 2, 10))
    service.finalise_due(local(2026, 11, 10))
    db.session.commit()
    persons, by_unit = P.summarise(P.lines("2026-11"))
    assert [(p.unit_code, p.username, p.count, p.net) for p in persons] == [
        ("club", "cal", 1, Decimal("200.00")), ("north", "sam", 2, Decimal("280.00"))]
    assert by_unit == {"club": Decimal("200.00"), "north": Decimal("280.00")}
    assert P.summarise(P.lines("2026-11", {tree["north"].id}))[1] == {"north": Decimal("280.00")}


def test_core_05_publication_month_setting_refunds_later(app, tree, people):
    settings.change(tree["company"], "core.deduction_month", "published", date(2020, 1, 1),
                    approver=None)
    db.session.commit()
    notice = published(tree, people, local(2026, 11, 29, 10))
    assert (notice.deduction_mode, notice.payroll_month) == (R.DEDUCT_ON_PUBLISHED, "2026-11")
    service.appeal(notice, people["sam"], "x", now=local(2026, 11, 30, 9))
    service.decide(notice, people["ivy"], R.WITHDRAWN, "wrong person", now=local(2026, 12, 2, 9))
    db.session.commit()
    [deduction] = P.lines("2026-11")
    [refund] = P.lines("2026-12")
    assert (deduction.kind, deduction.amount) == (P.DEDUCTION, Decimal("200.00"))
    assert (refund.kind, refund.amount, refund.notice_id) == (P.REFUND, Decimal("-200.00"), notice.id)
    rows = _csv_rows(_export("2026-12", "csv"))
    assert rows[1][-1] == "-200.00" and rows[1][-2] == P.KIND_LABELS[P.REFUND]


def test_core_05_csv_export_is_byte_identical_and_ordered(app, tree, people):
    _month_of_finals(tree, people)
    first = _export("2026-11", "csv")
    assert first == _export("2026-11", "csv")
    rows = _csv_rows(first)
    assert rows[0] == list(P.HEADER)
    assert [r[0] for r in rows[1:]] == ["2026-11", "2026-11"]
    assert [r[-1] for r in rows[1:]] == ["200.00", "80.00"]  # a: final 11-30 00:00, c: 23:59:59
    assert _csv_rows(_export("2026-08", "csv")) == [list(P.HEADER)]


def test_core_05_xlsx_export_is_byte_identical_whatever_the_clock(app, tree, people, monkeypatch):
    _month_of_finals(tree, people)
    first = _export("2026-11", "xlsx")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3 * 86400 + 7)  # zip stamps read the clock
    second = _export("2026-11", "xlsx")
    assert first == second
    archive = zipfile.ZipFile(io.BytesIO(first))
    assert {info.date_time for info in archive.infolist()} == {(2026, 11, 1, 0, 0, 0)}
    core = archive.read("docProps/core.xml").decode()
    assert "2026-11-01T00:00:00Z" in core
    sheet = load_workbook(io.BytesIO(first), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == P.HEADER
    assert [r[-1] for r in rows[1:]] == [200, 80]  # numbers, not text
    assert _export("2026-12", "xlsx") != first


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-3+4", "@SUM(A1)",
                                  "\tcmd", "\rcmd"])
def test_core_05_formula_injection_is_escaped(app, tree, people, name):
    people["sam"].display_name = name
    db.session.commit()
    published(tree, people, local(2026, 11, 2, 10))
    service.finalise_due(local(2026, 11, 10))
    db.session.commit()
    rows = _csv_rows(_export("2026-11", "csv"))
    assert rows[1][4] == "'" + name
    assert rows[1][-1] == "200.00"
    xlsx = load_workbook(io.BytesIO(_export("2026-11", "xlsx")))
    cell = xlsx.active.cell(row=2, column=5)
    assert cell.data_type == "s" and cell.value.startswith("'")
    amount = xlsx.active.cell(row=2, column=12)
    assert amount.data_type == "n" and amount.value == 200


def test_core_05_safe_text_leaves_plain_text_alone():
    assert P.safe_text("sam") == "sam" and P.safe_text("=1") == "'=1"
    assert P.safe_text("张三") == "张三" and P.safe_text("") == ""


def test_core_05_payroll_export_command_matches_the_web_export(app, tree, people, client, tmp_path):
    from portal.testing import make_user

    _month_of_finals(tree, people)
    make_user("manny", (tree["company"], "manager"))
    # the command comes through the core plugin's portal_register_commands
    runner = app.test_cli_runner()
    for fmt in ("csv", "xlsx"):
        out = tmp_path / f"statement.{fmt}"
        result = runner.invoke(args=["portal", "payroll-export", "--month", "2026-11", "--unit", "acme",
                                     "--format", fmt, "--output", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_bytes() == _export("2026-11", fmt)
    result = runner.invoke(args=["portal", "payroll-export", "--month", "2026-11"])
    assert result.exit_code == 0 and "2026-11" in result.output
    bad = runner.invoke(args=["portal", "payroll-export", "--month", "11-2026"])
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output
    client.login("manny")
    response = client.get(f"/penalties/payroll/export?month=2026-11&unit={tree['company'].id}&format=csv")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Disposition"] == 'attachment; filename="penalties-2026-11-acme.csv"'
    assert response.get_data() == (tmp_path / "statement.csv").read_bytes()
    xlsx = client.get(f"/penalties/payroll/export?month=2026-11&unit={tree['company'].id}&format=xlsx")
    assert xlsx.get_data() == (tmp_path / "statement.xlsx").read_bytes()
    exports = db.session.scalars(select(AuditEntry.after).where(
        AuditEntry.action == "payroll.exported")).all()
    assert [e["via"] for e in exports] == ["cli", "cli", "cli", "web", "web"]
