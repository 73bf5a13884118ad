"""Walk the stored audit chain and check it (``flask --app wsgi portal audit-verify``).

The entries are read in keyset-paginated batches of plain rows (no ORM
objects), inside one read snapshot (PostgreSQL: REPEATABLE READ; SQLite: one
read transaction), so memory stays flat however long the chain is and entries
appended meanwhile do not disturb the walk.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import and_, or_, select

from portal.audit.chain import HASHED_FIELDS, Checkpoint, Result, verify_chain, verify_checkpoints
from portal.audit.models import HEAD_ID, AuditCheckpoint, AuditEntry, AuditHead, audit_key
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


def verify_stored_chain(batch: int = BATCH, key: str | None = None) -> Result:
    """Verify the whole stored chain from the latest purge checkpoint to the head."""
    key = key or audit_key()
    engine = db.engines[None] if None in db.engines else db.engine
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")  # one read snapshot for the whole walk
        else:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        try:
            return _verify(connection, batch, key)
        finally:
            connection.rollback()


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
