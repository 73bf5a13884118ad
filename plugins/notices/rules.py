"""Pure rules of the notice board, testable without Flask."""

from __future__ import annotations

from datetime import date, timedelta


def default_end(published_on: date, visible_days: int) -> date:
    """The last day a notice is shown: ``visible_days`` days counting the publication day."""
    return published_on + timedelta(days=visible_days - 1)


def end_date_error(published_on: date, chosen: date | None) -> str | None:
    """Why a chosen end date is refused, or None."""
    if chosen is not None and chosen < published_on:
        return "before_publication"
    return None


def is_current(published_on: date, visible_until: date, withdrawn: bool, today: date) -> bool:
    return not withdrawn and published_on <= today <= visible_until
