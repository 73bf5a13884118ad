from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db
from portal.units.models import Unit


class SettingValue(db.Model):
    """One approved value of a setting for a unit, in force from ``effective_from`` (local date)."""

    __tablename__ = "setting_values"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100), index=True)
    value: Mapped[str] = mapped_column(Text)
    effective_from: Mapped[date] = mapped_column(Date)
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(String(255))


def unit_zone(unit: Unit) -> ZoneInfo:
    return ZoneInfo(unit.effective_timezone(current_app.config["PORTAL_TIMEZONE"]))


def local_date(unit: Unit, at: datetime) -> date:
    return at.astimezone(unit_zone(unit)).date()


def default_effective_date(unit: Unit, approved_at: datetime | None = None) -> date:
    """The day after approval, in the unit's zone (文件批准的次日起实施)."""
    return local_date(unit, approved_at or utcnow()) + timedelta(days=1)


def value(unit: Unit, key: str, at: datetime | None = None) -> Any:
    """The value of ``key`` in force for ``unit`` at instant ``at`` (default: now)."""
    spec = current_app.extensions["portal"].settings[key]
    row = in_force(unit, key, at)
    return spec.default if row is None else spec.parse(row.value)


def in_force(unit: Unit, key: str, at: datetime | None = None) -> SettingValue | None:
    """The row in force for ``unit`` at ``at`` (nearest unit up the tree), or None = default."""
    on = local_date(unit, at or utcnow())
    lineage = unit.lineage()
    rows = db.session.scalars(
        select(SettingValue)
        .where(
            SettingValue.key == key,
            SettingValue.unit_id.in_([u.id for u in lineage]),
            SettingValue.effective_from <= on,
        )
        .order_by(SettingValue.effective_from.desc(), SettingValue.id.desc())
    ).all()
    for node in lineage:
        for row in rows:
            if row.unit_id == node.id:
                return row
    return None


def history(unit: Unit, key: str) -> list[SettingValue]:
    """This unit's own values of ``key``, newest effective date first (future ones included)."""
    return db.session.scalars(
        select(SettingValue)
        .where(SettingValue.unit_id == unit.id, SettingValue.key == key)
        .order_by(SettingValue.effective_from.desc(), SettingValue.id.desc())
    ).all()


def change(unit: Unit, key: str, raw: str, effective_from: date, approver, note: str = "") -> SettingValue:
    """Record an approved new value; the caller commits.  ``raw`` must already be valid."""
    from portal.audit import record

    from portal.transitions import StaleState, lock

    spec = current_app.extensions["portal"].settings[key]
    typed = spec.parse(raw)
    lock(Unit, unit.id)  # two approvals for one unit run one after the other
    latest = db.session.scalars(
        select(SettingValue).where(SettingValue.unit_id == unit.id, SettingValue.key == key,
                                   SettingValue.effective_from == effective_from)
        .order_by(SettingValue.id.desc()).limit(1)).first()
    if latest is not None and latest.value == spec.dump(typed):  # a double tap, a second approver
        raise StaleState(_l("This value is already approved from %(date)s.", date=effective_from.isoformat()))
    before = in_force(unit, key)
    row = SettingValue(
        unit_id=unit.id, key=key, value=spec.dump(typed), effective_from=effective_from,
        approved_by_id=getattr(approver, "id", None), note=note or None,
    )
    db.session.add(row)
    db.session.flush()
    record("setting.changed", "setting", f"{unit.code}:{key}", unit_id=unit.id,
           before={"value": before.value if before else spec.dump(spec.default)},
           after={"value": row.value, "effective_from": effective_from.isoformat(), "note": note})
    return row
