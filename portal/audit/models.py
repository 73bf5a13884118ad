"""Audit entries, the chain head and purge checkpoints (CORE-08, CORE-09).

``record()`` adds an entry to the session; when the session flushes, a
``before_flush`` listener locks the single ``audit_head`` row, gives each new
entry the next ``seq`` and chains its hash to the previous entry's
(``portal.audit.chain``), then moves the head.  The lock serialises writers on
both databases (PostgreSQL: ``SELECT … FOR UPDATE``; SQLite: an ``UPDATE`` that
takes the database write lock first), so ``seq`` stays gapless under
concurrency.  Database triggers (``portal.audit.triggers``) refuse UPDATE and
DELETE of entries; only a purge behind a checkpoint may delete.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import current_app, g, has_app_context, has_request_context, request
from flask_login import current_user
from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, event, inspect, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import instance_state

from portal.audit import triggers
from portal.audit.chain import GENESIS, entry_hash
from portal.audit.sealed import AppendOnlyError
from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db


class AuditEntry(db.Model):
    """One audit entry.  Append-only: written once, never changed or deleted (but purged)."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)  # 1, 2, 3 … without gaps
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor_name: Mapped[str | None] = mapped_column(String(64))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64), index=True)
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    def hashed_fields(self) -> dict[str, Any]:
        from portal.audit.chain import HASHED_FIELDS

        return {name: getattr(self, name) for name in HASHED_FIELDS}


class AuditHead(db.Model):
    """The single row (id 1) holding the last entry's seq and hash; writers lock it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(db.Model):
    """Written by a purge of the audit table: verification starts after ``seq``."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)  # the last purged entry
    hash: Mapped[str] = mapped_column(String(64))  # … and its hash
    purged_at: Mapped[datetime] = mapped_column(UTCDateTime)
    by: Mapped[str | None] = mapped_column(String(64))  # who ran the purge
    mac: Mapped[str] = mapped_column(String(64))  # HMAC over (seq, hash, purged_at, by)


class AuditPurgePermit(db.Model):
    """Lives only inside a purge's transaction: lets the triggers delete sealed rows of a table
    whose retention has passed.  Never committed (the purge deletes it before committing)."""

    __tablename__ = "audit_purge_permits"

    table_name: Mapped[str] = mapped_column(String(100), primary_key=True)


class AuditRetentionFloor(db.Model):
    """The fewest years a record type must be kept whatever the settings say, per table.

    Written by the owner role (``portal upgrade``); on PostgreSQL the purge functions
    refuse any row younger than its floor, so the application role cannot purge early.
    """

    __tablename__ = "audit_retention_floors"

    table_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    date_column: Mapped[str] = mapped_column(String(100))
    years: Mapped[int] = mapped_column(Integer)


HEAD_ID = 1


def _plain(data: dict[str, Any] | None) -> dict | None:
    if data is None:
        return None
    return json.loads(json.dumps(data, default=str, ensure_ascii=False))


def _default_unit_id(actor) -> int | None:
    """The unit an entry belongs to when the caller names none: the unit the user works in
    now (already resolved for this request), else the actor's highest unit."""
    if has_request_context() and g.get("unit") is not None:
        return g.unit.id
    memberships = getattr(actor, "memberships", None) or []
    if not memberships:
        return None
    top = sorted(memberships, key=lambda m: (len(m.unit.ancestors()), m.unit_id))[0]
    return top.unit_id


def record(
    action: str,
    object_type: str,
    object_id: Any = None,
    *,
    unit_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor=None,
) -> AuditEntry:
    """Add an audit entry to the session (committed with the change it describes).

    ``seq``, ``prev_hash`` and ``hash`` are filled in when the session flushes.
    Without ``unit_id`` the entry belongs to the unit the user works in (or the
    actor's highest unit), so the unit-scoped audit page shows it.
    """
    if actor is None and has_request_context() and current_user and current_user.is_authenticated:
        actor = current_user
    if unit_id is None and actor is not None:
        unit_id = _default_unit_id(actor)
    entry = AuditEntry(
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        unit_id=unit_id,
        before=_plain(before),
        after=_plain(after),
        actor_id=getattr(actor, "id", None),
        actor_name=getattr(actor, "username", None),
        remote_addr=request.remote_addr if has_request_context() else None,
    )
    db.session.add(entry)
    return entry


# ---- chaining ----------------------------------------------------------------------------


def audit_key(session: Session | None = None) -> str:
    """The HMAC key (setting PORTAL_AUDIT_KEY)."""
    if session is not None and session.info.get("portal_audit_key"):
        return session.info["portal_audit_key"]
    if not has_app_context():
        raise RuntimeError("audit entries are chained with PORTAL_AUDIT_KEY: write them inside an app context")
    key = current_app.config.get("PORTAL_AUDIT_KEY")
    if not key:
        raise RuntimeError("PORTAL_AUDIT_KEY is not set: audit entries cannot be chained")
    return key


def lock_head(connection) -> tuple[int, str]:
    """Lock the head row for the rest of the transaction and return (seq, hash).

    PostgreSQL: ``SELECT … FOR UPDATE`` (waits for a concurrent writer, then sees its
    committed head).  SQLite: a no-op ``UPDATE`` first takes the database write lock,
    so the following ``SELECT`` reads the latest committed head.  The row is created
    on first use (``INSERT … ON CONFLICT DO NOTHING``) if the schema was made without it.
    """
    table = AuditHead.__table__
    if connection.dialect.name == "sqlite":
        connection.execute(update(table).where(table.c.id == HEAD_ID).values(seq=table.c.seq))
    query = select(table.c.seq, table.c.hash).where(table.c.id == HEAD_ID).with_for_update()
    row = connection.execute(query).first()
    if row is None:
        connection.execute(_insert_head_ignoring_conflict(connection))
        row = connection.execute(query).first()
    return int(row.seq), row.hash


def _insert_head_ignoring_conflict(connection):
    table = AuditHead.__table__
    values = {"id": HEAD_ID, "seq": 0, "hash": GENESIS}
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).values(**values).on_conflict_do_nothing(index_elements=["id"])


def _chain_new_entries(session: Session, flush_context, instances) -> None:  # noqa: ARG001
    new = [obj for obj in session.new if isinstance(obj, AuditEntry)]
    if not new:
        return
    new.sort(key=lambda obj: instance_state(obj).insert_order or 0)
    key = audit_key(session)
    connection = session.connection(bind_arguments={"mapper": inspect(AuditEntry)})
    seq, prev = lock_head(connection)
    for entry in new:
        if entry.seq is not None or entry.hash is not None:
            raise AppendOnlyError("append-only: seq and hash of an audit entry are assigned by the chain")
        if entry.at is None:
            entry.at = utcnow()
        entry.before, entry.after = _plain(entry.before), _plain(entry.after)
        if entry.object_id is not None and not isinstance(entry.object_id, str):
            entry.object_id = str(entry.object_id)
        seq += 1
        entry.seq, entry.prev_hash = seq, prev
        entry.hash = prev = entry_hash(key, prev, entry.hashed_fields())
    table = AuditHead.__table__
    connection.execute(update(table).where(table.c.id == HEAD_ID).values(seq=seq, hash=prev))


def _refuse_update(mapper, connection, target) -> None:  # noqa: ARG001
    state = inspect(target)
    if any(state.attrs[attr.key].history.has_changes() for attr in mapper.column_attrs):
        raise AppendOnlyError(f"append-only: {mapper.local_table.name} row {target.seq} cannot be changed")


def _refuse_delete(mapper, connection, target) -> None:  # noqa: ARG001
    raise AppendOnlyError(f"append-only: {mapper.local_table.name} row {target.seq} cannot be deleted "
                          "(old entries leave only through `portal purge`)")


if not event.contains(Session, "before_flush", _chain_new_entries):
    event.listen(Session, "before_flush", _chain_new_entries)
for _model in (AuditEntry, AuditCheckpoint):
    event.listen(_model, "before_update", _refuse_update)
    event.listen(_model, "before_delete", _refuse_delete)

triggers.install(db.metadata)
triggers.install_functions(db.metadata)
