"""The penalty ledger's rules (CORE-03..06), pure: no app, no database.

Every function takes a *notice* — any object with the attributes of
``portal.penalties.models.PenaltyNotice`` (``status``, ``user_id``, ``source``,
``proposed_by_id``, ``amount``, ``published_at``, ``published_by_id``,
``appeal_deadline``, ``deduction_mode``, ``final_at``, ``final_amount``,
``payroll_month``, ``payroll_amount``, ``discarded_*``) — checks that the
action is allowed, and either raises :class:`PenaltyRuleError` (with a message
for the person, and the form field it belongs to) leaving the notice untouched,
or changes the notice.  The service layer persists and audits; the tests drive
the same functions with a plain object.

Lifecycle::

    draft ──publish──▶ published ──appeal──▶ appealed ──decide──▶ final      (upheld / reduced)
      │                    │                                 └──▶ withdrawn  (withdrawn, amount 0)
      └──discard──▶ discarded   └──window passes, no appeal──▶ final

* **Who.** An auditor (``core.penalties.issue`` on the notice's unit) publishes;
  the auditor who proposed a draft by hand cannot publish it, and nobody
  publishes a penalty against themself.  Only the penalised person appeals.  The
  decider holds ``core.penalties.decide`` and is neither the penalised person,
  nor the issuer (publisher), nor the person who proposed the draft; a reason is
  required.
* **Amounts** are ``Decimal`` with at most two places.  The issuer chooses an
  amount inside the rule's range (exactly the amount for a fixed rule; any
  amount ≥ 0 for a rule without a figure).  A reduction on appeal must be lower
  than the published amount and ≥ 0; it **may go below the range minimum** —
  the range binds the issuer, while the appeal exists to correct the issuer,
  including by leniency below the tariff.  A withdrawn notice has
  ``final_amount == 0`` and status ``withdrawn``.
* **Appeal window (CORE-04).** ``appeal_days`` (setting ``core.appeal_days``, 2)
  calendar days in the unit's zone, not counting the day of publication:
  published 2026-11-10 10:00 Asia/Shanghai → an appeal is accepted if submitted
  at or before 2026-11-12 23:59:59 local.  ``appeal_deadline`` is stored as the
  *exclusive* end, the first instant at which appeals are refused (2026-11-13
  00:00 local = 2026-11-12 16:00 UTC): accepted iff ``submitted_at <
  appeal_deadline``.
* **Finality.** A notice nobody appealed becomes final at ``appeal_deadline``
  (the first instant after the window), whenever the sweep notices it; a decided
  appeal is final at the decision.
* **Deduction month (CORE-05).** Setting ``core.deduction_month`` (read at
  publication and kept on the notice as ``deduction_mode``): ``final`` — the
  local month of ``final_at`` (so a notice published on 11-28 whose window runs
  out at 12-01 00:00 is deducted in December); ``published`` — the local month
  of publication, at the published amount, and a reduction or withdrawal later
  is a refund (negative adjustment) in the local month of the decision.  Either
  way a notice is deducted in exactly one month (``payroll_month``) and a
  withdrawn notice in ``final`` mode in none.
* **Repeat offences (CORE-06).** The Nth offence counts the same person's
  *verified* offences (published, appealed or final — not draft, discarded or
  withdrawn) of the same rule, ordered by when they occurred, cumulatively; with
  a reset period of M months (``core.repeat_reset_months``, 0 = never) only
  offences within the M months up to this one count.  The rule's escalation
  entry with the largest N ≤ the count is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

from portal import inputs

DRAFT = "draft"
DISCARDED = "discarded"
PUBLISHED = "published"
APPEALED = "appealed"
FINAL = "final"
WITHDRAWN = "withdrawn"
STATUSES = (DRAFT, DISCARDED, PUBLISHED, APPEALED, FINAL, WITHDRAWN)
TERMINAL = frozenset({DISCARDED, FINAL, WITHDRAWN})
VERIFIED = frozenset({PUBLISHED, APPEALED, FINAL})  # counted as offences (CORE-06)
ISSUED = frozenset({PUBLISHED, APPEALED, FINAL, WITHDRAWN})  # the person has been told

UPHELD = "upheld"
REDUCED = "reduced"
OUTCOMES = (UPHELD, REDUCED, WITHDRAWN)

ASSESSMENT = "assessment"
MANUAL = "manual"
SOURCES = (ASSESSMENT, MANUAL)

DEDUCT_ON_FINAL = "final"
DEDUCT_ON_PUBLISHED = "published"
DEDUCTION_MODES = (DEDUCT_ON_FINAL, DEDUCT_ON_PUBLISHED)

CENT = inputs.CENT
MAX_AMOUNT = inputs.MAX_MONEY  # Numeric(12, 2)


def status_labels() -> dict[str, Any]:
    return {
        DRAFT: _l("Draft"),
        DISCARDED: _l("Discarded"),
        PUBLISHED: _l("Published"),
        APPEALED: _l("Appealed"),
        FINAL: _l("Final"),
        WITHDRAWN: _l("Withdrawn"),
    }


def outcome_labels() -> dict[str, Any]:
    return {UPHELD: _l("Upheld"), REDUCED: _l("Reduced"), WITHDRAWN: _l("Withdrawn")}


class PenaltyRuleError(ValueError):
    """An action the rules refuse; ``message`` is for the person, ``field`` the form field."""

    def __init__(self, message: Any, field: str | None = None):
        super().__init__(message)
        self.message = message  # a lazy string: rendered in the reader's language when shown
        self.field = field

    def __str__(self) -> str:
        return str(self.message)


@dataclass(frozen=True)
class AppealFacts:
    """What an accepted appeal records (persisted as a ``PenaltyAppeal``)."""

    user_id: int
    text: str
    submitted_at: datetime


@dataclass(frozen=True)
class DecisionFacts:
    """What a decision records (persisted as a ``PenaltyDecision``)."""

    outcome: str
    amount: Decimal
    reason: str
    decided_by_id: int
    decided_at: datetime
    adjustment_month: str | None = None
    adjustment_amount: Decimal | None = None


# --- time ------------------------------------------------------------------------------------


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: pass timezone-aware instants")
    return at


def appeal_deadline(published_at: datetime, zone: ZoneInfo, days: int) -> datetime:
    """The first instant (UTC) at which an appeal is refused (CORE-04).

    Local midnight starting the day after the ``days``-th calendar day after the
    day of publication: published 2026-11-10 10:00 Asia/Shanghai, 2 days →
    2026-11-13 00:00 local (accepted up to and including 23:59:59.999999 on 11-12).
    """
    if days < 0:
        raise ValueError("appeal days cannot be negative")
    published_on = _aware(published_at).astimezone(zone).date()
    end_day = published_on + timedelta(days=days + 1)
    return datetime.combine(end_day, time(0), tzinfo=zone).astimezone(timezone.utc)


def last_appeal_moment(deadline: datetime, zone: ZoneInfo) -> datetime:
    """The last whole second at which an appeal is accepted, in local time (23:59:59)."""
    return (deadline - timedelta(seconds=1)).astimezone(zone)


def appeal_open(notice, now: datetime) -> bool:
    return notice.status == PUBLISHED and _aware(now) < notice.appeal_deadline


def month_of(at: datetime, zone: ZoneInfo) -> str:
    """The local month ``YYYY-MM`` of an instant."""
    return _aware(at).astimezone(zone).strftime("%Y-%m")


def parse_month(text: str, *, last_year: int = inputs.LAST_YEAR) -> tuple[int, int]:
    """``'2026-11'`` → ``(2026, 11)`` (the core's bounded ``parse_month``); ``ValueError``
    otherwise."""
    try:
        return inputs.parse_month(text, last_year=last_year)
    except inputs.InputError as exc:
        raise ValueError(f"a month is written YYYY-MM, from {inputs.FIRST_YEAR}-01 to "
                         f"{inputs.LAST_YEAR}-12") from exc


def month_start(text: str, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) of a local month (the month after the last one a person may
    ask for included: a range ends there)."""
    year, month = parse_month(text, last_year=inputs.LAST_YEAR + 1)
    return datetime(year, month, 1, tzinfo=zone).astimezone(timezone.utc)


def months_before(day: date, months: int) -> date:
    """The same day ``months`` months earlier (clamped to the month's last day)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


# --- amounts ---------------------------------------------------------------------------------


def parse_amount(raw: Any, field: str = "amount") -> Decimal:
    """An amount in yuan: a ``Decimal`` ≥ 0 with at most two places."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise PenaltyRuleError(_l("Enter an amount."), field)
    if isinstance(raw, float):
        raise TypeError("amounts are Decimal, not float")
    try:
        return inputs.parse_money(format(raw, "f") if isinstance(raw, Decimal) else str(raw))
    except inputs.InputError as error:
        raise PenaltyRuleError(error.message, field) from None


def check_amount(rule, raw: Any, field: str = "amount") -> Decimal:
    """The amount an issuer chose, checked against the rule's fixed amount or range."""
    amount = parse_amount(raw, field)
    if rule.amount_min is not None:
        if rule.amount_min == rule.amount_max and amount != rule.amount_min:
            raise PenaltyRuleError(
                _l("%(rule)s is fixed at %(amount)s yuan.", rule=rule.id,
                   amount=rule.amount_min.quantize(CENT)), field)
        if not rule.amount_min <= amount <= rule.amount_max:
            raise PenaltyRuleError(
                _l("%(rule)s: choose an amount from %(min)s to %(max)s yuan.", rule=rule.id,
                   min=rule.amount_min.quantize(CENT), max=rule.amount_max.quantize(CENT)), field)
    return amount


def _text(raw: str | None) -> str:
    return (raw or "").strip()


# --- transitions -----------------------------------------------------------------------------


def _closed_message(notice) -> Any:
    if notice.status == DRAFT:
        return _l("This penalty is still a draft.")
    if notice.status == DISCARDED:
        return _l("This draft was discarded.")
    if notice.status == APPEALED:
        return _l("This penalty has already been appealed.")
    return _l("This penalty is final; it can no longer be changed.")


def check_new_draft(rule, user_id: int | None, evidence: str, amount: Any = None) -> Decimal | None:
    """A draft names a person, a known rule and evidence; an amount, if given, is checked."""
    if rule is None:
        raise PenaltyRuleError(_l("Choose a penalty rule."), "rule_id")
    if user_id is None:
        raise PenaltyRuleError(_l("Choose the person."), "user_id")
    if not _text(evidence):
        raise PenaltyRuleError(_l("Describe the evidence."), "evidence")
    if amount is None or (isinstance(amount, str) and not amount.strip()):
        return None
    return check_amount(rule, amount)


def publish(notice, *, actor_id: int, may_issue: bool, rule, amount: Any, now: datetime,
            zone: ZoneInfo, appeal_days: int, deduction_mode: str) -> None:
    """Publish a draft (CORE-03): an auditor other than its manual proposer; amount in range."""
    if notice.status != DRAFT:
        raise PenaltyRuleError(
            _l("Only a draft can be published.") if notice.status != DISCARDED
            else _closed_message(notice))
    if not may_issue:
        raise PenaltyRuleError(_l("Only an auditor may publish penalty notices."))
    if actor_id == notice.user_id:
        raise PenaltyRuleError(_l("You cannot publish a penalty against yourself."))
    if notice.source == MANUAL and actor_id == notice.proposed_by_id:
        raise PenaltyRuleError(_l("You proposed this draft; another auditor must publish it."))
    if deduction_mode not in DEDUCTION_MODES:
        raise ValueError(f"unknown deduction mode {deduction_mode!r}")
    blank = amount is None or (isinstance(amount, str) and not amount.strip())
    chosen = check_amount(rule, notice.amount if blank else amount)  # blank: the draft's amount
    now = _aware(now)
    notice.amount = chosen
    notice.status = PUBLISHED
    notice.published_at = now
    notice.published_by_id = actor_id
    notice.appeal_deadline = appeal_deadline(now, zone, appeal_days)
    notice.deduction_mode = deduction_mode
    if deduction_mode == DEDUCT_ON_PUBLISHED:
        notice.payroll_month = month_of(now, zone)
        notice.payroll_amount = chosen


def discard(notice, *, actor_id: int, may_issue: bool, reason: str, now: datetime) -> None:
    """Drop a draft that should not become a notice (a false alarm), with a reason."""
    if notice.status != DRAFT:
        raise PenaltyRuleError(_l("Only a draft can be discarded.") if notice.status != DISCARDED
                               else _closed_message(notice))
    if not may_issue:
        raise PenaltyRuleError(_l("Only an auditor may discard drafts."))
    if not _text(reason):
        raise PenaltyRuleError(_l("Give the reason."), "reason")
    notice.status = DISCARDED
    notice.discarded_at = _aware(now)
    notice.discarded_by_id = actor_id
    notice.discard_reason = _text(reason)


def appeal(notice, *, actor_id: int, text: str, now: datetime, zone: ZoneInfo) -> AppealFacts:
    """The penalised person appeals within the window (CORE-04)."""
    if actor_id != notice.user_id:
        raise PenaltyRuleError(_l("Only the penalised person may appeal."))
    if notice.status != PUBLISHED:
        raise PenaltyRuleError(_closed_message(notice))
    now = _aware(now)
    if now >= notice.appeal_deadline:
        last = last_appeal_moment(notice.appeal_deadline, zone)
        raise PenaltyRuleError(
            _l("The appeal period ended at %(deadline)s (%(zone)s). Late appeals are not "
               "accepted.", deadline=last.strftime("%Y-%m-%d %H:%M:%S"), zone=zone.key), "text")
    if not _text(text):
        raise PenaltyRuleError(_l("Explain why you appeal."), "text")
    notice.status = APPEALED
    return AppealFacts(user_id=actor_id, text=_text(text), submitted_at=now)


def decide(notice, *, actor_id: int, may_decide: bool, outcome: str, amount: Any, reason: str,
           now: datetime, zone: ZoneInfo) -> DecisionFacts:
    """Decide an appeal: upheld, reduced (lower, ≥ 0) or withdrawn; final at once."""
    if notice.status != APPEALED:
        raise PenaltyRuleError(
            _l("Only an appealed penalty can be decided.") if notice.status == PUBLISHED
            else _closed_message(notice))
    if not may_decide:
        raise PenaltyRuleError(_l("You may not decide appeals."))
    if actor_id == notice.user_id:
        raise PenaltyRuleError(_l("You cannot decide your own appeal."))
    if actor_id == notice.published_by_id:
        raise PenaltyRuleError(_l("The issuer of a notice cannot decide its appeal."))
    if notice.source == MANUAL and actor_id == notice.proposed_by_id:
        raise PenaltyRuleError(_l("The person who proposed this penalty cannot decide its appeal."))
    if outcome not in OUTCOMES:
        raise PenaltyRuleError(_l("Choose a decision."), "outcome")
    if outcome == UPHELD:
        final_amount = notice.amount
    elif outcome == WITHDRAWN:
        final_amount = Decimal("0.00")
    else:
        final_amount = parse_amount(amount)
        if final_amount >= notice.amount:
            raise PenaltyRuleError(
                _l("A reduced amount must be lower than %(amount)s yuan.", amount=notice.amount),
                "amount")
    if not _text(reason):
        raise PenaltyRuleError(_l("Give the reason for the decision."), "reason")
    now = _aware(now)
    notice.status = WITHDRAWN if outcome == WITHDRAWN else FINAL
    notice.final_at = now
    notice.final_amount = final_amount
    adjustment_month = adjustment_amount = None
    if notice.deduction_mode == DEDUCT_ON_PUBLISHED:
        if final_amount != notice.amount:  # refunded on the decision month's statement
            adjustment_month = month_of(now, zone)
            adjustment_amount = final_amount - notice.amount
    elif outcome != WITHDRAWN:
        notice.payroll_month = month_of(now, zone)
        notice.payroll_amount = final_amount
    return DecisionFacts(outcome=outcome, amount=final_amount, reason=_text(reason),
                         decided_by_id=actor_id, decided_at=now,
                         adjustment_month=adjustment_month, adjustment_amount=adjustment_amount)


def finalise(notice, *, now: datetime, zone: ZoneInfo) -> bool:
    """Make a published notice final once its window has passed with no appeal.

    Final as of ``appeal_deadline`` (not of ``now``: a late sweep changes no month).
    Returns whether the notice changed.
    """
    if notice.status != PUBLISHED or _aware(now) < notice.appeal_deadline:
        return False
    notice.status = FINAL
    notice.final_at = notice.appeal_deadline
    notice.final_amount = notice.amount
    if notice.deduction_mode != DEDUCT_ON_PUBLISHED:
        notice.payroll_month = month_of(notice.final_at, zone)
        notice.payroll_amount = notice.amount
    return True


# --- repeat offences (CORE-06) ---------------------------------------------------------------


def offence_number(offence: tuple[datetime, int], verified: Iterable[tuple[datetime, int]],
                   reset_months: int = 0, zone: ZoneInfo | None = None) -> int:
    """Which verified offence ``offence`` (occurred_at, id) is, among ``verified``.

    ``verified`` holds the same person's verified offences of the same rule
    (``offence`` itself included); order is (occurred_at, id).  With
    ``reset_months`` > 0, only offences on or after the same local day
    ``reset_months`` months before this one count.
    """
    earlier = [o for o in verified if o <= offence]
    if offence not in earlier:
        earlier.append(offence)
    if reset_months > 0:
        zone = zone or ZoneInfo("UTC")
        since = months_before(offence[0].astimezone(zone).date(), reset_months)
        earlier = [o for o in earlier if o[0].astimezone(zone).date() >= since]
    return len(earlier)


def escalation_for(escalation: Mapping[int, str], count: int) -> tuple[int, str] | None:
    """The consequence due at the ``count``-th offence: the entry with the largest N ≤ count."""
    due = [n for n in escalation if n <= count]
    if not due:
        return None
    n = max(due)
    return n, escalation[n]
