"""The penalty ledger's tables (CORE-03..06), all prefixed ``penalty_``.

* ``PenaltyNotice`` — one penalty from draft to final.  Its content (who, which
  rule, amount, evidence, when, who issued it and when) is sealed at
  publication (CORE-07): from then on only the lifecycle columns change, and
  those freeze too once the notice is final (``final_at`` set).
* ``PenaltyAppeal`` and ``PenaltyDecision`` — append-only rows, sealed on insert.
* ``InboxMessage`` — notifications to a person (unread badge in the header).

The lifecycle itself lives in ``portal.penalties.rules`` (pure) and is driven by
``portal.penalties.service``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.audit.sealed import Sealed
from portal.db_types import Money, UTCDateTime, utcnow
from portal.extensions import db


class PenaltyNotice(Sealed, db.Model):
    """A penalty notice (处罚通知, CORE-03).  See ``portal.penalties.rules`` for the lifecycle."""

    __tablename__ = "penalty_notices"
    __sealed_columns__ = (
        "unit_id", "user_id", "rule_id", "amount", "evidence", "occurred_at", "source",
        "proposed_by_id", "published_by_id", "published_at", "appeal_deadline", "deduction_mode",
    )
    # once final (or withdrawn), its status and money never change again (CORE-05, CORE-07)
    __final_marker__ = "final_at"
    __final_columns__ = ("status", "final_amount", "payroll_month", "payroll_amount")
    __table_args__ = (
        Index("ix_penalty_notices_status_deadline", "status", "appeal_deadline"),
        Index("ix_penalty_notices_user_rule", "user_id", "rule_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)  # the penalised person
    rule_id: Mapped[str] = mapped_column(String(32), index=True)
    amount: Mapped[Decimal | None] = mapped_column(Money)  # as published (None: not chosen yet)
    evidence: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(16))  # assessment | manual
    event_name: Mapped[str | None] = mapped_column(String(100))  # the domain event, for assessments
    dedupe_key: Mapped[str | None] = mapped_column(String(64), unique=True)  # one draft per event
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # manual drafts
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # the issuer
    # the first instant at which an appeal is refused (exclusive end of the window, CORE-04)
    appeal_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deduction_mode: Mapped[str | None] = mapped_column(String(16))  # final | published
    final_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    final_amount: Mapped[Decimal | None] = mapped_column(Money)
    payroll_month: Mapped[str | None] = mapped_column(String(7), index=True)  # YYYY-MM, local
    payroll_amount: Mapped[Decimal | None] = mapped_column(Money)  # deducted in payroll_month
    discarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    discarded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    discard_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    unit = relationship("Unit")
    user = relationship("User", foreign_keys=[user_id])
    proposed_by = relationship("User", foreign_keys=[proposed_by_id])
    published_by = relationship("User", foreign_keys=[published_by_id])
    discarded_by = relationship("User", foreign_keys=[discarded_by_id])
    appeal: Mapped[PenaltyAppeal | None] = relationship(back_populates="notice", uselist=False)
    decision: Mapped[PenaltyDecision | None] = relationship(back_populates="notice", uselist=False)

    def __repr__(self) -> str:
        return f"<PenaltyNotice {self.id} {self.rule_id} {self.status}>"


class PenaltyAppeal(Sealed, db.Model):
    """The person's appeal (申诉) against a notice; one per notice, never changed."""

    __tablename__ = "penalty_appeals"
    __sealed_columns__ = ("notice_id", "user_id", "text", "submitted_at")

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("penalty_notices.id"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)

    notice: Mapped[PenaltyNotice] = relationship(back_populates="appeal")
    user = relationship("User")


class PenaltyDecision(Sealed, db.Model):
    """The decision on an appeal: upheld, reduced or withdrawn, with a reason; never changed.

    With deduction in the publication month, a reduction or withdrawal is refunded
    on the decision month's statement: ``adjustment_month`` / ``adjustment_amount`` (< 0).
    """

    __tablename__ = "penalty_decisions"
    __sealed_columns__ = ("notice_id", "outcome", "amount", "reason", "decided_by_id", "decided_at",
                          "adjustment_month", "adjustment_amount")

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("penalty_notices.id"), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)  # the final amount
    reason: Mapped[str] = mapped_column(Text)
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    adjustment_month: Mapped[str | None] = mapped_column(String(7), index=True)
    adjustment_amount: Mapped[Decimal | None] = mapped_column(Money)

    notice: Mapped[PenaltyNotice] = relationship(back_populates="decision")
    decided_by = relationship("User")


class InboxMessage(db.Model):
    """A message to one person (a notice issued, an appeal decided); title/body in their language."""

    __tablename__ = "penalty_inbox_messages"
    __table_args__ = (Index("ix_penalty_inbox_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
