"""Purging records whose retention has passed (CORE-09): ``flask --app wsgi portal purge``.

``purge(type, before)`` deletes the records of a registered type dated before
``before`` (a local date), and refuses — deleting nothing — while any of them
is still within its retention (``portal.audit.retention``; years from the
per-unit setting, counted in the unit's zone).

Sealed tables: their triggers refuse DELETE.  On SQLite the purge inserts a
permit row for the table inside its own transaction and removes it before
committing, so no other transaction ever sees it.  On PostgreSQL it calls the
SECURITY DEFINER function ``portal_purge_sealed`` (``portal.audit.triggers``),
which writes the permit as the owner role and refuses rows younger than the
table's retention floor: the application role itself can write no permit.  The
purge's audit entry lists the ids it deleted, so ``audit-verify`` tells a
purged sealed row from one deleted behind the portal's back.

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
from sqlalchemy import Date, delete, func, insert, select, text

from portal.audit.chain import checkpoint_mac
from portal.audit.models import (
    AuditCheckpoint,
    AuditEntry,
    AuditPurgePermit,
    AuditRetentionFloor,
    audit_key,
    record,
)
from portal.audit.seals import PURGED, id_ranges
from portal.audit.retention import RetentionPolicy, get_policy, kept_until, policies, purge_cutoff, register_policy
from portal.db_types import utcnow
from portal.extensions import db
from portal.settings import models as settings
from portal.units.models import Unit

AUDIT_POLICY = register_policy(
    RetentionPolicy("audit", AuditEntry, "at", "core.retention_years_audit", unit_column=None,
                    label="audit trail")
)


_BATCH = 5000


def sync_retention_floors(replace: bool = True) -> int:
    """Write each record type's retention floor (the setting's minimum years) for the purge
    functions; run by the owner role (``portal upgrade``).  ``replace=False`` only adds the
    floors that are missing.  Returns the number of floors written."""
    specs = current_app.extensions["portal"].settings
    table = AuditRetentionFloor.__table__
    existing = set(db.session.scalars(select(table.c.table_name)))
    count = 0
    for policy in policies():
        spec = specs.get(policy.setting_key)
        if spec is None:
            continue
        years = int(spec.minimum if spec.minimum is not None else spec.default)
        name = policy.model.__table__.name
        column = _column(policy, policy.date_column).name
        if name in existing and not replace:
            continue
        db.session.execute(delete(table).where(table.c.table_name == name))
        db.session.execute(insert(table).values(table_name=name, date_column=column, years=years))
        count += 1
    return count


def _is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _sync_floors_if_allowed() -> None:
    """Single-role installs (tests, a laptop): keep the floors current before a purge.  The
    application role of a two-role deployment may not write them: the owner's stay."""
    try:
        with db.session.begin_nested():
            sync_retention_floors(replace=False)
    except Exception:  # noqa: BLE001 - no privilege: the owner's floors apply
        pass


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
            ids = [i for where in conditions
                   for i in db.session.scalars(select(table.c.id).where(*where)).all()]
            _delete_sealed(table, ids)
        else:
            ids = None
            for where in conditions:
                db.session.execute(delete(table).where(*where))
        after = {"table": table.name, "before": before.isoformat(), "count": count, "by": by}
        if ids is not None:
            after["ids"] = id_ranges(ids)
        record(PURGED, policy.name, None, after=after)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return PurgeOutcome(policy.name, before, count, False)


def _delete_sealed(table, ids: list[int]) -> None:
    """Delete sealed rows: through ``portal_purge_sealed`` on PostgreSQL, behind a permit on SQLite."""
    if _is_postgres():
        _sync_floors_if_allowed()
        for start in range(0, len(ids), _BATCH):
            db.session.execute(text("SELECT portal_purge_sealed(:table, :ids)"),
                               {"table": table.name, "ids": ids[start:start + _BATCH]})
        return
    permits = AuditPurgePermit.__table__
    db.session.execute(insert(permits).values(table_name=table.name))
    for start in range(0, len(ids), _BATCH):
        db.session.execute(delete(table).where(table.c.id.in_(ids[start:start + _BATCH])))
    db.session.execute(delete(permits).where(permits.c.table_name == table.name))


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
        mac = checkpoint_mac(audit_key(), upto, last_hash, now, by)
        if _is_postgres():  # as the owner, refusing entries within the floor
            _sync_floors_if_allowed()
            db.session.execute(text("SELECT portal_purge_audit(:upto, :hash, :at, :by, :mac)"),
                               {"upto": upto, "hash": last_hash, "at": now, "by": by, "mac": mac})
        else:
            db.session.add(AuditCheckpoint(seq=upto, hash=last_hash, purged_at=now, by=by, mac=mac))
            db.session.flush()
            db.session.execute(delete(entries).where(entries.c.seq <= upto))
        record("audit.purged", "audit_chain", upto,
               after={"before": before.isoformat(), "count": count, "checkpoint_seq": upto, "by": by})
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return PurgeOutcome(policy.name, before, count, False, checkpoint_seq=upto)
