"""Tables of the express inquiry plugin (all prefixed ``express_``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import User
from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db
from portal.sla.models import Deadline
from portal.units.models import Unit

OPEN, CLOSED = "open", "closed"


def _partial_unique(name: str, *columns: str, where: str) -> Index:
    """At most one row per ``columns`` among the rows matching ``where`` (PostgreSQL and SQLite)."""
    return Index(name, *columns, unique=True, sqlite_where=text(where), postgresql_where=text(where))


# "At most one" rules the database keeps even when two requests race (issue 24)
OPEN_FORWARD = "kind = 'forward' AND replied_at IS NULL"
OPEN_SIDE_REQUEST = "kind <> 'forward' AND replied_at IS NULL"
RESULT_UPDATE = "kind = 'result'"


class UnitLevel(db.Model):
    """The ladder level an admin gave a unit, and a center's stranded-parcel contact (EXP-R18)."""

    __tablename__ = "express_unit_levels"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), unique=True)
    level: Mapped[str | None] = mapped_column(String(12))
    stranded_contact: Mapped[str] = mapped_column(String(80), default="")
    stranded_phone: Mapped[str] = mapped_column(String(40), default="")
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    unit: Mapped[Unit] = relationship()


class Inquiry(db.Model):
    """A customer's inquiry about a parcel, taken by a station's CS (EXP-R01)."""

    __tablename__ = "express_inquiries"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)  # the L1 station
    waybill: Mapped[str] = mapped_column(String(40), index=True)
    inquirer_name: Mapped[str] = mapped_column(String(80))
    inquirer_org: Mapped[str] = mapped_column(String(120), default="")
    inquirer_phone: Mapped[str] = mapped_column(String(40))
    notes: Mapped[str] = mapped_column(Text, default="")
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("express_partners.id"))
    facts: Mapped[dict] = mapped_column(JSON, default=dict)  # parcel data (R04, R06)
    status: Mapped[str] = mapped_column(String(10), default=OPEN, index=True)
    stage: Mapped[int] = mapped_column(Integer, default=1)  # highest stage reached
    result: Mapped[str | None] = mapped_column(String(12))  # found / not_found / signed
    result_detail: Mapped[str] = mapped_column(Text, default="")
    result_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_by: Mapped[str] = mapped_column(String(80), default="")
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    customer_answer: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    customer_deadline_id: Mapped[int | None] = mapped_column(ForeignKey("sla_deadlines.id"))

    unit: Mapped[Unit] = relationship()
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_id])
    customer_deadline: Mapped[Deadline | None] = relationship()
    partner: Mapped[Partner | None] = relationship()
    hops: Mapped[list[Hop]] = relationship(back_populates="inquiry", order_by="Hop.id")


class Hop(db.Model):
    """A request to another unit about an inquiry: a forward up the ladder or a side request.

    Its clock (``deadline``) belongs to whoever holds it at the receiving unit (S0:70).
    """

    __tablename__ = "express_hops"
    __table_args__ = (
        # one open forward per inquiry and level; one open side request of a kind per hop
        _partial_unique("ux_express_hops_open_forward", "inquiry_id", "stage", where=OPEN_FORWARD),
        _partial_unique("ux_express_hops_open_side_request", "parent_id", "kind", where=OPEN_SIDE_REQUEST),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("express_inquiries.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("express_hops.id"))
    stage: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))  # forward / supervisor / assist
    from_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    to_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    sent_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    message: Mapped[str] = mapped_column(Text, default="")
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    outcome: Mapped[str | None] = mapped_column(String(12))  # found / not_found
    reply: Mapped[str] = mapped_column(Text, default="")
    replied_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    deadline_id: Mapped[int | None] = mapped_column(ForeignKey("sla_deadlines.id"))

    inquiry: Mapped[Inquiry] = relationship(back_populates="hops")
    from_unit: Mapped[Unit] = relationship(foreign_keys=[from_unit_id])
    to_unit: Mapped[Unit] = relationship(foreign_keys=[to_unit_id])
    sent_by: Mapped[User] = relationship(foreign_keys=[sent_by_id])
    holder: Mapped[User | None] = relationship(foreign_keys=[holder_id])
    replied_by: Mapped[User | None] = relationship(foreign_keys=[replied_by_id])
    deadline: Mapped[Deadline | None] = relationship()
    checks: Mapped[list[Check]] = relationship(back_populates="hop", order_by="Check.id")
    notes: Mapped[list[HopProgress]] = relationship(order_by="HopProgress.id")

    @property
    def is_open(self) -> bool:
        return self.replied_at is None


class HopProgress(db.Model):
    """A note on a hop that does not answer it: progress of 网络管理部, whose clock runs on
    (EXP-R12), or the director's request for the VP's intervention (EXP-R08)."""

    __tablename__ = "express_hop_progress"

    id: Mapped[int] = mapped_column(primary_key=True)
    hop_id: Mapped[int] = mapped_column(ForeignKey("express_hops.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12), default="progress")  # progress / vp_request
    text: Mapped[str] = mapped_column(Text)
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    by: Mapped[User] = relationship()


class Check(db.Model):
    """One step of a level's checklist with its result (EXP-R04, R07, R08)."""

    __tablename__ = "express_checks"
    __table_args__ = (UniqueConstraint("hop_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hop_id: Mapped[int] = mapped_column(ForeignKey("express_hops.id"), index=True)
    step: Mapped[str] = mapped_column(String(20))
    result: Mapped[str] = mapped_column(Text)
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    hop: Mapped[Hop] = relationship(back_populates="checks")
    by: Mapped[User] = relationship()


class CustomerUpdate(db.Model):
    """What the station told the customer: progress or the result (EXP-R09)."""

    __tablename__ = "express_customer_updates"
    # the result is told once: one close per inquiry
    __table_args__ = (_partial_unique("ux_express_customer_updates_result", "inquiry_id", where=RESULT_UPDATE),)

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("express_inquiries.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # progress / result
    text: Mapped[str] = mapped_column(Text)
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    late: Mapped[bool] = mapped_column(Boolean, default=False)

    by: Mapped[User] = relationship()


class Partner(db.Model):
    """An agent-delivery partner (代理派送方) and its published inquiry phone (EXP-R16)."""

    __tablename__ = "express_partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)  # who published it
    name: Mapped[str] = mapped_column(String(120))
    area: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    unit: Mapped[Unit] = relationship()


class Relabel(db.Model):
    """A parcel re-labelled (换单): old and new waybill; the re-labelling unit answers (EXP-R17)."""

    __tablename__ = "express_relabels"

    id: Mapped[int] = mapped_column(primary_key=True)
    old_waybill: Mapped[str] = mapped_column(String(40), index=True)
    new_waybill: Mapped[str] = mapped_column(String(40), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    unit: Mapped[Unit] = relationship()


class TrackingEvent(db.Model):
    """A tracking status of a waybill, entered by hand or imported from a CSV (EXP-R02)."""

    __tablename__ = "express_tracking_events"
    __table_args__ = (UniqueConstraint("waybill", "at", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    waybill: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))  # collected / in_transit / arrived / delivering / signed
    place: Mapped[str] = mapped_column(String(120), default="")
    signer: Mapped[str] = mapped_column(String(80), default="")
    source: Mapped[str] = mapped_column(String(20), default="manual")
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Complaint(db.Model):
    """A complaint or report against a person or station, verified by inspection (EXP-P02..P07, R15)."""

    __tablename__ = "express_complaints"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)  # the station
    person_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)  # who answers for it
    kind: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    description: Mapped[str] = mapped_column(Text)
    inquiry_id: Mapped[int | None] = mapped_column(ForeignKey("express_inquiries.id"))
    earlier_id: Mapped[int | None] = mapped_column(ForeignKey("express_complaints.id"))  # P07
    station_plan: Mapped[str] = mapped_column(Text, default="")  # P06
    plan_refused: Mapped[bool] = mapped_column(Boolean, default=False)
    center_plan_rejected: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open / verified / rejected
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finding: Mapped[str] = mapped_column(Text, default="")
    decision: Mapped[str] = mapped_column(Text, default="")  # R15: the leader's decision

    unit: Mapped[Unit] = relationship()
    person: Mapped[User] = relationship(foreign_keys=[person_id])
    recorded_by: Mapped[User] = relationship(foreign_keys=[recorded_by_id])
    verified_by: Mapped[User | None] = relationship(foreign_keys=[verified_by_id])


class QualityResponse(db.Model):
    """A station manager's response to a 质控部 penalty notice (EXP-P05)."""

    __tablename__ = "express_quality_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("penalty_notices.id"), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    deadline_id: Mapped[int | None] = mapped_column(ForeignKey("sla_deadlines.id"))
    educated: Mapped[bool] = mapped_column(Boolean, default=False)
    apologised: Mapped[bool] = mapped_column(Boolean, default=False)
    handling: Mapped[str] = mapped_column(Text, default="")
    measures: Mapped[str] = mapped_column(Text, default="")
    responded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    unit: Mapped[Unit] = relationship()
    deadline: Mapped[Deadline | None] = relationship()

