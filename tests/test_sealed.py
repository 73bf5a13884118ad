"""Sealed records (CORE-07): once sealed, no UPDATE of the sealed columns and no DELETE —
refused by the ORM, by the database's triggers (raw SQL) and over HTTP, on SQLite and PostgreSQL.

The model is ``tests.testplug.sealed_probe.SealedProbe``: a ``Sealed`` model on a
metadata of its own (so it never enters the app's schema or the migration
comparison), created per test by ``create_all`` — which adds the triggers
exactly as it does for a plugin's sealed model.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import MetaData, String, delete, inspect, select, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from portal.audit import Sealed, SealedRecordError, seal
from portal.audit.sealed import create_seal_triggers, drop_seal_triggers
from portal.extensions import db
from portal.testing import make_user
from tests.testplug.sealed_probe import SealedProbe, create_probe_table, drop_probe_table


@pytest.fixture
def probe(app):
    create_probe_table()
    yield
    drop_probe_table()


def _new(body: str = "handover: 3 keys, 1 parcel", sealed: bool = True, **fields) -> SealedProbe:
    row = SealedProbe(day=date(2026, 3, 5), body=body, signed_by="anna", **fields)
    if sealed:
        seal(row)
    db.session.add(row)
    db.session.commit()
    return row


def _stored(row):
    row_id = inspect(row).identity[0] if not isinstance(row, int) else row
    db.session.rollback()
    return db.session.execute(
        text("SELECT body, status, sealed_at FROM testplug_sealed_probe WHERE id = :id"), {"id": row_id}
    ).first()


def test_core_07_seal_sets_sealed_at_once(probe):
    row = _new(sealed=False)
    assert row.sealed_at is None and not row.is_sealed
    seal(row)
    first = row.sealed_at
    assert first is not None and first.tzinfo is not None
    seal(row)
    assert row.sealed_at == first
    db.session.commit()
    with pytest.raises(TypeError):
        seal(object())
    assert isinstance(row, Sealed)


def test_core_07_unsealed_rows_change_freely(probe):
    row = _new(sealed=False)
    row.body = "corrected before signing"
    db.session.commit()
    db.session.execute(text("UPDATE testplug_sealed_probe SET body = 'raw edit' WHERE id = :id"), {"id": row.id})
    db.session.commit()
    assert _stored(row).body == "raw edit"
    db.session.delete(db.session.get(SealedProbe, row.id))
    db.session.commit()
    assert _stored(row) is None


def test_core_07_orm_refuses_update_of_sealed_columns_and_delete(probe):
    row = _new()
    for column, value in (("body", "quietly altered"), ("signed_by", "bob"), ("day", date(2026, 3, 6)),
                          ("sealed_at", None), ("sealed_at", datetime(2020, 1, 1, tzinfo=timezone.utc))):
        setattr(db.session.get(SealedProbe, row.id), column, value)
        with pytest.raises(SealedRecordError, match="sealed"):
            db.session.commit()
        db.session.rollback()
    db.session.delete(db.session.get(SealedProbe, row.id))
    with pytest.raises(SealedRecordError, match="cannot be deleted"):
        db.session.commit()
    stored = _stored(row)
    assert stored.body == "handover: 3 keys, 1 parcel" and stored.sealed_at is not None


def test_core_07_other_columns_stay_updatable_and_corrections_are_new_rows(probe):
    row = _new()
    same = db.session.get(SealedProbe, row.id)
    same.status = "archived"
    same.body = same.body  # setting a sealed column to its own value is no change
    db.session.commit()
    correction = _new(body="handover: 3 keys, 2 parcels", corrects_id=row.id)
    db.session.execute(text("UPDATE testplug_sealed_probe SET status = 'corrected' WHERE id = :id"),
                       {"id": row.id})
    db.session.commit()
    assert _stored(row).status == "corrected"
    assert db.session.get(SealedProbe, correction.id).corrects_id == row.id


@pytest.mark.parametrize("statement", [
    "UPDATE testplug_sealed_probe SET body = 'raw edit' WHERE id = :id",
    "UPDATE testplug_sealed_probe SET signed_by = NULL WHERE id = :id",
    "UPDATE testplug_sealed_probe SET sealed_at = NULL WHERE id = :id",
    "DELETE FROM testplug_sealed_probe WHERE id = :id",
])
def test_core_07_raw_sql_refused_by_the_database(probe, statement):
    row = _new()
    with pytest.raises(SealedRecordError, match="sealed record"):
        db.session.execute(text(statement), {"id": row.id})
    stored = _stored(row)
    assert stored.body == "handover: 3 keys, 1 parcel" and stored.sealed_at is not None


def test_core_07_bulk_orm_statements_refused_by_the_database(probe):
    row = _new()
    with pytest.raises(SealedRecordError):
        db.session.execute(update(SealedProbe).where(SealedProbe.id == row.id).values(body="bulk"))
    db.session.rollback()
    with pytest.raises(SealedRecordError):
        db.session.execute(delete(SealedProbe).where(SealedProbe.id == row.id))
    assert _stored(row).body == "handover: 3 keys, 1 parcel"


def test_core_07_http_update_and_delete_refused(probe, client, tree):
    make_user("anna", (tree["company"], "staff"))
    sealed, draft = _new(), _new(sealed=False)
    client.login("anna")
    response = client.post_form(f"/testplug/probe/{sealed.id}", {"action": "body", "value": "edited"})
    assert response.status_code == 409
    assert "sealed" in response.get_data(as_text=True).lower() or "封" in response.get_data(as_text=True)
    response = client.post_form(f"/testplug/probe/{sealed.id}", {"action": "delete"}, htmx=True)
    assert response.status_code == 409 and "role=\"alert\"" in response.get_data(as_text=True)
    assert _stored(sealed).body == "handover: 3 keys, 1 parcel"
    # the same route works where the regulation allows it
    assert client.post_form(f"/testplug/probe/{sealed.id}", {"action": "status", "value": "seen"}).status_code == 200
    assert client.post_form(f"/testplug/probe/{draft.id}", {"action": "body", "value": "fixed"}).status_code == 200
    assert _stored(sealed).status == "seen" and _stored(draft).body == "fixed"


class _Op:
    """The two things the migration helpers use from ``alembic.op``."""

    def __init__(self, connection):
        self.connection = connection

    def get_bind(self):
        return self.connection

    def execute(self, statement):
        self.connection.execute(text(statement) if isinstance(statement, str) else statement)


def test_core_07_migration_helper_installs_and_removes_the_triggers(app):
    db.session.execute(text("DROP TABLE IF EXISTS testplug_migrated"))
    db.session.execute(text("CREATE TABLE testplug_migrated (id INTEGER PRIMARY KEY, body VARCHAR(50), "
                            "note VARCHAR(50), sealed_at TIMESTAMP)"))
    db.session.execute(text("INSERT INTO testplug_migrated VALUES (1, 'b', 'n', CURRENT_TIMESTAMP), "
                            "(2, 'b', 'n', NULL)"))
    db.session.commit()
    try:
        op = _Op(db.session.connection())
        create_seal_triggers(op, "testplug_migrated", ["body"])
        db.session.commit()
        db.session.execute(text("UPDATE testplug_migrated SET note = 'free' WHERE id = 1"))
        db.session.execute(text("UPDATE testplug_migrated SET body = 'x' WHERE id = 2"))
        db.session.execute(text("DELETE FROM testplug_migrated WHERE id = 2"))
        db.session.commit()
        for statement in ("UPDATE testplug_migrated SET body = 'x' WHERE id = 1",
                          "DELETE FROM testplug_migrated WHERE id = 1"):
            with pytest.raises(SealedRecordError):
                db.session.execute(text(statement))
            db.session.rollback()
        drop_seal_triggers(_Op(db.session.connection()), "testplug_migrated")
        db.session.execute(text("DELETE FROM testplug_migrated WHERE id = 1"))
        db.session.commit()
        assert db.session.execute(select(text("count(*)")).select_from(text("testplug_migrated"))).scalar() == 0
    finally:
        db.session.rollback()
        db.session.execute(text("DROP TABLE IF EXISTS testplug_migrated"))
        db.session.commit()


def test_core_07_sealed_columns_must_exist():
    class Base(DeclarativeBase):
        metadata = MetaData()

    with pytest.raises(TypeError, match="unknown columns: bodyy"):
        class Typo(Sealed, Base):  # noqa: F841
            __tablename__ = "testplug_typo"
            __sealed_columns__ = ("bodyy",)
            id: Mapped[int] = mapped_column(primary_key=True)
            body: Mapped[str] = mapped_column(String(10))
