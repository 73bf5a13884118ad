"""Retention (CORE-09): kept N years from the month-end archive; a purge refuses anything younger,
and purging the audit trail leaves a checkpoint the chain still verifies from."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from portal.audit import AuditEntry, SealedRecordError, record, seal
from portal.audit.chain import CHECKPOINT, DELETED
from portal.audit.models import AuditCheckpoint, AuditPurgePermit, AuditRetentionFloor
from portal.audit.purge import PurgeRefused, purge
from portal.audit.retention import (
    RetentionPolicy,
    archive_date,
    deletable_from,
    kept_until,
    may_delete,
    purge_cutoff,
    register_policy,
    unregister_policy,
)
from portal.audit.verify import verify_stored_chain
from portal.extensions import db
from portal.settings import models as settings
from tests.testplug.sealed_probe import SealedProbe, create_probe_table, drop_probe_table

SHANGHAI = ZoneInfo("Asia/Shanghai")


# ---- the dates ---------------------------------------------------------------------------


def test_core_09_three_years_from_the_month_end_archive():
    record_day = date(2026, 3, 5)
    assert archive_date(record_day) == date(2026, 3, 31)
    assert kept_until(record_day, 3) == date(2029, 3, 31)  # until 2029-03-31 24:00
    assert deletable_from(record_day, 3) == date(2029, 4, 1)
    assert not may_delete(record_day, 3, date(2029, 3, 31))
    assert may_delete(record_day, 3, date(2029, 4, 1))
    # the whole month shares one archive: the 1st and the 31st go at the same time
    assert deletable_from(date(2026, 3, 1), 3) == deletable_from(date(2026, 3, 31), 3) == date(2029, 4, 1)
    assert deletable_from(date(2026, 4, 1), 3) == date(2029, 5, 1)
    assert kept_until(date(2026, 12, 15), 3) == date(2029, 12, 31)
    assert deletable_from(date(2026, 12, 15), 3) == date(2030, 1, 1)
    assert kept_until(date(2028, 2, 29), 3) == date(2031, 2, 28)
    assert archive_date(date(2028, 2, 3)) == date(2028, 2, 29)
    assert kept_until(date(2026, 3, 5), 0) == date(2026, 3, 31)


def test_core_09_purge_cutoff_at_the_month_boundary():
    assert purge_cutoff(date(2029, 3, 31), 3) == date(2026, 3, 1)
    assert purge_cutoff(date(2029, 4, 1), 3) == date(2026, 4, 1)
    assert purge_cutoff(date(2029, 1, 15), 3) == date(2026, 1, 1)
    assert purge_cutoff(date(2029, 1, 15), 5) == date(2024, 1, 1)
    with pytest.raises(ValueError):
        purge_cutoff(date(2029, 1, 15), -1)


@given(
    record_day=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
    today=st.dates(min_value=date(2000, 1, 1), max_value=date(2120, 12, 31)),
    years=st.integers(min_value=0, max_value=10),
)
def test_core_09_a_record_is_purgeable_exactly_when_it_lies_before_the_cutoff(record_day, today, years):
    assert may_delete(record_day, years, today) == (record_day < purge_cutoff(today, years))
    assert deletable_from(record_day, years) > record_day
    assert (deletable_from(record_day, years) - timedelta(days=1)) == kept_until(record_day, years)


# ---- purging a per-unit record type (a sealed one) ---------------------------------------


@pytest.fixture
def probes(app, tree):
    create_probe_table()
    register_policy(RetentionPolicy("probe", SealedProbe, "day", "core.retention_years_duty"))
    # these tests move the clock (``now=``); the database's floor judges by its own clock
    db.session.add(AuditRetentionFloor(table_name=SealedProbe.__tablename__, date_column="day", years=0))
    db.session.commit()
    yield tree
    unregister_policy("probe")
    drop_probe_table()


def _probe(unit, day: date, sealed: bool = True) -> int:
    row = SealedProbe(unit_id=unit.id, day=day, body=f"handover {day}", signed_by="anna")
    if sealed:
        seal(row)
    db.session.add(row)
    db.session.commit()
    return row.id


def _probe_days() -> list[date]:
    db.session.rollback()
    return sorted(db.session.scalars(select(SealedProbe.day)))


def _local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_core_09_purge_refused_until_24_00_local_of_the_last_kept_day(probes):
    north = probes["north"]
    _probe(north, date(2026, 3, 5))
    _probe(north, date(2026, 4, 2))
    just_before = _local(2029, 3, 31, 23, 59, 59)  # = 15:59:59 UTC
    with pytest.raises(PurgeRefused) as refused:
        purge("probe", date(2026, 4, 1), now=just_before)
    assert "2026-03-05" in str(refused.value) and "2029-03-31 24:00" in str(refused.value)
    assert "nothing was deleted" in str(refused.value)
    assert _probe_days() == [date(2026, 3, 5), date(2026, 4, 2)]
    outcome = purge("probe", date(2026, 4, 1), now=_local(2029, 4, 1, 0, 0, 0))
    assert outcome.count == 1 and not outcome.dry_run
    assert _probe_days() == [date(2026, 4, 2)]
    # the permit lived only inside the purge: sealed rows are guarded again
    assert db.session.scalar(select(func.count()).select_from(AuditPurgePermit)) == 0
    with pytest.raises(SealedRecordError):
        db.session.execute(text("DELETE FROM testplug_sealed_probe"))
    db.session.rollback()
    purged = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.purged")).one()
    assert purged.after["count"] == 1 and purged.object_type == "probe"
    assert verify_stored_chain().ok


def test_core_09_dry_run_deletes_nothing(probes):
    _probe(probes["north"], date(2020, 1, 10))
    outcome = purge("probe", date(2021, 1, 1), dry_run=True, now=_local(2026, 6, 1, 12))
    assert (outcome.count, outcome.dry_run) == (1, True)
    assert "would delete 1" in outcome.describe()
    assert _probe_days() == [date(2020, 1, 10)]


def test_core_09_each_unit_keeps_its_own_retention(probes, app):
    north, south = probes["north"], probes["south"]
    settings.change(south, "core.retention_years_duty", "5", date(2000, 1, 1), None)
    db.session.commit()
    _probe(north, date(2022, 5, 10))
    _probe(south, date(2022, 5, 10))
    now = _local(2026, 1, 15, 9)  # north (3 years) may purge before 2023-01-01; south (5) before 2021-01-01
    with pytest.raises(PurgeRefused) as refused:
        purge("probe", date(2023, 1, 1), now=now)
    assert "unit south" in str(refused.value) and "unit north" not in str(refused.value)
    assert len(_probe_days()) == 2
    # an unsealed, unit-less row is judged by the strictest unit
    db.session.add(SealedProbe(unit_id=None, day=date(2020, 6, 1), body="x"))
    db.session.commit()
    assert purge("probe", date(2021, 1, 1), now=now).count == 1
    assert _probe_days() == [date(2022, 5, 10), date(2022, 5, 10)]


def test_core_09_unknown_type_refused(app):
    with pytest.raises(PurgeRefused, match="known types: .*audit"):
        purge("nothing-like-this", date(2020, 1, 1))


# ---- purging the audit trail -------------------------------------------------------------


def _entries(old: int, recent: int) -> None:
    for i in range(old):
        entry = record("test.old", "thing", i)
        entry.at = datetime(2020, 5, 1, 12, tzinfo=timezone.utc) + timedelta(minutes=i)
    db.session.commit()
    for i in range(recent):
        record("test.recent", "thing", i)
    db.session.commit()


def _cli(app, *args):
    result = app.test_cli_runner().invoke(args=["portal", *args])
    return result.exit_code, result.output


def test_core_09_audit_purge_writes_a_checkpoint_and_the_chain_still_verifies(app):
    _entries(old=5, recent=3)
    hash_5 = db.session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == 5))
    code, output = _cli(app, "purge", "--type", "audit", "--before", "2021-01-01", "--dry-run")
    assert code == 0 and "would delete 5" in output
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 8
    code, output = _cli(app, "purge", "--type", "audit", "--before", "2021-01-01")
    assert code == 0, output
    assert "deleted 5" in output and "checkpoint at seq 5" in output
    db.session.rollback()
    checkpoint = db.session.scalars(select(AuditCheckpoint)).one()
    assert (checkpoint.seq, checkpoint.hash) == (5, hash_5) and checkpoint.by.startswith("cli:")
    assert db.session.scalar(select(func.min(AuditEntry.seq))) == 6
    code, output = _cli(app, "audit-verify")
    assert code == 0 and "audit chain OK: 4 entries" in output  # 3 recent + the purge's own entry
    # nothing more is old enough; a second run deletes nothing and writes no checkpoint
    code, output = _cli(app, "purge", "--type", "audit", "--before", "2021-01-01")
    assert code == 0 and "deleted 0" in output
    assert db.session.scalar(select(func.count()).select_from(AuditCheckpoint)) == 1
    # the entry right after the checkpoint is still guarded
    with pytest.raises(SealedRecordError):
        db.session.execute(text("DELETE FROM audit_entries WHERE seq = 6"))
    db.session.rollback()


def test_core_09_audit_purge_refuses_entries_within_retention(app):
    _entries(old=2, recent=2)
    tomorrow = (datetime.now(SHANGHAI).date() + timedelta(days=1)).isoformat()
    code, output = _cli(app, "purge", "--type", "audit", "--before", tomorrow)
    assert code == 1
    assert "still within their retention" in output and "nothing was deleted" in output
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 4
    assert db.session.scalar(select(func.count()).select_from(AuditCheckpoint)) == 0
    code, output = _cli(app, "purge", "--type", "audit", "--before", "not-a-date")
    assert code != 0 and "YYYY-MM-DD" in output


def test_core_09_deletion_after_a_checkpoint_is_still_found(app):
    _entries(old=4, recent=4)
    assert purge("audit", date(2021, 1, 1)).checkpoint_seq == 4
    db.session.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER")
                       if db.engine.dialect.name == "postgresql" else text("DROP TRIGGER audit_entries_no_delete"))
    db.session.execute(text("DELETE FROM audit_entries WHERE seq = 5"))
    db.session.commit()
    try:
        result = verify_stored_chain()
        assert (result.problem.kind, result.problem.seq) == (DELETED, 5)
    finally:
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
            db.session.commit()
        else:
            from portal.audit.triggers import audit_statements

            db.session.execute(text("SELECT count(*) FROM sqlite_master"))  # see test_audit_chain
            db.session.execute(text(next(s for s in audit_statements("sqlite") if "audit_entries_no_delete" in s)))
            db.session.commit()


def test_core_09_a_forged_checkpoint_is_caught(app):
    """The triggers let entries behind a checkpoint go; a checkpoint without the key's MAC is caught."""
    _entries(old=0, recent=6)
    hash_3 = db.session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == 3))
    db.session.execute(
        text("INSERT INTO audit_checkpoints (seq, hash, purged_at, by, mac) VALUES (3, :h, :at, 'x', :mac)"),
        {"h": hash_3, "mac": "0" * 64,
         "at": datetime(2026, 1, 1) if db.engine.dialect.name == "sqlite"
         else datetime(2026, 1, 1, tzinfo=timezone.utc)},
    )
    db.session.execute(text("DELETE FROM audit_entries WHERE seq <= 3"))
    db.session.commit()
    result = verify_stored_chain()
    assert (result.problem.kind, result.problem.seq) == (CHECKPOINT, 3)
