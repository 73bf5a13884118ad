"""Seal entries: a sealed record's content is fingerprinted into the audit chain (CORE-07, CORE-08).

The database triggers refuse to change a sealed row, but a database superuser
(or anyone with the SQLite file) can drop them.  So whenever a row is sealed,
and again when its second stage freezes (a penalty notice becoming final), a
``record.sealed`` audit entry is chained with a SHA-256 digest of the frozen
columns as the database holds them::

    action="record.sealed", object_type=<table>, object_id=<id>,
    after={"stage": "sealed" | "final", "columns": [...], "digest": "<64 hex>"}

The chain's HMAC makes the entry unforgeable; ``verify_sealed`` (run by
``portal audit-verify``) re-reads every sealed row and names, by table and id,
each one whose content no longer matches its latest seal entry, each one that
is gone without a retention purge that recorded its id, and each sealed row
that has no seal entry at all.

The entries are written by session events: ``after_flush`` notes the rows whose
``sealed_at`` (or final marker) has just been set, ``after_flush_postexec``
reads them back and adds the entries, which the commit's next flush chains.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Table, event, inspect, select
from sqlalchemy.orm import Session

from portal.audit.chain import iso_utc
from portal.audit.sealed import Sealed, final_columns, sealed_columns

ACTION = "record.sealed"
PURGED = "retention.purged"
SEALED, FINAL = "sealed", "final"
_PENDING = "portal_seal_pending"


def _plain(value):
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def digest(table: str, ident: str, values: dict) -> str:
    """SHA-256 of the canonical JSON of a row's frozen values (as the database returns them)."""
    body = {"table": table, "id": ident, "values": {k: _plain(v) for k, v in sorted(values.items())}}
    data = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def stage_columns(table: Table, stage: str) -> tuple[str, ...]:
    """The columns a seal entry of ``stage`` covers: the final stage covers both stages."""
    sealed = (*table.info["portal_sealed_columns"], "sealed_at")
    if stage == SEALED:
        return sealed
    marker, later = table.info["portal_final_columns"]
    return (*sealed, marker, *later)


def _pk(table: Table):
    columns = list(table.primary_key.columns)
    if len(columns) != 1:
        raise TypeError(f"sealed table {table.name} needs a single-column primary key")
    return columns[0]


def read_values(connection, table: Table, ident, columns: Iterable[str]) -> dict | None:
    columns = list(columns)
    row = connection.execute(select(*[table.c[c] for c in columns]).where(_pk(table) == ident)).first()
    return None if row is None else dict(zip(columns, row, strict=True))


# ---- writing the entries ---------------------------------------------------------------


def _just_set(obj, column: str) -> bool:
    history = inspect(obj).attrs[column].history
    return bool(history.added) and history.added[0] is not None and not any(
        v is not None for v in history.deleted
    )


def _note_sealing(session: Session, flush_context) -> None:  # noqa: ARG001
    pending = session.info.setdefault(_PENDING, [])
    for obj in [*session.new, *session.dirty]:
        if not isinstance(obj, Sealed):
            continue
        final = final_columns(obj)
        if final and getattr(obj, final[0]) is not None and _just_set(obj, final[0]):
            pending.append((obj, FINAL))
        elif obj.sealed_at is not None and _just_set(obj, "sealed_at"):
            pending.append((obj, SEALED))


def _write_entries(session: Session, flush_context) -> None:  # noqa: ARG001
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    from portal.audit.models import record

    for obj, stage in pending:
        table = inspect(obj).mapper.local_table
        ident = inspect(obj).mapper.primary_key_from_instance(obj)[0]
        columns = stage_columns(table, stage)
        values = read_values(session.connection(), table, ident, columns)
        if values is None:
            continue
        record(ACTION, table.name, ident, unit_id=getattr(obj, "unit_id", None),
               after={"stage": stage, "columns": list(columns),
                      "digest": digest(table.name, str(ident), values)})


def _forget(session: Session, *args) -> None:  # noqa: ARG001
    session.info.pop(_PENDING, None)


for _name, _fn in (("after_flush", _note_sealing), ("after_flush_postexec", _write_entries),
                   ("after_rollback", _forget)):
    if not event.contains(Session, _name, _fn):
        event.listen(Session, _name, _fn)


def id_ranges(ids: Iterable[int]) -> list[list[int]]:
    """``[1, 2, 3, 7]`` → ``[[1, 3], [7, 7]]``: how a purge entry lists the ids it deleted."""
    out: list[list[int]] = []
    for value in sorted(set(ids)):
        if out and value == out[-1][1] + 1:
            out[-1][1] = value
        else:
            out.append([value, value])
    return out


# ---- verifying -------------------------------------------------------------------------


@dataclass(frozen=True)
class SealProblem:
    table: str
    ident: str
    kind: str  # edited | deleted | unsealed
    message: str

    def describe(self) -> str:
        return f"{self.table} row {self.ident} ({self.kind}): {self.message}"


def sealed_tables(metadata_list) -> list[Table]:
    tables: dict[str, Table] = {}
    for metadata in metadata_list:
        for table in metadata.tables.values():
            if "portal_sealed_columns" in table.info:
                tables.setdefault(table.name, table)
    return sorted(tables.values(), key=lambda t: t.name)


def _entries(connection, entries: Table, action: str, object_type: str | None = None) -> Iterator:
    query = select(entries.c.seq, entries.c.object_type, entries.c.object_id, entries.c.after).where(
        entries.c.action == action)
    if object_type is not None:
        query = query.where(entries.c.object_type == object_type)
    yield from connection.execute(query.order_by(entries.c.seq))


def _after(value) -> dict:
    if isinstance(value, str):
        value = json.loads(value)
    return value or {}


def verify_sealed(connection, tables: list[Table], entries: Table, first_seq: int,
                  first_at: datetime | None) -> list[SealProblem]:
    """Every sealed row against its latest seal entry; every seal entry against its row.

    ``first_seq``/``first_at``: the oldest entry the trail still holds (after a purge of the
    audit trail, rows sealed before ``first_at`` may have lost their seal entry: not reported).
    """
    problems: list[SealProblem] = []
    purged: dict[str, set[str]] = {}
    for row in _entries(connection, entries, PURGED):
        after = _after(row.after)
        for low, high in after.get("ids", []):
            purged.setdefault(after.get("table"), set()).update(str(i) for i in range(low, high + 1))
    for table in tables:
        latest: dict[str, dict] = {}
        for row in _entries(connection, entries, ACTION, table.name):
            latest[str(row.object_id)] = _after(row.after)
        pk = _pk(table)
        marker = table.info.get("portal_final_columns", (None,))[0]
        needed = {*stage_columns(table, SEALED), *((stage_columns(table, FINAL)) if marker else ())}
        names = sorted(needed)
        query = select(pk, *[table.c[n] for n in names]).where(table.c.sealed_at.is_not(None))
        for row in connection.execute(query.order_by(pk)):
            ident = str(row[0])
            values = dict(zip(names, row[1:], strict=True))
            seal = latest.pop(ident, None)
            if seal is None:
                if first_at is not None and values["sealed_at"] < first_at:
                    continue  # sealed before the oldest entry the trail still holds
                problems.append(SealProblem(table.name, ident, "unsealed",
                                            "sealed in the database but never sealed through the portal "
                                            "(no seal entry in the audit trail)"))
                continue
            columns = [c for c in seal.get("columns", []) if c in values]
            if digest(table.name, ident, {c: values[c] for c in columns}) != seal.get("digest"):
                problems.append(SealProblem(table.name, ident, "edited",
                                            f"its sealed content changed after it was sealed "
                                            f"({seal.get('stage')}; columns {', '.join(columns)})"))
            elif marker and values.get(marker) is not None and seal.get("stage") != FINAL:
                problems.append(SealProblem(table.name, ident, "edited",
                                            f"{marker} was set outside the portal (no final seal entry)"))
        gone = purged.get(table.name, set())
        for ident in latest:
            if ident not in gone:
                problems.append(SealProblem(table.name, ident, "deleted",
                                            "the sealed row is gone and no retention purge deleted it"))
    return problems


def backfill(connection, key: str, tables: list[Table], actor_name: str = "migration") -> int:
    """Chain a seal entry for every sealed row that has none (a database sealed before seal
    entries existed).  For a migration: ``backfill(op.get_bind(), key, tables)``.  Only the
    columns the table has at that revision are covered (the entry lists them)."""
    from portal.audit.chain import entry_hash
    from portal.audit.models import HEAD_ID, AuditEntry, AuditHead, lock_head
    from portal.db_types import utcnow

    entries, head = AuditEntry.__table__, AuditHead.__table__
    seq, prev = lock_head(connection)
    written = 0
    for table in tables:
        have = {str(r.object_id) for r in _entries(connection, entries, ACTION, table.name)}
        present = {c["name"] for c in inspect(connection).get_columns(table.name)}
        marker = table.info.get("portal_final_columns", (None,))[0]
        pk = _pk(table)
        for (ident,) in connection.execute(select(pk).where(table.c.sealed_at.is_not(None)).order_by(pk)):
            if str(ident) in have:
                continue
            final = marker in present and read_values(connection, table, ident, [marker])[marker] is not None
            stage = FINAL if final else SEALED
            columns = [c for c in stage_columns(table, stage) if c in present]
            values = read_values(connection, table, ident, columns)
            unit_id = read_values(connection, table, ident, ["unit_id"])["unit_id"] if "unit_id" in present else None
            seq += 1
            fields = {"seq": seq, "at": utcnow(), "actor_id": None, "actor_name": actor_name,
                      "unit_id": unit_id, "object_type": table.name, "object_id": str(ident),
                      "action": ACTION, "before": None, "remote_addr": None,
                      "after": {"stage": stage, "columns": list(columns),
                                "digest": digest(table.name, str(ident), values)}}
            fields["hash"] = entry_hash(key, prev, fields)
            connection.execute(entries.insert().values(**fields, prev_hash=prev))
            prev = fields["hash"]
            written += 1
    connection.execute(head.update().where(head.c.id == HEAD_ID).values(seq=seq, hash=prev))
    return written
