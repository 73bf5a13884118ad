"""Walk the stored audit chain and check it (``flask --app wsgi portal audit-verify``).

``verify_all`` checks three things and names every problem it finds: the hash
chain (``verify_stored_chain``), every sealed record against its seal entry in
the chain (``portal.audit.seals``: edited or deleted rows by table and id) and
the database's guards (every trigger and guard function that should exist
exists, is enabled and has the text the portal installed).

The entries are read in keyset-paginated batches of plain rows (no ORM
objects), inside one read snapshot (PostgreSQL: REPEATABLE READ; SQLite: one
read transaction), so memory stays flat however long the chain is and entries
appended meanwhile do not disturb the walk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select, text

from portal.audit.chain import HASHED_FIELDS, Checkpoint, Result, verify_chain, verify_checkpoints
from portal.audit.models import HEAD_ID, AuditCheckpoint, AuditEntry, AuditHead, audit_key
from portal.audit.seals import SealProblem, sealed_tables, verify_sealed
from portal.extensions import db

BATCH = 2000


def _rows(connection, after_seq: int, batch: int) -> Iterator[dict]:
    table = AuditEntry.__table__
    columns = [table.c[name] for name in (*HASHED_FIELDS, "prev_hash", "hash", "id")]
    last: tuple[int, int] | None = None
    while True:
        query = select(*columns).order_by(table.c.seq, table.c.id).limit(batch)
        if last is None:
            query = query.where(table.c.seq > after_seq)
        else:
            query = query.where(or_(table.c.seq > last[0], and_(table.c.seq == last[0], table.c.id > last[1])))
        rows = connection.execute(query).mappings().all()
        if not rows:
            return
        for row in rows:
            yield dict(row)
        last = (rows[-1]["seq"], rows[-1]["id"])


@dataclass
class Report:
    """What ``verify_all`` found: the chain's result, damaged sealed rows, missing guards."""

    chain: Result
    seals: list[SealProblem] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.seals and not self.guards

    def lines(self) -> list[str]:
        out = [self.chain.describe()]
        out += [f"sealed record damaged: {p.describe()}" for p in self.seals]
        out += [f"database guard missing or altered: {g}" for g in self.guards]
        return out


def _read_snapshot(work):
    engine = db.engines[None] if None in db.engines else db.engine
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")  # one read snapshot for the whole walk
        else:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        try:
            return work(connection)
        finally:
            connection.rollback()


def verify_stored_chain(batch: int = BATCH, key: str | None = None) -> Result:
    """Verify the whole stored chain from the latest purge checkpoint to the head."""
    key = key or audit_key()
    return _read_snapshot(lambda connection: _verify(connection, batch, key))


def verify_all(batch: int = BATCH, key: str | None = None, extra_metadata=()) -> Report:
    """The chain, every sealed record and the database guards, in one read snapshot."""
    key = key or audit_key()

    def work(connection) -> Report:
        chain = _verify(connection, batch, key)
        tables = sealed_tables([db.metadata, *extra_metadata])
        entries = AuditEntry.__table__
        first = connection.execute(select(func.min(entries.c.seq), func.min(entries.c.at))).first()
        purged = connection.execute(select(func.count()).select_from(AuditCheckpoint.__table__)).scalar()
        seals = verify_sealed(connection, tables, entries, first[0] or 0, first[1] if purged else None)
        return Report(chain, seals, missing_guards(connection, tables))

    return _read_snapshot(work)


# ---- the database's guards ---------------------------------------------------------------

_SPACE = re.compile(r"\s+")
_TRIGGER_NAME = re.compile(r'CREATE TRIGGER "?([A-Za-z0-9_]+)"?', re.I)
_FUNCTION = re.compile(r"CREATE OR REPLACE FUNCTION ([A-Za-z0-9_]+)\(.*?\$\$(.*)\$\$", re.S)
_EXECUTE = re.compile(r"EXECUTE (?:FUNCTION|PROCEDURE) (.*)$", re.S)


def _norm(sql: str) -> str:
    return _SPACE.sub(" ", sql).strip()


def expected_statements(dialect: str, tables) -> list[str]:
    from portal.audit import triggers

    out = list(triggers.audit_statements(dialect))
    for table in tables:
        out += triggers.seal_statements(dialect, table.name, table.info["portal_sealed_columns"],
                                        table.info.get("portal_final_columns"))
    out += triggers.extra_guard_statements(dialect)
    return out


def missing_guards(connection, tables) -> list[str]:
    """Each trigger or guard function that is missing, disabled or not as the portal made it."""
    dialect = connection.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return []
    problems: list[str] = []
    seen_functions: set[str] = set()
    for statement in expected_statements(dialect, tables):
        trigger = _TRIGGER_NAME.search(statement)
        function = _FUNCTION.search(statement)
        if trigger and statement.lstrip().upper().startswith("CREATE TRIGGER"):
            problems += _check_trigger(connection, dialect, trigger.group(1), statement)
        elif function and function.group(1) not in seen_functions:
            seen_functions.add(function.group(1))
            source = connection.execute(text("SELECT prosrc FROM pg_proc WHERE proname = :name"),
                                        {"name": function.group(1)}).scalars().all()
            if _norm(function.group(2)) not in [_norm(s) for s in source]:
                problems.append(f"function {function.group(1)}() is missing or was replaced")
    return problems


def _check_trigger(connection, dialect: str, name: str, statement: str) -> list[str]:
    if dialect == "sqlite":
        sql = connection.execute(text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :n"),
                                 {"n": name}).scalar()
        if sql is None:
            return [f"trigger {name} is missing"]
        return [] if _norm(sql) == _norm(statement) else [f"trigger {name} was altered"]
    row = connection.execute(text(
        "SELECT tgenabled, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = :n AND NOT tgisinternal"
    ), {"n": name}).first()
    if row is None:
        return [f"trigger {name} is missing"]
    enabled, definition = row
    if enabled == "D":
        return [f"trigger {name} is disabled"]
    want, have = _EXECUTE.search(statement), _EXECUTE.search(definition)
    if want is None or have is None or _norm(want.group(1)) != _norm(have.group(1)):
        return [f"trigger {name} was altered"]
    return []


def _verify(connection, batch: int, key: str) -> Result:
    cp_table = AuditCheckpoint.__table__
    checkpoints = [
        Checkpoint(r.seq, r.hash, r.purged_at, r.by, r.mac)
        for r in connection.execute(select(cp_table).order_by(cp_table.c.seq))
    ]
    problem = verify_checkpoints(key, checkpoints)
    if problem is not None:
        return Result(0, 0, problem)
    start = checkpoints[-1] if checkpoints else None
    head_table = AuditHead.__table__
    head_row = connection.execute(
        select(head_table.c.seq, head_table.c.hash).where(head_table.c.id == HEAD_ID)
    ).first()
    head = (int(head_row.seq), head_row.hash) if head_row is not None else None
    entries = AuditEntry.__table__

    def find_hash(value: str) -> int | None:
        return connection.execute(select(entries.c.seq).where(entries.c.hash == value).limit(1)).scalar()

    return verify_chain(
        _rows(connection, start.seq if start else 0, batch), key, start=start, head=head,
        find_hash=find_hash,
    )
