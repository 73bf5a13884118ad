"""Who hears about a warning or a breach, and the event the penalty rules see.

* a warning goes to the owner;
* a breach goes to the owner at breach time and to the unit's supervisors (the
  supervisors of the nearest unit up the tree that has any);
* the breach event ``<policy>.breached`` goes to every plugin's
  ``portal_assess_penalties`` through the penalty ledger.

Messages go to the in-app inbox (``portal.penalties.inbox``), in the recipient's language.
"""

from __future__ import annotations

from flask import g, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.auth.models import Membership, User
from portal.extensions import db
from portal.penalties.inbox import send as inbox_send
from portal.penalties.service import record_event
from portal.plugin_api import DomainEvent
from portal.settings.models import unit_zone
from portal.sla.models import Deadline


def supervisors(unit) -> list[int]:
    """Ids of the supervisors of ``unit`` (or of its nearest ancestor that has some); cached."""
    cache = g.setdefault("sla_supervisors", {})
    if unit.id not in cache:
        found: list[int] = []
        for node in unit.lineage():
            found = sorted(set(db.session.scalars(
                select(Membership.user_id).where(Membership.unit_id == node.id,
                                                 Membership.role == "supervisor"))))
            if found:
                break
        cache[unit.id] = found
    return cache[unit.id]


def prefetch(deadlines) -> list[User]:
    """Load the batch's recipients at once (the inbox then finds them without a query each).

    The caller keeps the returned list while it works on the batch.
    """
    ids = set()
    for deadline in deadlines:
        ids.update(u for u in (deadline.owner_id, deadline.breached_owner_id) if u is not None)
        ids.update(supervisors(deadline.unit))
    if not ids:
        return []
    return list(db.session.scalars(select(User).where(User.id.in_(ids))))


def _link(endpoint: str) -> str:
    try:
        return url_for(endpoint)
    except RuntimeError:  # outside a request (the sweep command) without SERVER_NAME
        return {"sla.overdue": "/sla/", "sla.mine": "/sla/mine"}[endpoint]


def _send(user_ids, subject, body: str, unit_id: int, endpoint: str) -> None:
    for user_id in dict.fromkeys(u for u in user_ids if u is not None):
        inbox_send(user_id=user_id, subject=subject, body=body, link=_link(endpoint), unit_id=unit_id,
                   kind="deadline")


def _describe(deadline: Deadline) -> str:
    due = deadline.due_at.astimezone(unit_zone(deadline.unit))
    return (f"{deadline.policy_id} · {deadline.object_type} #{deadline.object_id} · "
            f"{due:%Y-%m-%d %H:%M} ({due.tzinfo.key})")


def warned(deadline: Deadline) -> None:
    _send([deadline.owner_id], _l("A deadline is near"), _describe(deadline), deadline.unit_id, "sla.mine")


def breached(deadline: Deadline) -> None:
    _send([deadline.breached_owner_id], _l("A deadline was missed"), _describe(deadline),
          deadline.unit_id, "sla.mine")
    _send([s for s in supervisors(deadline.unit) if s != deadline.breached_owner_id],
          _l("A deadline was missed"), _describe(deadline), deadline.unit_id, "sla.overdue")


def penalty_event(event: DomainEvent) -> None:
    """Hand the event to the penalty ledger, which asks the plugins' assessment hooks and
    stores their drafts (once per event)."""
    record_event(event)
