"""Race-safe state changes: a step changes a row only while it is in the state the step expects.

Two people (or one double tap) may run the same step at the same moment.  A step that
reads the state, checks it and writes later lets both through.  The rule, for the core
and every plugin:

* **One row changes** — ``transition(Model, id, expected={...}, values={...})`` makes the
  change with one conditional ``UPDATE … WHERE id = :id AND status = :expected``.  When
  the row is no longer in the expected state (someone else was first) nothing is written
  and ``StaleState`` is raised with the message a late second tap would get.
* **Several rows change together** (an inquiry and its requests, a notice and its appeal)
  — ``lock(Model, id)`` at the start of the step takes the row for the rest of the
  transaction (PostgreSQL: ``SELECT … FOR UPDATE``; SQLite: the database write lock is
  taken first, then the row is read) and refreshes what the session holds, so the step's
  own checks see the latest committed state.  A concurrent step waits, then sees the
  change and is refused by the same checks.
* **"At most one" is also a database constraint** (a unique or partial unique index), so
  a path that forgets the lock still cannot store a second row.

``StaleState`` (and a constraint that refuses a second row, ``IntegrityError``) reaching
the error handlers answers 409 with the message, never 500 (``portal.errors``).
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect, select, update

from portal.extensions import db

DEFAULT_MESSAGE = _l("Someone else changed this at the same moment. Reload the page to see what it is now.")


class StaleState(Exception):
    """The row is no longer in the state the step expected: someone else was first.

    ``message`` is for the person (shown next to ``field`` when the form has one).
    """

    def __init__(self, message: Any = None, field: str | None = None):
        self.message = message if message is not None else DEFAULT_MESSAGE
        self.field = field
        super().__init__(str(self.message))

    def __str__(self) -> str:
        return str(self.message)


def take_write_lock() -> None:
    """On SQLite, take the database's write lock now, before the step reads what it checks.

    SQLite has one writer at a time and no ``FOR UPDATE``: a no-op ``UPDATE`` of the audit
    head (the row every audited change writes anyway, see ``portal.audit.models.lock_head``)
    makes a concurrent step wait here (busy timeout) instead of reading a state that is
    about to change.  On PostgreSQL it does nothing (row locks do the job).
    """
    if db.session.get_bind().dialect.name != "sqlite":
        return
    from portal.audit.models import HEAD_ID, AuditHead

    table = AuditHead.__table__
    db.session.execute(update(table).where(table.c.id == HEAD_ID).values(seq=table.c.seq))


def lock(model, ident: Any, *options):
    """The row of ``model`` with primary key ``ident``, locked for the rest of the transaction
    and refreshed in the session (with ``options``' eager loads, e.g. its children), or None.

    Call it at the start of a step that checks and changes several rows; then check.
    """
    take_write_lock()
    key = inspect(model).primary_key[0]
    query = (select(model).where(key == ident).options(*options)
             .with_for_update(of=model).execution_options(populate_existing=True))
    return db.session.scalars(query).first()


def transition(model, ident: Any, *, expected: dict[str, Any], values: dict[str, Any],
               message: Any = None, field: str | None = None) -> None:
    """Change the row of ``model`` with primary key ``ident`` to ``values``, only while its
    columns hold ``expected`` (``None`` means IS NULL); else raise ``StaleState(message)``.

    The instance the session holds (if any) is refreshed with the new values.
    """
    table = inspect(model).local_table
    key = inspect(model).primary_key[0]
    conditions = [key == ident]
    for name, value in expected.items():
        column = table.c[name]
        conditions.append(column.is_(None) if value is None else column == value)
    db.session.flush()  # what the step already changed goes first, in order
    result = db.session.execute(update(table).where(*conditions).values(**values)
                                .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise StaleState(message, field)
    instance = db.session.identity_map.get(db.session.identity_key(model, ident))
    if instance is not None:
        db.session.expire(instance, list(values))
