"""The business-unit tree (CORE-02)."""

from __future__ import annotations

from datetime import datetime

from flask_babel import get_locale
from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db

UNIT_KINDS = ("company", "region", "center", "station", "desk", "store", "club")


class Unit(db.Model):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Unit | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Unit]] = relationship(back_populates="parent", order_by="Unit.code")

    @property
    def name(self) -> str:
        """The name in the current UI language."""
        try:
            lang = get_locale().language
        except Exception:  # outside a request
            lang = "zh"
        return self.name_en if lang == "en" and self.name_en else self.name_zh

    def ancestors(self) -> list[Unit]:
        """Parent, grandparent, … up to the root (not including self)."""
        out, node = [], self.parent
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    def lineage(self) -> list[Unit]:
        """Self first, then the ancestors."""
        return [self, *self.ancestors()]

    def effective_timezone(self, default: str) -> str:
        for unit in self.lineage():
            if unit.timezone:
                return unit.timezone
        return default

    def __repr__(self) -> str:
        return f"<Unit {self.code}>"


class UnitPlugin(db.Model):
    """A plugin switched on or off for a unit; sub-units inherit the nearest setting."""

    __tablename__ = "unit_plugins"
    __table_args__ = (UniqueConstraint("unit_id", "plugin"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    plugin: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean)


def descendant_ids(root_ids: set[int]) -> set[int]:
    """Ids of the given units and all their descendants (one query per tree level)."""
    found = set(root_ids)
    frontier = set(root_ids)
    while frontier:
        frontier = set(
            db.session.scalars(select(Unit.id).where(Unit.parent_id.in_(frontier)))
        ) - found
        found |= frontier
    return found


def would_create_cycle(unit: Unit, new_parent: Unit | None) -> bool:
    return new_parent is not None and (
        new_parent.id == unit.id or unit.id in {u.id for u in new_parent.ancestors()}
    )


def plugin_enabled(unit: Unit, plugin: str) -> bool:
    """Whether ``plugin`` is on for ``unit``: the nearest explicit setting up the tree wins."""
    lineage = unit.lineage()
    rows = {
        row.unit_id: row.enabled
        for row in db.session.scalars(
            select(UnitPlugin).where(
                UnitPlugin.plugin == plugin, UnitPlugin.unit_id.in_([u.id for u in lineage])
            )
        )
    }
    for node in lineage:
        if node.id in rows:
            return rows[node.id]
    return False


def set_plugin(unit: Unit, plugin: str, enabled: bool | None) -> None:
    """Switch ``plugin`` on/off for ``unit``; ``None`` removes the unit's own setting (inherit)."""
    row = db.session.scalar(
        select(UnitPlugin).where(UnitPlugin.unit_id == unit.id, UnitPlugin.plugin == plugin)
    )
    if enabled is None:
        if row is not None:
            db.session.delete(row)
        return
    if row is None:
        db.session.add(UnitPlugin(unit_id=unit.id, plugin=plugin, enabled=enabled))
    else:
        row.enabled = enabled


def kind_labels() -> dict[str, str]:
    from flask_babel import lazy_gettext as _l

    return {
        "company": _l("Company"),
        "region": _l("Region"),
        "center": _l("Center"),
        "station": _l("Station"),
        "desk": _l("Duty desk"),
        "store": _l("Store"),
        "club": _l("Club"),
    }
