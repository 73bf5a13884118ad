"""Sealed records (CORE-07): rows that may not change once a state is reached.

A model mixes in ``Sealed`` and names the columns that freeze::

    class Handover(Sealed, db.Model):
        __tablename__ = "duty_handover"
        __sealed_columns__ = ("notes", "signed_by_id", "shift_date")
        ...

    seal(handover)          # sets sealed_at = now; the caller commits

Once ``sealed_at`` is set (and flushed), DELETE of the row and UPDATE of any
sealed column or of ``sealed_at`` are refused twice over:

* by the ORM: ``before_update`` / ``before_delete`` mapper events compare the
  change with the row as it stands in the database and raise ``SealedRecordError``;
* by the database: triggers on SQLite and PostgreSQL, created by ``create_all``
  (a DDL event, ``portal.audit.triggers``) and, in migrations, by
  ``create_seal_triggers(op, table_name, columns)``.  Raw SQL is refused too;
  the driver's error is raised as ``SealedRecordError`` (an engine ``handle_error``
  event), so callers catch one exception whatever the path.

A second stage may freeze more columns later: ``__final_marker__`` names a
column (``final_at``) and ``__final_columns__`` the columns that freeze, with
the marker, once it is set — a penalty notice's status and money once final.

Other columns (a status, a link to the correcting row) stay updatable.
Corrections are new rows that reference the original.  Only a retention purge
(``portal purge``) may delete sealed rows, behind a permit that lives inside its
own transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import event, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from portal.db_types import UTCDateTime, utcnow


class SealedRecordError(Exception):
    """A sealed (or append-only) record was about to be changed or deleted."""

    status_code = 409


class AppendOnlyError(SealedRecordError):
    """The audit trail is append-only."""


class Sealed:
    """Mixin: a nullable ``sealed_at`` instant; ``__sealed_columns__`` freeze once it is set."""

    __sealed_columns__: tuple[str, ...] = ()
    __final_marker__: str | None = None
    __final_columns__: tuple[str, ...] = ()

    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def is_sealed(self) -> bool:
        return self.sealed_at is not None


def seal(obj: Sealed, at: datetime | None = None) -> Sealed:
    """Seal ``obj`` now (or at ``at``).  Sealing a sealed record changes nothing."""
    if not isinstance(obj, Sealed):
        raise TypeError(f"{type(obj).__name__} is not a Sealed model")
    if obj.sealed_at is None:
        obj.sealed_at = at or utcnow()
    return obj


def sealed_columns(cls_or_obj) -> tuple[str, ...]:
    """The columns a sealed row keeps: ``__sealed_columns__`` plus ``sealed_at``."""
    return (*tuple(cls_or_obj.__sealed_columns__), "sealed_at")


def final_columns(cls_or_obj) -> tuple[str, ...]:
    """The columns that freeze once the final marker is set (the marker first), or ()."""
    marker = cls_or_obj.__final_marker__
    if marker is None:
        return ()
    return (marker, *[c for c in cls_or_obj.__final_columns__ if c != marker])


# ---- the ORM guard ---------------------------------------------------------------------


def _pk_clause(mapper, target):
    table = mapper.local_table
    identity = mapper.primary_key_from_instance(target)
    clauses = [col == value for col, value in zip(mapper.primary_key, identity, strict=True)]
    return table, clauses


def _guard_update(mapper, connection, target) -> None:
    state = inspect(target)
    stages = [("sealed_at", sealed_columns(target))]
    if final_columns(target):
        stages.append((final_columns(target)[0], final_columns(target)))
    for marker, columns in stages:
        changed = [name for name in columns if state.attrs[name].history.has_changes()]
        if not changed:
            continue
        table, where = _pk_clause(mapper, target)
        names = [marker, *[c for c in changed if c != marker]]
        row = connection.execute(select(*[table.c[n] for n in names]).where(*where)).first()
        if row is None or row[0] is None:
            continue
        current = dict(zip(names, row, strict=True))
        for name in changed:
            if getattr(target, name) != current[name]:
                raise SealedRecordError(
                    f"sealed record: {table.name} row {_ident(mapper, target)} is sealed; "
                    f"{name} cannot be changed (record a correction that references it)"
                )


def _guard_delete(mapper, connection, target) -> None:
    table, where = _pk_clause(mapper, target)
    sealed_at = connection.execute(select(table.c.sealed_at).where(*where)).scalar()
    if sealed_at is not None:
        raise SealedRecordError(
            f"sealed record: {table.name} row {_ident(mapper, target)} is sealed and cannot be "
            "deleted (record a correction that references it)"
        )


def _ident(mapper, target) -> str:
    return ",".join(str(v) for v in mapper.primary_key_from_instance(target))


def _remember_sealed_table(mapper, cls) -> None:
    """Mark the table so ``create_all`` adds the triggers (``portal.audit.triggers``)."""
    columns = tuple(cls.__sealed_columns__)
    missing = [c for c in columns if c not in mapper.local_table.c]
    if missing:
        raise TypeError(f"{cls.__name__}.__sealed_columns__ names unknown columns: {', '.join(missing)}")
    mapper.local_table.info["portal_sealed_columns"] = columns
    final = final_columns(cls)
    missing = [c for c in final if c not in mapper.local_table.c]
    if missing:
        raise TypeError(f"{cls.__name__}.__final_columns__ names unknown columns: {', '.join(missing)}")
    if final:
        mapper.local_table.info["portal_final_columns"] = (final[0], final[1:])


event.listen(Sealed, "before_update", _guard_update, propagate=True)
event.listen(Sealed, "before_delete", _guard_delete, propagate=True)
event.listen(Sealed, "instrument_class", _remember_sealed_table, propagate=True)


# ---- the database's refusal, as one exception ------------------------------------------


def _translate_trigger_error(context) -> None:
    """A trigger refused the statement: raise ``SealedRecordError`` with the trigger's text."""
    message = str(getattr(context, "original_exception", "") or "")
    for marker, error in (("append-only:", AppendOnlyError), ("sealed record:", SealedRecordError)):
        if marker in message:
            text = message[message.index(marker):].splitlines()[0].strip()
            raise error(text) from context.original_exception


if not event.contains(Engine, "handle_error", _translate_trigger_error):
    event.listen(Engine, "handle_error", _translate_trigger_error)


# ---- migrations -------------------------------------------------------------------------


def create_seal_triggers(op, table_name: str, columns, final=None) -> None:
    """In an Alembic migration: add the triggers that guard a sealed table
    (``final = (marker, columns)`` for a second stage, as ``__final_marker__``)."""
    from portal.audit.triggers import seal_statements

    final = None if final is None else (final[0], tuple(final[1]))
    for statement in seal_statements(op.get_bind().dialect.name, table_name, tuple(columns), final):
        op.execute(statement)


def drop_seal_triggers(op, table_name: str) -> None:
    """In an Alembic migration: remove them (e.g. in ``downgrade``)."""
    from portal.audit.triggers import drop_seal_statements

    for statement in drop_seal_statements(op.get_bind().dialect.name, table_name):
        op.execute(statement)
