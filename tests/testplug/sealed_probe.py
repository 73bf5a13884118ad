"""A sealed model for the tests of CORE-07 (``portal.audit.sealed``), outside the app's metadata.

It lives on a declarative base of its own, so it is never part of ``db.metadata``:
``create_all``/``drop_all`` and the model-vs-migration comparison never see it.
A test creates the table with ``create_probe_table()`` (the ``create_all`` DDL
event adds the seal triggers, as for a real sealed model) and drops it after.
The test plugin's ``/testplug/probe/<id>`` route changes rows through the ORM,
so the HTTP refusal is proven on the same path a real plugin's form takes.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from portal.audit import triggers
from portal.audit.sealed import Sealed
from portal.extensions import NAMING_CONVENTION, db


class ProbeBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SealedProbe(Sealed, ProbeBase):
    """A handover-like record: ``body``, ``signed_by`` and ``day`` freeze once sealed; ``status`` does not."""

    __tablename__ = "testplug_sealed_probe"
    __sealed_columns__ = ("body", "signed_by", "day")

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int | None] = mapped_column(Integer)
    day: Mapped[date] = mapped_column(Date)
    body: Mapped[str] = mapped_column(String(200))
    signed_by: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="open")
    corrects_id: Mapped[int | None] = mapped_column(Integer)  # a correction references the original


triggers.install(ProbeBase.metadata)


def create_probe_table() -> None:
    ProbeBase.metadata.drop_all(db.engine)
    ProbeBase.metadata.create_all(db.engine)


def drop_probe_table() -> None:
    db.session.rollback()
    db.session.close()
    ProbeBase.metadata.drop_all(db.engine)
