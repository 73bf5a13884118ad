"""The penalty side of the plugin contract (CORE-03..06).

Plugins declare rules (``portal_register_penalty_rules``) and propose drafts for
domain events (``portal_assess_penalties``); the core checks each draft against
its rule before anything reaches the ledger.
"""

from __future__ import annotations

from flask import current_app

from portal.plugin_api import DomainEvent, PenaltyDraft


class PenaltyDraftError(ValueError):
    """A plugin proposed a draft that its rule does not allow."""


def assess(event: DomainEvent) -> list[PenaltyDraft]:
    """Ask every plugin for penalties this event calls for; each draft is validated."""
    from portal.extensions import db
    from portal.penalties.service import rule_in_force
    from portal.units.models import Unit

    registry = current_app.extensions["portal"]
    drafts = [d for group in registry.hook.portal_assess_penalties(event=event) for d in group or []]
    for draft in drafts:
        if draft.rule_id not in registry.penalty_rules:
            raise PenaltyDraftError(f"draft for unknown rule {draft.rule_id!r}")
        rule = rule_in_force(draft.rule_id, db.session.get(Unit, draft.unit_id), draft.occurred_at)
        if draft.amount is not None and rule.amount_min is not None and not (
            rule.amount_min <= draft.amount <= rule.amount_max
        ):
            raise PenaltyDraftError(
                f"{draft.rule_id}: {draft.amount} is outside {rule.amount_min}–{rule.amount_max}"
            )
    return drafts


def announce_issued(notice: PenaltyDraft) -> None:
    """Tell every plugin that a penalty notice was published."""
    current_app.extensions["portal"].hook.portal_penalty_issued(notice=notice)
