"""Retention (CORE-09): how long each record type is kept, and the date arithmetic.

Reading of the regulation (REGULATIONS.md, "Retention start"): the years run
from the month-end archive (每月底,由部门统一保管, S0:136).  A duty record of
2026-03-05 is archived at the end of March 2026 and kept 3 years from then: it
may not be deleted before 2029-03-31 24:00 local time, i.e. it may be deleted
from 2029-04-01 00:00 local on.

All dates here are local dates in the unit's zone; this module has no Flask
and no database.  ``portal.audit.purge`` applies it to the tables.

A record type is declared with ``register_policy(RetentionPolicy(...))``:
the model, its date column (a ``Date`` or a UTC instant), the per-unit setting
that holds the number of years, and the column naming the unit (None when the
table is not per unit, like the audit trail itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def archive_date(record_date: date) -> date:
    """The month-end archive a record goes into: the last day of its month."""
    year, month = _add_months(record_date.year, record_date.month, 1)
    return date.fromordinal(date(year, month, 1).toordinal() - 1)


def deletable_from(record_date: date, years: int) -> date:
    """The first local day on which a record of ``record_date`` may be deleted.

    ``years`` after the month-end archive, to 24:00 of that month's last day:
    2026-03-05 with 3 years → 2029-04-01 (kept until 2029-03-31 24:00).
    """
    if years < 0:
        raise ValueError("retention years cannot be negative")
    year, month = _add_months(record_date.year, record_date.month, 12 * years + 1)
    return date(year, month, 1)


def kept_until(record_date: date, years: int) -> date:
    """The last local day the record must still be kept (until 24:00 of that day)."""
    return date.fromordinal(deletable_from(record_date, years).toordinal() - 1)


def purge_cutoff(today: date, years: int) -> date:
    """The latest ``--before`` date a purge may use on local day ``today``.

    Every record dated before the cutoff has passed its retention; a record
    dated on or after it has not: on 2029-03-31 (3 years) the cutoff is
    2026-03-01, on 2029-04-01 it is 2026-04-01.
    """
    if years < 0:
        raise ValueError("retention years cannot be negative")
    year, month = _add_months(today.year, today.month, -12 * years)
    return date(year, month, 1)


def may_delete(record_date: date, years: int, today: date) -> bool:
    """Whether a record of ``record_date`` may be deleted on local day ``today``."""
    return today >= deletable_from(record_date, years)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long records of one type are kept.

    ``name``: what ``portal purge --type`` takes (``duty``, ``audit``);
    ``model``: the mapped class; ``date_column``: the attribute that dates a record
    (``Date`` or a UTC instant, judged as a local date in the unit's zone);
    ``setting_key``: the per-unit ``int`` setting holding the years
    (``core.retention_years_duty``); ``unit_column``: the attribute naming the unit,
    or None for a table that is not per unit (the strictest unit's value applies).
    """

    name: str
    model: Any
    date_column: str
    setting_key: str
    unit_column: str | None = "unit_id"
    label: str = ""


_POLICIES: dict[str, RetentionPolicy] = {}


def register_policy(policy: RetentionPolicy) -> RetentionPolicy:
    """Declare (or re-declare, e.g. after a reload) the retention of a record type."""
    existing = _POLICIES.get(policy.name)
    if existing is not None and existing.model is not policy.model and (
        getattr(existing.model, "__tablename__", None) != getattr(policy.model, "__tablename__", None)
    ):
        raise ValueError(f"retention policy {policy.name!r} is already declared for another table")
    _POLICIES[policy.name] = policy
    return policy


def unregister_policy(name: str) -> None:
    _POLICIES.pop(name, None)


def get_policy(name: str) -> RetentionPolicy | None:
    return _POLICIES.get(name)


def policies() -> list[RetentionPolicy]:
    return sorted(_POLICIES.values(), key=lambda p: p.name)
