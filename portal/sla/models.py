"""Deadlines (timers) and the per-unit calendar overrides they are counted on."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import User
from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db
from portal.units.models import Unit

OPEN, MET, BREACHED, CANCELLED = "open", "met", "breached", "cancelled"
STATUSES = (OPEN, MET, BREACHED, CANCELLED)
HOLIDAY, WORKDAY = "holiday", "workday"


class Deadline(db.Model):
    """One running or finished timer of a policy (``express.l1_customer_reply``) on a subject.

    ``due_at`` and ``warn_at`` are UTC instants computed once, at start, in the unit's
    zone and on its calendar; "overdue" is the indexed query
    ``status = 'open' AND due_at <= now``.  The owner is whoever holds the item now;
    ``met_owner_id`` / ``breached_owner_id`` freeze who held it when it was met or
    breached.  A paused deadline (``paused_at`` set) neither warns nor breaches.
    """

    __tablename__ = "sla_deadlines"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        CheckConstraint("calendar IN ('wall', 'working')", name="calendar"),
        Index("ix_sla_deadlines_status_due_at", "status", "due_at"),
        Index("ix_sla_deadlines_status_warned_at_warn_at", "status", "warned_at", "warn_at"),
        Index("ix_sla_deadlines_subject", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(100), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    calendar: Mapped[str] = mapped_column(String(10))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default=OPEN)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # time spent paused, counted on the deadline's own calendar (working seconds for 'working')
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    met_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    met_owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    unit: Mapped[Unit] = relationship()
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    met_by: Mapped[User | None] = relationship(foreign_keys=[met_by_id])
    breached_owner: Mapped[User | None] = relationship(foreign_keys=[breached_owner_id])

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None

    def __repr__(self) -> str:
        return f"<Deadline {self.id} {self.policy_id} {self.status} due {self.due_at:%Y-%m-%d %H:%M}Z>"


class CalendarDay(db.Model):
    """A unit's own day off (``holiday``) or extra working day (``workday``).

    Overrides China's statutory calendar for the unit and every unit below it; the
    nearest unit up the tree with an entry for a day decides.  They apply to
    deadlines started after the change (a running deadline keeps its due time).
    """

    __tablename__ = "sla_calendar_days"
    __table_args__ = (
        UniqueConstraint("unit_id", "day"),
        CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    unit: Mapped[Unit] = relationship()
