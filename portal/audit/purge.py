"""Purging records whose retention has passed (CORE-09): ``flask --app wsgi portal purge``.

``purge(type, before)`` deletes the records of a registered type dated before
``before`` (a local date), and refuses — deleting nothing — while any of them
is still within its retention (``portal.audit.retention``; years from the
per-unit setting, counted in the unit's zone).

Sealed tables: their triggers refuse DELETE; the purge inserts a permit row
for the table inside its own transaction and removes it before committing, so
no other transaction ever sees it.

The audit trail itself (type ``audit``): only a prefix of the chain can go.
The purge writes a checkpoint (the last purged seq and its hash, MAC'ed with
the audit key) and then deletes the entries up to it; the triggers allow
exactly that, and ``audit-verify`` starts from the latest checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Date, delete, func, insert, select

from portal.audit.chain import checkpoint_mac
from portal.audit.models import AuditCheckpoint, AuditEntry, AuditPurgePermit, audit_key, record
from portal.audit.retention import RetentionPolicy, get_policy, kept_until, policies, purge_cutoff, register_policy
from portal.db_types import utcnow
from portal.extensions import db
from portal.settings import models as settings
from portal.units.models import Unit

AUDIT_POLICY = register_policy(
    RetentionPolicy("audit", AuditEntry, "at", "core.retention_years_audit", unit_column=None,
                    label="audit trail")
)


class PurgeRefused(Exception):
    """The purge would delete records still within their retention; nothing was deleted."""


@dataclass(frozen=True)
class PurgeOutcome:
    policy: str
    before: date
    count: int
    dry_run: bool
    checkpoint_seq: int | None = None

    def describe(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        text = f"{self.policy}: {verb} {self.count} record(s) dated before {self.before.isoformat()}"
        if self.checkpoint_seq is not None:
            text += f"; audit checkpoint at seq {self.checkpoint_seq}"
        return text


@dataclass(frozen=True)
class _Group:
    """Records judged alike: one unit (or the unit-less rest), its zone and its years."""

    unit: Unit | None
    zone: ZoneInfo
    years: int
    cutoff: date


def _column(policy: RetentionPolicy, name: str):
    return policy.model.__table__.c[getattr(policy.model, name).property.columns[0].name]


def _bound(column, day: date, zone: ZoneInfo):
    """What ``column < bound`` means for local day ``day``: the date itself, or its start as UTC."""
    if isinstance(column.type, Date):
        return day
    return datetime.combine(day, time(), tzinfo=zone).astimezone(timezone.utc)


def _years(unit: Unit, key: str, now: datetime) -> int:
    return int(settings.value(unit, key, now))


def _groups(policy: RetentionPolicy, now: datetime) -> list[_Group]:
    units = db.session.scalars(select(Unit).order_by(Unit.id)).all()
    spec = current_app.extensions["portal"].settings[policy.setting_key]
    default_zone = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    strictest = max([_years(u, policy.setting_key, now) for u in units] + [int(spec.default)])
    rest = _Group(None, default_zone, strictest, purge_cutoff(now.astimezone(default_zone).date(), strictest))
    if policy.unit_column is None:
        return [rest]
    out = []
    for unit in units:
        zone = settings.unit_zone(unit)
        years = _years(unit, policy.setting_key, now)
        out.append(_Group(unit, zone, years, purge_cutoff(now.astimezone(zone).date(), years)))
    return [*out, rest]  # ``rest``: rows without a unit, judged by the strictest unit


def _where_group(policy: RetentionPolicy, group: _Group):
    if policy.unit_column is None:
        return []
    column = _column(policy, policy.unit_column)
    return [column == group.unit.id] if group.unit is not None else [column.is_(None)]


def _local_day(value, zone: ZoneInfo) -> date:
    return value if not isinstance(value, datetime) else value.astimezone(zone).date()


def _check_retention(policy: RetentionPolicy, before: date, groups: list[_Group]) -> None:
    dated = _column(policy, policy.date_column)
    problems = []
    for group in groups:
        if before <= group.cutoff:
            continue
        youngest_kept = db.session.scalar(
            select(func.min(dated)).where(
                *_where_group(policy, group),
                dated >= _bound(dated, group.cutoff, group.zone),
                dated < _bound(dated, before, group.zone),
            )
        )
        if youngest_kept is None:
            continue
        day = _local_day(youngest_kept, group.zone)
        if group.unit is not None:
            where = f"unit {group.unit.code}"
        else:
            where = "records without a unit" if policy.unit_column else "the records"
        problems.append(
            f"{where}: a record of {day.isoformat()} is kept {group.years} years from its month-end "
            f"archive, until {kept_until(day, group.years).isoformat()} 24:00; the latest --before "
            f"allowed today is {group.cutoff.isoformat()}"
        )
    if problems:
        raise PurgeRefused(
            f"refused: {policy.name} records dated before {before.isoformat()} are still within "
            "their retention; nothing was deleted.\n  " + "\n  ".join(problems)
        )


def purge(name: str, before: date, *, dry_run: bool = False, by: str | None = None,
          now: datetime | None = None) -> PurgeOutcome:
    """Delete the ``name`` records dated before local day ``before`` (the caller need not commit)."""
    policy = get_policy(name)
    if policy is None:
        known = ", ".join(p.name for p in policies()) or "(none)"
        raise PurgeRefused(f"unknown record type {name!r}; known types: {known}")
    now = now or utcnow()
    groups = _groups(policy, now)
    _check_retention(policy, before, groups)
    if policy is AUDIT_POLICY or policy.model is AuditEntry:
        return _purge_audit(policy, before, groups[0], dry_run, by, now)
    dated = _column(policy, policy.date_column)
    table = policy.model.__table__
    conditions = [[*_where_group(policy, g), dated < _bound(dated, before, g.zone)] for g in groups]
    count = sum(db.session.scalar(select(func.count()).select_from(table).where(*c)) or 0 for c in conditions)
    if dry_run or count == 0:
        db.session.rollback()
        return PurgeOutcome(policy.name, before, count, dry_run)
    sealed = "portal_sealed_columns" in table.info
    try:
        if sealed:
            db.session.execute(insert(AuditPurgePermit.__table__).values(table_name=table.name))
        for where in conditions:
            db.session.execute(delete(table).where(*where))
        if sealed:
            db.session.execute(
                delete(AuditPurgePermit.__table__).where(AuditPurgePermit.__table__.c.table_name == table.name)
            )
        record("retention.purged", policy.name, None,
               after={"table": table.name, "before": before.isoformat(), "count": count, "by": by})
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return PurgeOutcome(policy.name, before, count, False)


def _purge_audit(policy: RetentionPolicy, before: date, group: _Group, dry_run: bool, by: str | None,
                 now: datetime) -> PurgeOutcome:
    entries = AuditEntry.__table__
    last_cp = db.session.scalar(select(func.max(AuditCheckpoint.seq))) or 0
    bound = _bound(entries.c.at, before, group.zone)
    # only a prefix of the chain can go: stop at the first entry that must stay
    first_kept = db.session.scalar(select(func.min(entries.c.seq)).where(entries.c.seq > last_cp,
                                                                        entries.c.at >= bound))
    upto = (first_kept - 1) if first_kept is not None else (
        db.session.scalar(select(func.max(entries.c.seq))) or last_cp
    )
    count = db.session.scalar(
        select(func.count()).select_from(entries).where(entries.c.seq > last_cp, entries.c.seq <= upto)
    ) or 0
    if dry_run or count == 0 or upto <= last_cp:
        db.session.rollback()
        return PurgeOutcome(policy.name, before, count if upto > last_cp else 0, dry_run)
    try:
        last_hash = db.session.scalar(select(entries.c.hash).where(entries.c.seq == upto))
        key = audit_key()
        db.session.add(AuditCheckpoint(seq=upto, hash=last_hash, purged_at=now, by=by,
                                       mac=checkpoint_mac(key, upto, last_hash, now, by)))
        db.session.flush()
        db.session.execute(delete(entries).where(entries.c.seq <= upto))
        record("audit.purged", "audit_chain", upto,
               after={"before": before.isoformat(), "count": count, "checkpoint_seq": upto, "by": by})
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return PurgeOutcome(policy.name, before, count, False, checkpoint_seq=upto)
