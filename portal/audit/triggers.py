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
  frozen boolean := (old_row ->> 'sealed_at') IS NOT NULL;
BEGIN
  IF NOT frozen THEN
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
  -- arguments: the sealed columns, then '@marker' and the columns that freeze once marker is set
  FOREACH col IN ARRAY array_prepend('sealed_at', TG_ARGV::text[]) LOOP
    IF left(col, 1) = '@' THEN
      col := substr(col, 2);
      frozen := (old_row ->> col) IS NOT NULL;
    END IF;
    IF frozen AND (new_row -> col) IS DISTINCT FROM (old_row -> col) THEN
      RAISE EXCEPTION 'sealed record: % row % is sealed; % cannot be changed', TG_TABLE_NAME,
        old_row ->> 'id', col USING ERRCODE = '23001';
    END IF;
  END LOOP;
  RETURN NEW;
END $$"""


def _sqlite_changed(columns) -> str:
    return " OR ".join(f'NEW."{c}" IS NOT OLD."{c}"' for c in columns)


def seal_statements(dialect: str, table: str, columns: tuple[str, ...],
                    final: tuple[str, tuple[str, ...]] | None = None) -> list[str]:
    """The triggers that guard sealed table ``table``: ``columns`` freeze with ``sealed_at``;
    ``final = (marker, columns)`` freezes ``marker`` and ``columns`` once ``marker`` is set
    (a penalty notice's money and status once it is final)."""
    table = _check_name(table)
    guarded = [_check_name(c) for c in columns if c != "sealed_at"]
    marker, later = (None, []) if final is None else (
        _check_name(final[0]), [_check_name(c) for c in final[1] if c != final[0]])
    if dialect == "sqlite":
        when = f'(OLD.sealed_at IS NOT NULL AND ({_sqlite_changed(["sealed_at", *guarded])}))'
        if marker:
            when += f' OR (OLD."{marker}" IS NOT NULL AND ({_sqlite_changed([marker, *later])}))'
        return [
            f'DROP TRIGGER IF EXISTS "{table}_sealed_update"',
            f'''CREATE TRIGGER "{table}_sealed_update" BEFORE UPDATE ON "{table}"
FOR EACH ROW WHEN {when}
BEGIN SELECT RAISE(ABORT, 'sealed record: {table} row is sealed; its sealed columns cannot be changed'); END''',
            f'DROP TRIGGER IF EXISTS "{table}_sealed_delete"',
            f'''CREATE TRIGGER "{table}_sealed_delete" BEFORE DELETE ON "{table}"
FOR EACH ROW WHEN OLD.sealed_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM audit_purge_permits WHERE table_name = '{table}')
BEGIN SELECT RAISE(ABORT, 'sealed record: {table} row is sealed and cannot be deleted'); END''',
        ]
    if dialect == "postgresql":
        args = ", ".join(f"'{c}'" for c in [*guarded, *([f"@{marker}", *later] if marker else [])])
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
            final = table.info.get("portal_final_columns")
            for statement in seal_statements(dialect, table.name, columns, final):
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


# ---- PostgreSQL: purging as the application role (two-role deployment) -------------------
#
# The owner role runs the migrations and owns every table, trigger and function; the
# application role gets only the DML it needs (``grant_statements``): it cannot write a
# purge permit or a checkpoint, nor update or delete audit entries.  It purges through these
# SECURITY DEFINER functions, which run as the owner and refuse any row younger than the
# retention floor of its table (``audit_retention_floors``: the fewest years any setting
# allows, written by ``portal upgrade``).

_PG_PURGE_SEALED = """CREATE OR REPLACE FUNCTION portal_purge_sealed(p_table text, p_ids bigint[])
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET TimeZone = 'UTC' AS $$
DECLARE
  f record;
  young bigint;
  n integer;
BEGIN
  SELECT * INTO f FROM audit_retention_floors WHERE table_name = p_table;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'sealed record: % has no retention floor; nothing was purged', p_table
      USING ERRCODE = '23001';
  END IF;
  EXECUTE format('SELECT id FROM %I WHERE id = ANY($1) AND NOT (%I::timestamp < $2) LIMIT 1',
                 p_table, f.date_column)
    INTO young USING p_ids, (now() AT TIME ZONE 'UTC') - make_interval(years => f.years);
  IF young IS NOT NULL THEN
    RAISE EXCEPTION 'sealed record: % row % is within its % years of retention; nothing was purged',
      p_table, young, f.years USING ERRCODE = '23001';
  END IF;
  INSERT INTO audit_purge_permits (table_name) VALUES (p_table);
  EXECUTE format('DELETE FROM %I WHERE id = ANY($1)', p_table) USING p_ids;
  GET DIAGNOSTICS n = ROW_COUNT;
  DELETE FROM audit_purge_permits WHERE table_name = p_table;
  RETURN n;
END $$"""

_PG_PURGE_AUDIT = """CREATE OR REPLACE FUNCTION portal_purge_audit(p_upto bigint, p_hash text,
  p_purged_at timestamptz, p_by text, p_mac text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET TimeZone = 'UTC' AS $$
DECLARE
  y integer;
  n integer;
BEGIN
  SELECT years INTO y FROM audit_retention_floors WHERE table_name = 'audit_entries';
  IF y IS NULL THEN
    RAISE EXCEPTION 'append-only: the audit trail has no retention floor; nothing was purged'
      USING ERRCODE = '23001';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM audit_entries WHERE seq = p_upto AND hash = p_hash) THEN
    RAISE EXCEPTION 'append-only: no audit entry % with that hash; nothing was purged', p_upto
      USING ERRCODE = '23001';
  END IF;
  IF EXISTS (SELECT 1 FROM audit_entries WHERE seq <= p_upto
             AND at >= now() - make_interval(years => y)) THEN
    RAISE EXCEPTION 'append-only: audit entries up to % are within % years of retention; nothing was purged',
      p_upto, y USING ERRCODE = '23001';
  END IF;
  INSERT INTO audit_checkpoints (seq, hash, purged_at, by, mac) VALUES (p_upto, p_hash, p_purged_at, p_by, p_mac);
  DELETE FROM audit_entries WHERE seq <= p_upto;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$"""

PURGE_FUNCTIONS = ("portal_purge_sealed(text, bigint[])",
                   "portal_purge_audit(bigint, text, timestamptz, text, text)")


def extra_guard_statements(dialect: str) -> list[str]:
    """The purge functions (PostgreSQL only; SQLite purges with a permit inside its transaction)."""
    return [_PG_PURGE_SEALED, _PG_PURGE_AUDIT] if dialect == "postgresql" else []


def create_purge_functions(op) -> None:
    """In an Alembic migration: (re)create the SECURITY DEFINER purge functions."""
    for statement in extra_guard_statements(op.get_bind().dialect.name):
        op.execute(statement)


def grant_statements(role: str, schema: str = "public") -> list[str]:
    """What the application role may do (PostgreSQL), run by the owner after every upgrade."""
    role, schema = _check_name(role), _check_name(schema)
    functions = ", ".join(PURGE_FUNCTIONS)
    return [
        f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"',
        f'REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA "{schema}" FROM "{role}"',
        f'REVOKE UPDATE, DELETE ON audit_entries FROM "{role}"',
        f'REVOKE DELETE ON audit_head FROM "{role}"',
        f'REVOKE INSERT, UPDATE, DELETE ON audit_checkpoints, audit_purge_permits, '
        f'audit_retention_floors FROM "{role}"',
        f"REVOKE ALL ON FUNCTION {functions} FROM PUBLIC",
        f'GRANT EXECUTE ON FUNCTION {functions} TO "{role}"',
    ]


def _after_create_functions(metadata: MetaData, connection, tables=(), **kw) -> None:  # noqa: ARG001
    if connection.dialect.name == "postgresql" and "audit_retention_floors" in {t.name for t in tables}:
        for statement in extra_guard_statements("postgresql"):
            connection.execute(text(statement))


def install_functions(metadata: MetaData) -> None:
    if not event.contains(metadata, "after_create", _after_create_functions):
        event.listen(metadata, "after_create", _after_create_functions)
