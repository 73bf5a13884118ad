"""The sweep: mark breaches exactly once, warn before the deadline, tell the plugins.

Safe to run every minute on several hosts at once:

* candidates are read in batches from the index on ``(status, due_at)``
  (``status = 'open' AND due_at < now``), on PostgreSQL with
  ``FOR UPDATE SKIP LOCKED`` so that concurrent sweepers take different rows;
* each batch is claimed with one conditional
  ``UPDATE … SET status = 'breached' WHERE id IN (…) AND status = 'open' … RETURNING id``:
  a row changes state in exactly one transaction, so only the sweeper (or the late
  ``meet``) whose UPDATE changed it gets its id back and announces the breach.
  On SQLite this UPDATE also takes the database write lock first, which serialises
  concurrent sweepers for the rest of the batch;
* the audit entry, the notifications and the penalty event are written in the same
  transaction as the claim and commit with it.  If a batch fails (a plugin hook
  raising), it is rolled back and redone deadline by deadline, each in a savepoint: the
  failing deadline is logged, its own work rolled back and its claim undone, so it stays
  open for the next sweep while the others commit.  On that rare path the assessment
  hooks of the batch's other deadlines are called a second time; the ledger stores a
  draft once per event (``portal.penalties.service.record_event`` is idempotent), so
  nothing reaches the database twice.

Warnings work the same way on ``(status, warned_at, warn_at)``: ``warned_at`` is set
once by a conditional UPDATE and the owner is told.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from portal.audit import record
from portal.db_types import utcnow
from portal.extensions import db
from portal.plugin_api import DomainEvent
from portal.sla import notify
from portal.sla.models import BREACHED, OPEN, Deadline

log = logging.getLogger("portal.sla")

DEFAULT_BATCH = 500


@dataclass
class SweepResult:
    breached: int = 0
    warned: int = 0
    failed: set[int] = field(default_factory=set)


def sweep(now: datetime | None = None, batch_size: int = DEFAULT_BATCH) -> SweepResult:
    """Mark every open deadline due before ``now`` as breached, then send due warnings."""
    now = now or utcnow()
    result = SweepResult()
    _run(result, now, batch_size, _due_ids, _claim_breaches, _after_breach, _unclaim_breach, "breached")
    _run(result, now, batch_size, _warn_ids, _claim_warnings, _after_warning, _unclaim_warning, "warned")
    return result


def breach_one(deadline_id: int, now: datetime) -> bool:
    """Breach one deadline now if it is still open and due (no commit): what ``meet`` uses."""
    won = _claim_breaches([deadline_id], now)
    for deadline in _load(won):
        _after_breach(deadline, now)
    return bool(won)


# --- candidates and claims ------------------------------------------------------------------


def _due_ids(now: datetime, limit: int, skip: set[int]) -> list[int]:
    query = (select(Deadline.id)
             .where(Deadline.status == OPEN, Deadline.due_at < now, Deadline.paused_at.is_(None))
             .order_by(Deadline.due_at).limit(limit))
    return _locked_ids(query, skip)


def _warn_ids(now: datetime, limit: int, skip: set[int]) -> list[int]:
    query = (select(Deadline.id)
             .where(Deadline.status == OPEN, Deadline.warned_at.is_(None), Deadline.warn_at <= now,
                    Deadline.paused_at.is_(None))
             .order_by(Deadline.warn_at).limit(limit))
    return _locked_ids(query, skip)


def _locked_ids(query, skip: set[int]) -> list[int]:
    if skip:
        query = query.where(Deadline.id.not_in(skip))
    # FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite has no row locks and renders nothing
    return list(db.session.scalars(query.with_for_update(skip_locked=True)))


def _claim(ids: list[int], condition, values: dict) -> list[int]:
    """Apply ``values`` to those of ``ids`` still matching ``condition``; return the ids changed."""
    if not ids:
        return []
    statement = (update(Deadline).where(Deadline.id.in_(ids), *condition).values(**values)
                 .execution_options(synchronize_session=False))
    if db.engine.dialect.update_returning:
        return list(db.session.scalars(statement.returning(Deadline.id)))
    won = []
    for ident in ids:  # without RETURNING: one conditional UPDATE each, the rowcount says who won
        single = (update(Deadline).where(Deadline.id == ident, *condition).values(**values)
                  .execution_options(synchronize_session=False))
        if db.session.execute(single).rowcount == 1:
            won.append(ident)
    return won


def _claim_breaches(ids: list[int], now: datetime) -> list[int]:
    return _claim(ids, (Deadline.status == OPEN, Deadline.due_at < now, Deadline.paused_at.is_(None)),
                  {"status": BREACHED, "breached_at": now, "breached_owner_id": Deadline.owner_id})


def _claim_warnings(ids: list[int], now: datetime) -> list[int]:
    return _claim(ids, (Deadline.status == OPEN, Deadline.warned_at.is_(None), Deadline.warn_at <= now,
                        Deadline.paused_at.is_(None)),
                  {"warned_at": now})


def _load(ids: Iterable[int]) -> list[Deadline]:
    ids = list(ids)
    if not ids:
        return []
    return list(db.session.scalars(
        select(Deadline).where(Deadline.id.in_(ids))
        .options(selectinload(Deadline.unit)).order_by(Deadline.due_at, Deadline.id)
        .execution_options(populate_existing=True)))


# --- what follows a claim ---------------------------------------------------------------------


def _after_breach(deadline: Deadline, now: datetime) -> None:
    facts = {
        "policy": deadline.policy_id, "subject": f"{deadline.object_type}:{deadline.object_id}",
        "owner_id": deadline.breached_owner_id, "started_at": deadline.started_at,
        "due_at": deadline.due_at, "breached_at": now,
    }
    record("sla.breached", "sla_deadline", deadline.id, unit_id=deadline.unit_id,
           before={"status": OPEN}, after={"status": BREACHED, **facts})
    notify.breached(deadline)
    event = DomainEvent(
        name=f"{deadline.policy_id}.breached",
        unit_id=deadline.unit_id,
        occurred_at=deadline.due_at,
        subject_user_id=deadline.breached_owner_id,
        data={
            "event_id": f"sla_deadline:{deadline.id}:breached",
            "deadline_id": deadline.id, "policy_id": deadline.policy_id,
            "rule": _policy_rule(deadline.policy_id),
            "object_type": deadline.object_type, "object_id": deadline.object_id,
            "started_at": deadline.started_at.isoformat(), "due_at": deadline.due_at.isoformat(),
            "breached_at": now.isoformat(), "owner_id": deadline.breached_owner_id,
            "evidence": f"deadline {deadline.policy_id} on {deadline.object_type}:{deadline.object_id} "
                        f"due {deadline.due_at.isoformat()} was not met",
        },
    )
    notify.penalty_event(event)


def _after_warning(deadline: Deadline, now: datetime) -> None:
    record("sla.warned", "sla_deadline", deadline.id, unit_id=deadline.unit_id,
           before={"warned_at": None}, after={"warned_at": now, "due_at": deadline.due_at,
                                              "owner_id": deadline.owner_id})
    notify.warned(deadline)


def _policy_rule(policy_id: str) -> str:
    policy = current_app.extensions["portal"].sla_policies.get(policy_id)
    return policy.rule if policy else ""


# --- the batch loop ----------------------------------------------------------------------------


def _unclaim_breach(deadline_id: int) -> None:
    db.session.execute(update(Deadline).where(Deadline.id == deadline_id)
                       .values(status=OPEN, breached_at=None, breached_owner_id=None)
                       .execution_options(synchronize_session=False))


def _unclaim_warning(deadline_id: int) -> None:
    db.session.execute(update(Deadline).where(Deadline.id == deadline_id).values(warned_at=None)
                       .execution_options(synchronize_session=False))


def _run(result: SweepResult, now, batch_size, candidates, claim, after, unclaim, counter: str) -> None:
    failed = result.failed
    while True:
        ids = candidates(now, batch_size, failed)
        if not ids:
            db.session.rollback()  # end the (possibly locking) read transaction
            return
        try:
            done = _batch(ids, now, claim, after)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.warning("sla sweep: a batch of %d failed; redoing it deadline by deadline", len(ids),
                        exc_info=True)
            done = _batch_one_by_one(ids, now, claim, after, unclaim, failed)
        setattr(result, counter, getattr(result, counter) + done)


def _batch(ids: list[int], now: datetime, claim, after) -> int:
    """The fast path: claim, then one flush for the whole batch's follow-up."""
    deadlines = _load(claim(ids, now))
    recipients = notify.prefetch(deadlines)  # noqa: F841 (held for the batch)
    with db.session.no_autoflush:
        for deadline in deadlines:
            after(deadline, now)
    db.session.flush()
    return len(deadlines)


def _batch_one_by_one(ids: list[int], now: datetime, claim, after, unclaim, failed: set[int]) -> int:
    """After a failure: each deadline in a savepoint, so one bad row cannot block the others."""
    done = 0
    try:
        deadlines = _load(claim(ids, now))
        recipients = notify.prefetch(deadlines)  # noqa: F841
        for deadline in deadlines:
            ident = deadline.id
            try:
                with db.session.begin_nested(), db.session.no_autoflush:
                    after(deadline, now)
                done += 1
            except Exception:
                log.exception("sla sweep: deadline %s failed and stays for the next sweep", ident)
                failed.add(ident)
                unclaim(ident)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return done
