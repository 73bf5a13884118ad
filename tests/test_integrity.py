"""Integrity against the database itself (CORE-07, CORE-08, CORE-09; issue "Integrity that holds").

Three attacks by raw SQL, each tried two ways:

* as the database owner (SQLite, where file access is total, or a PostgreSQL superuser):
  the statements may go through, and ``audit-verify`` names the damaged table and row;
* on PostgreSQL as the application role of the documented two-role deployment
  (``portal db-grant``): the database refuses them.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from portal.audit import SealedRecordError, record, seal
from portal.audit.chain import CHECKPOINT
from portal.audit.models import AuditEntry, AuditRetentionFloor
from portal.audit.purge import purge
from portal.audit.retention import RetentionPolicy, register_policy, unregister_policy
from portal.audit.seals import ACTION
from portal.audit.triggers import grant_statements, seal_statements
from portal.audit.verify import verify_all
from portal.extensions import db
from portal.penalties import rules as R
from portal.penalties import service
from portal.penalties.models import PenaltyNotice
from portal.testing import is_postgres
from tests.penalty_support import cast, local, published
from tests.testplug.sealed_probe import ProbeBase, SealedProbe, create_probe_table, drop_probe_table


@pytest.fixture(autouse=True)
def english(app):
    with force_locale("en"):
        yield


@pytest.fixture
def people(tree):
    return cast(tree)


def _decided(tree, people) -> PenaltyNotice:
    """A published notice, appealed and decided (reduced to 50): final, with an appeal and a decision."""
    notice = published(tree, people, local(2026, 11, 10, 10))
    service.appeal(notice, people["sam"], "I answered at 14:10", now=local(2026, 11, 11, 9))
    service.decide(notice, people["ivy"], R.REDUCED, "first offence", amount="50",
                   now=local(2026, 11, 12, 9))
    db.session.commit()
    return notice


def _final(tree, people) -> PenaltyNotice:
    notice = published(tree, people, local(2026, 11, 1, 10))
    assert service.finalise_due(now=local(2026, 11, 5, 10)) == 1
    db.session.commit()
    return notice


def _problems(report) -> set[tuple[str, str, str]]:
    return {(p.table, p.ident, p.kind) for p in report.seals}


def _drop_guards(app) -> None:
    """What a database superuser (or the owner of the SQLite file) can always do."""
    if is_postgres(app):
        for table in ("penalty_notices", "penalty_appeals", "penalty_decisions"):
            db.session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
    else:
        for (name,) in db.session.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'penalty_%'")).all():
            db.session.execute(text(f'DROP TRIGGER "{name}"'))
    db.session.commit()


@pytest.fixture
def restore_guards(app):
    yield
    db.session.rollback()
    dialect = "postgresql" if is_postgres(app) else "sqlite"
    for table in ("penalty_notices", "penalty_appeals", "penalty_decisions"):
        t = db.metadata.tables[table]
        for statement in seal_statements(dialect, table, t.info["portal_sealed_columns"],
                                         t.info.get("portal_final_columns")):
            db.session.execute(text(statement))
    db.session.commit()


# ---- every sealed record is fingerprinted into the chain ---------------------------------


def test_core_07_sealing_and_finality_chain_a_seal_entry(app, tree, people):
    notice = _decided(tree, people)
    seals = db.session.scalars(select(AuditEntry).where(AuditEntry.action == ACTION)
                               .order_by(AuditEntry.seq)).all()
    kinds = [(e.object_type, e.object_id, e.after["stage"]) for e in seals]
    assert ("penalty_notices", str(notice.id), "sealed") in kinds
    assert ("penalty_notices", str(notice.id), "final") in kinds
    assert ("penalty_appeals", str(notice.appeal.id), "sealed") in kinds
    assert ("penalty_decisions", str(notice.decision.id), "sealed") in kinds
    final = [e for e in seals if e.after["stage"] == "final"][0]
    assert {"final_amount", "payroll_amount", "status", "amount"} <= set(final.after["columns"])
    report = verify_all()
    assert report.ok, report.lines()


# ---- 1. sealed rows deleted behind a forged purge permit -----------------------------------


def test_core_07_rows_deleted_through_a_forged_purge_permit_are_named(app, tree, people):
    notice = _decided(tree, people)
    ids = (notice.id, notice.appeal.id, notice.decision.id)
    db.session.execute(text("INSERT INTO audit_purge_permits (table_name) VALUES "
                            "('penalty_notices'), ('penalty_appeals'), ('penalty_decisions')"))
    db.session.execute(text("DELETE FROM penalty_decisions"))
    db.session.execute(text("DELETE FROM penalty_appeals"))
    db.session.execute(text("DELETE FROM penalty_inbox_messages"))
    db.session.execute(text("DELETE FROM penalty_notices"))
    db.session.execute(text("DELETE FROM audit_purge_permits"))
    db.session.commit()
    report = verify_all()
    assert not report.ok
    assert {("penalty_notices", str(ids[0]), "deleted"), ("penalty_appeals", str(ids[1]), "deleted"),
            ("penalty_decisions", str(ids[2]), "deleted")} <= _problems(report)
    assert any("penalty_notices row" in line for line in report.lines())


# ---- 2. a final notice's money ------------------------------------------------------------


@pytest.mark.parametrize("make", [_final, _decided], ids=["final-unappealed", "final-decided"])
def test_core_05_a_final_notices_money_and_status_cannot_change(app, tree, people, make):
    notice = make(tree, people)
    for statement in ("UPDATE penalty_notices SET final_amount = 0, payroll_amount = 0 WHERE id = :id",
                      "UPDATE penalty_notices SET status = 'withdrawn' WHERE id = :id",
                      "UPDATE penalty_notices SET payroll_month = '2030-01' WHERE id = :id",
                      "UPDATE penalty_notices SET deduction_mode = 'published' WHERE id = :id"):
        with pytest.raises(SealedRecordError):
            db.session.execute(text(statement), {"id": notice.id})
        db.session.rollback()
    row = db.session.get(PenaltyNotice, notice.id)
    row.final_amount = Decimal("0.00")
    with pytest.raises(SealedRecordError):  # the ORM refuses too
        db.session.flush()
    db.session.rollback()
    assert verify_all().ok


def test_core_05_final_money_edited_with_the_triggers_off_is_named(app, tree, people, restore_guards):
    notice = _final(tree, people)
    other = _decided(tree, people)
    _drop_guards(app)
    db.session.execute(text("UPDATE penalty_notices SET final_amount = 0, payroll_amount = 0 WHERE id = :id"),
                       {"id": notice.id})
    db.session.commit()
    report = verify_all()
    assert ("penalty_notices", str(notice.id), "edited") in _problems(report)
    assert ("penalty_notices", str(other.id), "edited") not in _problems(report)
    assert any("penalty_notices_sealed" in g for g in report.guards)  # the guards are reported too


def test_core_05_made_final_behind_the_portals_back_is_named(app, tree, people, restore_guards):
    notice = published(tree, people, local(2026, 11, 10, 10))
    db.session.execute(text("UPDATE penalty_notices SET status = 'final', final_at = :at, final_amount = 0, "
                            "payroll_month = '2026-11', payroll_amount = 0 WHERE id = :id"),
                       {"id": notice.id, "at": datetime(2026, 11, 13, tzinfo=timezone.utc)})
    db.session.commit()
    assert ("penalty_notices", str(notice.id), "edited") in _problems(verify_all())


# ---- 3. audit entries deleted behind a forged checkpoint ---------------------------------


def test_core_08_entry_deleted_behind_a_forged_checkpoint_is_reported(app, tree, people):
    _decided(tree, people)
    seq = db.session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq).offset(2).limit(1))
    db.session.execute(text("INSERT INTO audit_checkpoints (seq, hash, purged_at, by, mac) "
                            "VALUES (:seq, :hash, :at, 'x', :mac)"),
                       {"seq": seq, "hash": "0" * 64, "at": datetime.now(timezone.utc), "mac": "0" * 64})
    db.session.execute(text("DELETE FROM audit_entries WHERE seq = :seq"), {"seq": seq})
    db.session.commit()
    report = verify_all()
    assert not report.ok and report.chain.problem.kind == CHECKPOINT


# ---- the guards themselves ---------------------------------------------------------------


def test_core_08_verify_names_a_missing_trigger(app, tree, people, restore_guards):
    _decided(tree, people)
    if is_postgres(app):
        db.session.execute(text("DROP TRIGGER penalty_appeals_sealed_guard ON penalty_appeals"))
    else:
        db.session.execute(text('DROP TRIGGER "penalty_appeals_sealed_delete"'))
    db.session.commit()
    report = verify_all()
    assert not report.ok and report.seals == []
    assert [g for g in report.guards if "penalty_appeals_sealed" in g and "missing" in g]


def test_core_08_verify_names_a_replaced_guard_function(app):
    if not is_postgres(app):
        pytest.skip("SQLite has no stored functions")
    db.session.execute(text("CREATE OR REPLACE FUNCTION portal_sealed_guard() RETURNS trigger "
                            "LANGUAGE plpgsql AS $$ BEGIN IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; "
                            "RETURN NEW; END $$"))
    db.session.commit()
    try:
        report = verify_all()
        assert "function portal_sealed_guard() is missing or was replaced" in report.guards
    finally:
        from portal.audit.triggers import _PG_SEALED_FUNCTION

        db.session.execute(text(_PG_SEALED_FUNCTION))
        db.session.commit()
    assert verify_all().ok


def test_core_08_audit_verify_cli_lists_every_damaged_row(app, tree, people):
    decision_id = _decided(tree, people).decision.id
    db.session.execute(text("INSERT INTO audit_purge_permits (table_name) VALUES ('penalty_decisions')"))
    db.session.execute(text("DELETE FROM penalty_decisions"))
    db.session.execute(text("DELETE FROM audit_purge_permits"))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["portal", "audit-verify"])
    assert result.exit_code == 1
    assert f"penalty_decisions row {decision_id} (deleted)" in result.output


# ---- a purge leaves what it deleted in the chain -----------------------------------------


@pytest.fixture
def probes(app, tree):
    create_probe_table()
    register_policy(RetentionPolicy("probe", SealedProbe, "day", "core.retention_years_duty"))
    yield tree
    unregister_policy("probe")
    drop_probe_table()


def _probe(unit, day: date) -> int:
    row = SealedProbe(unit_id=unit.id, day=day, body=f"handover {day}", signed_by="anna")
    seal(row)
    db.session.add(row)
    db.session.commit()
    return row.id


def test_core_09_purged_sealed_rows_are_not_reported_deleted(app, probes):
    old, kept = _probe(probes["north"], date(2020, 1, 10)), _probe(probes["north"], date(2026, 1, 10))
    assert purge("probe", date(2021, 1, 1)).count == 1
    purged = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.purged")).one()
    assert purged.after["ids"] == [[old, old]]
    assert verify_all(extra_metadata=[ProbeBase.metadata]).ok
    db.session.execute(text("INSERT INTO audit_purge_permits (table_name) VALUES ('testplug_sealed_probe')"))
    db.session.execute(text("DELETE FROM testplug_sealed_probe"))
    db.session.execute(text("DELETE FROM audit_purge_permits"))
    db.session.commit()
    assert _problems(verify_all(extra_metadata=[ProbeBase.metadata])) == {
        ("testplug_sealed_probe", str(kept), "deleted")}


def test_core_07_a_row_sealed_behind_the_portals_back_is_named_until_backfilled(app, probes):
    """A sealed row with no seal entry: written by raw SQL, or sealed before seal entries existed
    (the migration that introduced them backfills those with ``seals.backfill``)."""
    from portal.audit.seals import backfill

    db.session.execute(text("INSERT INTO testplug_sealed_probe (unit_id, day, body, signed_by, status, sealed_at) "
                            "VALUES (:unit, :day, 'typed in by hand', 'x', 'open', :at)"),
                       {"unit": probes["north"].id, "day": date(2026, 1, 5), "at": datetime.now(timezone.utc)})
    db.session.commit()
    ident = db.session.scalar(select(SealedProbe.id))
    assert _problems(verify_all(extra_metadata=[ProbeBase.metadata])) == {
        ("testplug_sealed_probe", str(ident), "unsealed")}
    with db.engine.begin() as connection:
        assert backfill(connection, app.config["PORTAL_AUDIT_KEY"], [SealedProbe.__table__]) == 1
    assert verify_all(extra_metadata=[ProbeBase.metadata]).ok


# ---- PostgreSQL: the two-role deployment ---------------------------------------------------


@pytest.fixture
def app_role(app):
    """An application role with only what ``portal db-grant`` gives it, and an engine as that role."""
    if not is_postgres(app):
        pytest.skip("roles are PostgreSQL's")
    role = f"portal_app_{uuid.uuid4().hex[:8]}"
    db.session.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    for statement in grant_statements(role):
        db.session.execute(text(statement))
    db.session.commit()
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(username=role, password=None)
    engine = create_engine(url)
    yield engine
    engine.dispose()
    db.session.rollback()
    db.session.execute(text(f'DROP OWNED BY "{role}"'))
    db.session.execute(text(f'DROP ROLE "{role}"'))
    db.session.commit()


def _refused(engine, statement: str, params: dict | None = None) -> str:
    with engine.connect() as connection:
        with pytest.raises((DBAPIError, SealedRecordError)) as refused:
            connection.execute(text(statement), params or {})
        connection.rollback()
    return str(refused.value)


def test_core_07_application_role_cannot_forge_a_purge_permit(app, tree, people, app_role):
    notice = _decided(tree, people)
    assert "permission denied" in _refused(
        app_role, "INSERT INTO audit_purge_permits (table_name) VALUES ('penalty_notices')")
    for table in ("penalty_decisions", "penalty_appeals", "penalty_notices"):
        assert "sealed record" in _refused(app_role, f"DELETE FROM {table}")
    assert "retention" in _refused(app_role, "SELECT portal_purge_sealed('penalty_notices', ARRAY[:id]::bigint[])",
                                   {"id": notice.id})
    assert db.session.get(PenaltyNotice, notice.id) is not None and verify_all().ok


def test_core_05_application_role_cannot_change_final_money(app, tree, people, app_role):
    notice = _final(tree, people)
    assert "sealed record" in _refused(
        app_role, "UPDATE penalty_notices SET final_amount = 0, payroll_amount = 0 WHERE id = :id",
        {"id": notice.id})
    for statement in ("ALTER TABLE penalty_notices DISABLE TRIGGER USER",
                      "DROP TRIGGER penalty_notices_sealed_guard ON penalty_notices"):
        assert "must be owner" in _refused(app_role, statement)


def test_core_08_application_role_cannot_forge_a_checkpoint_or_delete_entries(app, tree, people, app_role):
    _decided(tree, people)
    seq = db.session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq).limit(1))
    assert "permission denied" in _refused(
        app_role, "INSERT INTO audit_checkpoints (seq, hash, purged_at, by, mac) "
                  "VALUES (:seq, :h, now(), 'x', :h)", {"seq": seq, "h": "0" * 64})
    assert "permission denied" in _refused(app_role, "DELETE FROM audit_entries WHERE seq = :seq", {"seq": seq})
    assert "permission denied" in _refused(app_role, "UPDATE audit_entries SET actor_name = 'x'")
    assert "permission denied" in _refused(app_role, "UPDATE audit_retention_floors SET years = 0")
    assert "retention" in _refused(  # entries written today are within every floor
        app_role, "SELECT portal_purge_audit(:seq, h.hash, now(), 'x', 'x') FROM audit_entries h WHERE h.seq = :seq",
        {"seq": seq})
    assert verify_all().ok


def test_core_09_application_role_purges_through_the_owners_function(app, probes, app_role):
    """The portal itself, running as the application role, purges what retention allows."""
    old = _probe(probes["north"], date(2020, 1, 10))
    young = _probe(probes["north"], date.today() - timedelta(days=30))
    db.session.execute(text("DELETE FROM audit_retention_floors"))
    db.session.add(AuditRetentionFloor(table_name="testplug_sealed_probe", date_column="day", years=1))
    db.session.commit()
    for statement in grant_statements(app_role.url.username):  # the probe table came after the grant
        db.session.execute(text(statement))
    db.session.commit()
    with app_role.begin() as connection:
        assert connection.execute(text("SELECT portal_purge_sealed('testplug_sealed_probe', ARRAY[:id]::bigint[])"),
                                  {"id": old}).scalar() == 1
    assert "within its 1 years of retention" in _refused(
        app_role, "SELECT portal_purge_sealed('testplug_sealed_probe', ARRAY[:id]::bigint[])", {"id": young})
    assert "permission denied" in _refused(
        app_role, "INSERT INTO audit_purge_permits (table_name) VALUES ('testplug_sealed_probe')")
    remaining = db.session.scalars(select(SealedProbe.id)).all()
    assert remaining == [young]
    record("test.done", "probe", young)
    db.session.commit()
