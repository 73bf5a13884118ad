"""Database triggers for the append-only audit trail and for sealed tables (SQLite, PostgreSQL).

``create_all`` adds them through a ``MetaData`` ``after_create`` event; an Alembic
migration adds them with ``create_audit_triggers(op)`` and
``portal.audit.sealed.create_seal_triggers(op, table, columns)``.

Note for SQLite migrations: Alembic's batch mode recreates a table and loses its
triggers; call the helpers again after a ``batch_alter_table`` on these tables.

The messages start with ``append-only:`` or ``sealed record:``; an engine event in
``portal.audit.sealed`` raises them as ``AppendOnlyError`` / ``SealedRecordError``.
On PostgreSQL they use SQLSTATE 23001 (restrict_violation), an integrity error.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from sqlalchemy import MetaData, event, text

from portal.audit.chain import GENESIS, HASHED_FIELDS, entry_hash

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

AUDIT_TABLES = ("audit_entries", "audit_head", "audit_checkpoints")


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a plain SQL name: {name!r}")
    return name


# ---- the audit trail --------------------------------------------------------------------

_SQLITE_AUDIT = [
    # entries: never updated; deleted only at or below the latest purge checkpoint
    """CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'append-only: audit entries cannot be changed'); END""",
    """CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
WHEN OLD.seq > COALESCE((SELECT MAX(seq) FROM audit_checkpoints), 0)
BEGIN SELECT RAISE(ABORT, 'append-only: audit entries cannot be deleted (only purged behind a checkpoint)'); END""",
    """CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'append-only: audit checkpoints cannot be changed'); END""",
    """CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'append-only: audit checkpoints cannot be deleted'); END""",
    # the head only moves forward and is never removed
    """CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head
WHEN NEW.seq < OLD.seq OR NEW.id <> OLD.id
BEGIN SELECT RAISE(ABORT, 'append-only: the audit chain head cannot move back'); END""",
    """CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'append-only: the audit chain head cannot be deleted'); END""",
]

_PG_AUDIT = [
    """CREATE OR REPLACE FUNCTION portal_audit_entries_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.seq <= COALESCE((SELECT MAX(seq) FROM audit_checkpoints), 0) THEN
      RETURN OLD;
    END IF;
    RAISE EXCEPTION 'append-only: audit entries cannot be deleted (only purged behind a checkpoint)'
      USING ERRCODE = '23001';
  END IF;
  RAISE EXCEPTION 'append-only: audit entries cannot be changed' USING ERRCODE = '23001';
END $$""",
    """CREATE OR REPLACE FUNCTION portal_append_only_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'append-only: % cannot be changed or deleted', TG_TABLE_NAME USING ERRCODE = '23001';
END $$""",
    """CREATE OR REPLACE FUNCTION portal_audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'append-only: the audit chain head cannot be deleted' USING ERRCODE = '23001';
  END IF;
  IF NEW.seq < OLD.seq OR NEW.id <> OLD.id THEN
    RAISE EXCEPTION 'append-only: the audit chain head cannot move back' USING ERRCODE = '23001';
  END IF;
  RETURN NEW;
END $$""",
    "DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries",
    """CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
FOR EACH ROW EXECUTE FUNCTION portal_audit_entries_guard()""",
    "DROP TRIGGER IF EXISTS audit_checkpoints_append_only ON audit_checkpoints",
    """CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION portal_append_only_guard()""",
    "DROP TRIGGER IF EXISTS audit_head_forward ON audit_head",
    """CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head
FOR EACH ROW EXECUTE FUNCTION portal_audit_head_guard()""",
]

HEAD_ROW = (
    "INSERT INTO audit_head (id, seq, hash) SELECT 1, 0, '" + "0" * 64 + "' "
    "WHERE NOT EXISTS (SELECT 1 FROM audit_head WHERE id = 1)"
)


def audit_statements(dialect: str) -> list[str]:
    """The triggers of the audit tables (the tables must exist)."""
    if dialect == "sqlite":
        return list(_SQLITE_AUDIT)
    if dialect == "postgresql":
        return list(_PG_AUDIT)
    raise NotImplementedError(f"audit triggers for {dialect}")


def create_audit_triggers(op) -> None:
    """In an Alembic migration, after creating the audit tables: triggers and the head row."""
    for statement in [HEAD_ROW, *audit_statements(op.get_bind().dialect.name)]:
        op.execute(statement)


# ---- sealed tables ----------------------------------------------------------------------

_PG_SEALED_FUNCTION = """CREATE OR REPLACE FUNCTION portal_sealed_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  old_row jsonb := to_jsonb(OLD);
  new_row jsonb;
  col text;
BEGIN
  IF (old_row ->> 'sealed_at') IS NULL THEN
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
  END IF;
  IF TG_OP = 'DELETE' THEN
    IF EXISTS (SELECT 1 FROM audit_purge_permits WHERE table_name = TG_TABLE_NAME) THEN
      RETURN OLD;
    END IF;
    RAISE EXCEPTION 'sealed record: % row % is sealed and cannot be deleted', TG_TABLE_NAME,
      old_row ->> 'id' USING ERRCODE = '23001';
  END IF;
  new_row := to_jsonb(NEW);
  FOREACH col IN ARRAY array_append(TG_ARGV::text[], 'sealed_at') LOOP
    IF (new_row -> col) IS DISTINCT FROM (old_row -> col) THEN
      RAISE EXCEPTION 'sealed record: % row % is sealed; % cannot be changed', TG_TABLE_NAME,
        old_row ->> 'id', col USING ERRCODE = '23001';
    END IF;
  END LOOP;
  RETURN NEW;
END $$"""


def seal_statements(dialect: str, table: str, columns: tuple[str, ...]) -> list[str]:
    """The triggers that guard sealed table ``table`` (``columns`` freeze with ``sealed_at``)."""
    table = _check_name(table)
    guarded = [_check_name(c) for c in columns if c != "sealed_at"]
    if dialect == "sqlite":
        changed = " OR ".join(f'NEW."{c}" IS NOT OLD."{c}"' for c in ["sealed_at", *guarded])
        return [
            f'DROP TRIGGER IF EXISTS "{table}_sealed_update"',
            f'''CREATE TRIGGER "{table}_sealed_update" BEFORE UPDATE ON "{table}"
FOR EACH ROW WHEN OLD.sealed_at IS NOT NULL AND ({changed})
BEGIN SELECT RAISE(ABORT, 'sealed record: {table} row is sealed; its sealed columns cannot be changed'); END''',
            f'DROP TRIGGER IF EXISTS "{table}_sealed_delete"',
            f'''CREATE TRIGGER "{table}_sealed_delete" BEFORE DELETE ON "{table}"
FOR EACH ROW WHEN OLD.sealed_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM audit_purge_permits WHERE table_name = '{table}')
BEGIN SELECT RAISE(ABORT, 'sealed record: {table} row is sealed and cannot be deleted'); END''',
        ]
    if dialect == "postgresql":
        args = ", ".join(f"'{c}'" for c in guarded)
        return [
            _PG_SEALED_FUNCTION,
            f'DROP TRIGGER IF EXISTS "{table}_sealed_guard" ON "{table}"',
            f'''CREATE TRIGGER "{table}_sealed_guard" BEFORE UPDATE OR DELETE ON "{table}"
FOR EACH ROW EXECUTE FUNCTION portal_sealed_guard({args})''',
        ]
    raise NotImplementedError(f"sealed-record triggers for {dialect}")


def drop_seal_statements(dialect: str, table: str) -> list[str]:
    table = _check_name(table)
    if dialect == "sqlite":
        return [f'DROP TRIGGER IF EXISTS "{table}_sealed_update"', f'DROP TRIGGER IF EXISTS "{table}_sealed_delete"']
    return [f'DROP TRIGGER IF EXISTS "{table}_sealed_guard" ON "{table}"']


# ---- create_all -------------------------------------------------------------------------


def _after_create(metadata: MetaData, connection, tables=(), **kw) -> None:  # noqa: ARG001
    dialect = connection.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return
    names = {t.name for t in tables}
    if set(AUDIT_TABLES) <= set(metadata.tables) and "audit_entries" in names:
        connection.execute(text(HEAD_ROW))
        for statement in audit_statements(dialect):
            connection.execute(text(statement))
    for table in tables:
        columns = table.info.get("portal_sealed_columns")
        if columns is not None:
            for statement in seal_statements(dialect, table.name, columns):
                connection.execute(text(statement))


def install(metadata: MetaData) -> None:
    """Add the triggers whenever ``metadata.create_all`` creates audit or sealed tables."""
    if not event.contains(metadata, "after_create", _after_create):
        event.listen(metadata, "after_create", _after_create)


# ---- migrating a database that already holds unchained entries --------------------------


def backfill_chain(connection, key: str, table: str = "audit_entries", head: str = "audit_head") -> int:
    """Chain the entries written before the chain existed (``seq`` NULL), in id order, and set
    the head.  For the migration that adds ``seq``/``prev_hash``/``hash``: run it after adding
    the columns as nullable and before making them NOT NULL and creating the triggers::

        backfill_chain(op.get_bind(), current_app.config["PORTAL_AUDIT_KEY"])

    Returns the number of entries chained.
    """
    table, head = _check_name(table), _check_name(head)
    row = connection.execute(text(f"SELECT seq, hash FROM {head} WHERE id = 1")).first()
    seq, prev = (int(row[0]), row[1]) if row is not None else (0, GENESIS)
    names = HASHED_FIELDS[1:]  # all but seq
    rows = connection.execute(
        text(f"SELECT id, {', '.join(names)} FROM {table} WHERE seq IS NULL ORDER BY id")
    ).all()
    for values in rows:
        fields = dict(zip(("id", *names), values, strict=True))
        fields["at"] = _utc(fields["at"])
        for name in ("before", "after"):
            if isinstance(fields[name], str):  # SQLite hands JSON back as text to a bare SELECT
                fields[name] = json.loads(fields[name])
        seq += 1
        fields["seq"] = seq
        digest = entry_hash(key, prev, fields)
        connection.execute(
            text(f"UPDATE {table} SET seq = :seq, prev_hash = :prev, hash = :hash WHERE id = :id"),
            {"seq": seq, "prev": prev, "hash": digest, "id": fields["id"]},
        )
        prev = digest
    if row is None:
        connection.execute(text(f"INSERT INTO {head} (id, seq, hash) VALUES (1, :seq, :hash)"),
                           {"seq": seq, "hash": prev})
    else:
        connection.execute(text(f"UPDATE {head} SET seq = :seq, hash = :hash WHERE id = 1"),
                           {"seq": seq, "hash": prev})
    return len(rows)


def _utc(value) -> datetime:
    if isinstance(value, str):  # SQLite: naive UTC text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
