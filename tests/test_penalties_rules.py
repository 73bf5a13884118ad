"""The penalty ledger's pure rules (CORE-03..06): lifecycle, who may act, deadlines, months."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from portal.penalties import rules as R
from portal.plugin_api import PenaltyRule

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIXED = PenaltyRule("TST-P01", "迟复", "Late reply", "", Decimal("200"), Decimal("200"),
                    escalation={3: "dismissal required"})
RANGE = PenaltyRule("TST-P02", "二次投诉", "Second complaint", "", Decimal("500"), Decimal("1000"))
OPEN = PenaltyRule("TST-P03", "开除", "Dismissal", "", None, None)
RULES = {r.id: r for r in (FIXED, RANGE, OPEN)}


@dataclass
class Notice:
    """A stand-in for PenaltyNotice: the attributes the rules read and write."""

    user_id: int
    rule_id: str
    source: str
    proposed_by_id: int | None = None
    amount: Decimal | None = None
    status: str = R.DRAFT
    published_at: datetime | None = None
    published_by_id: int | None = None
    appeal_deadline: datetime | None = None
    deduction_mode: str | None = None
    final_at: datetime | None = None
    final_amount: Decimal | None = None
    payroll_month: str | None = None
    payroll_amount: Decimal | None = None
    discarded_at: datetime | None = None
    discarded_by_id: int | None = None
    discard_reason: str | None = None


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def published(at: datetime, amount="200", mode=R.DEDUCT_ON_FINAL, days=2) -> Notice:
    notice = Notice(user_id=1, rule_id="TST-P01", source=R.ASSESSMENT, amount=Decimal(amount))
    R.publish(notice, actor_id=2, may_issue=True, rule=FIXED if amount == "200" else OPEN,
              amount=None, now=at, zone=SHANGHAI, appeal_days=days, deduction_mode=mode)
    return notice


# --- CORE-04: the appeal window ---------------------------------------------------------------


def test_core_04_deadline_is_end_of_second_local_day():
    deadline = R.appeal_deadline(local(2026, 11, 10, 10, 0), SHANGHAI, 2)
    assert deadline == datetime(2026, 11, 12, 16, 0, tzinfo=timezone.utc)  # 11-13 00:00 local
    assert R.last_appeal_moment(deadline, SHANGHAI) == local(2026, 11, 12, 23, 59, 59)
    # publication late in the local day, already the next day in UTC terms
    assert R.appeal_deadline(local(2026, 11, 10, 23, 59), SHANGHAI, 2) == deadline
    assert R.appeal_deadline(local(2026, 11, 10, 0, 0), SHANGHAI, 2) == deadline
    # the setting: 0 days = the day of publication only
    assert R.appeal_deadline(local(2026, 11, 10, 10), SHANGHAI, 0) == local(2026, 11, 11, 0, 0)


def test_core_04_appeal_one_second_before_deadline_accepted():
    notice = published(local(2026, 11, 10, 10, 0))
    facts = R.appeal(notice, actor_id=1, text="I replied on time", zone=SHANGHAI,
                     now=local(2026, 11, 12, 23, 59, 58))
    assert notice.status == R.APPEALED and facts.text == "I replied on time"


def test_core_04_appeal_at_the_last_second_accepted():
    notice = published(local(2026, 11, 10, 10, 0))
    R.appeal(notice, actor_id=1, text="x", now=local(2026, 11, 12, 23, 59, 59), zone=SHANGHAI)
    assert notice.status == R.APPEALED


def test_core_04_appeal_one_second_late_refused():
    notice = published(local(2026, 11, 10, 10, 0))
    with pytest.raises(R.PenaltyRuleError) as refused:
        R.appeal(notice, actor_id=1, text="x", now=local(2026, 11, 13, 0, 0, 0), zone=SHANGHAI)
    assert "2026-11-12 23:59:59" in str(refused.value.message)
    assert "Late appeals are not accepted" in str(refused.value.message)
    assert notice.status == R.PUBLISHED


def test_core_04_only_the_penalised_person_appeals_and_only_once():
    notice = published(local(2026, 11, 10, 10, 0))
    with pytest.raises(R.PenaltyRuleError, match="Only the penalised person"):
        R.appeal(notice, actor_id=5, text="x", now=local(2026, 11, 11), zone=SHANGHAI)
    with pytest.raises(R.PenaltyRuleError) as empty:
        R.appeal(notice, actor_id=1, text="  ", now=local(2026, 11, 11), zone=SHANGHAI)
    assert empty.value.field == "text"
    R.appeal(notice, actor_id=1, text="x", now=local(2026, 11, 11), zone=SHANGHAI)
    with pytest.raises(R.PenaltyRuleError, match="already been appealed"):
        R.appeal(notice, actor_id=1, text="x", now=local(2026, 11, 11), zone=SHANGHAI)


# --- CORE-03: who publishes and decides, amounts -----------------------------------------------


def test_core_03_range_rule_needs_an_amount_inside_the_range():
    for bad, message in (("499.99", "from 500.00 to 1000.00"), ("1000.01", "from 500.00 to 1000.00"),
                         ("", "Enter an amount"), ("12.345", "such as 200"), ("-1", "negative")):
        draft = Notice(user_id=1, rule_id="TST-P02", source=R.ASSESSMENT)
        with pytest.raises(R.PenaltyRuleError, match=message):
            R.publish(draft, actor_id=2, may_issue=True, rule=RANGE, amount=bad, now=local(2026, 11, 1),
                      zone=SHANGHAI, appeal_days=2, deduction_mode=R.DEDUCT_ON_FINAL)
        assert draft.status == R.DRAFT and draft.published_at is None
    draft = Notice(user_id=1, rule_id="TST-P02", source=R.ASSESSMENT)
    R.publish(draft, actor_id=2, may_issue=True, rule=RANGE, amount="750.5", now=local(2026, 11, 1),
              zone=SHANGHAI, appeal_days=2, deduction_mode=R.DEDUCT_ON_FINAL)
    assert draft.amount == Decimal("750.50") and isinstance(draft.amount, Decimal)


def test_core_03_fixed_rule_amount_is_the_rule_amount():
    draft = Notice(user_id=1, rule_id="TST-P01", source=R.ASSESSMENT)
    with pytest.raises(R.PenaltyRuleError, match="fixed at 200.00"):
        R.publish(draft, actor_id=2, may_issue=True, rule=FIXED, amount="150", now=local(2026, 11, 1),
                  zone=SHANGHAI, appeal_days=2, deduction_mode=R.DEDUCT_ON_FINAL)


def test_core_03_manual_proposer_cannot_publish_and_nobody_publishes_own_penalty():
    draft = Notice(user_id=1, rule_id="TST-P01", source=R.MANUAL, proposed_by_id=2,
                   amount=Decimal("200"))
    kwargs = dict(may_issue=True, rule=FIXED, amount=None, now=local(2026, 11, 1), zone=SHANGHAI,
                  appeal_days=2, deduction_mode=R.DEDUCT_ON_FINAL)
    with pytest.raises(R.PenaltyRuleError, match="another auditor must publish"):
        R.publish(draft, actor_id=2, **kwargs)
    with pytest.raises(R.PenaltyRuleError, match="against yourself"):
        R.publish(draft, actor_id=1, **kwargs)
    with pytest.raises(R.PenaltyRuleError, match="Only an auditor"):
        R.publish(draft, actor_id=5, **{**kwargs, "may_issue": False})
    R.publish(draft, actor_id=3, **kwargs)
    assert draft.published_by_id == 3


def test_core_03_decider_is_neither_person_nor_issuer_and_gives_a_reason():
    notice = published(local(2026, 11, 10, 10))
    R.appeal(notice, actor_id=1, text="x", now=local(2026, 11, 11), zone=SHANGHAI)
    kwargs = dict(may_decide=True, outcome=R.UPHELD, amount=None, reason="checked the log",
                  now=local(2026, 11, 12), zone=SHANGHAI)
    with pytest.raises(R.PenaltyRuleError, match="issuer"):
        R.decide(notice, actor_id=2, **kwargs)
    with pytest.raises(R.PenaltyRuleError, match="your own appeal"):
        R.decide(notice, actor_id=1, **kwargs)
    with pytest.raises(R.PenaltyRuleError, match="may not decide"):
        R.decide(notice, actor_id=5, **{**kwargs, "may_decide": False})
    with pytest.raises(R.PenaltyRuleError) as no_reason:
        R.decide(notice, actor_id=4, **{**kwargs, "reason": " "})
    assert no_reason.value.field == "reason" and notice.status == R.APPEALED
    facts = R.decide(notice, actor_id=4, **kwargs)
    assert notice.status == R.FINAL and notice.final_amount == Decimal("200.00")
    assert facts.decided_by_id == 4 and facts.reason == "checked the log"


def test_core_03_reduction_is_lower_may_go_below_range_minimum_and_withdrawal_is_zero():
    def appealed(rule=RANGE, amount="600"):
        notice = Notice(user_id=1, rule_id=rule.id, source=R.ASSESSMENT)
        R.publish(notice, actor_id=2, may_issue=True, rule=rule, amount=amount,
                  now=local(2026, 11, 10), zone=SHANGHAI, appeal_days=2,
                  deduction_mode=R.DEDUCT_ON_FINAL)
        R.appeal(notice, actor_id=1, text="x", now=local(2026, 11, 11), zone=SHANGHAI)
        return notice

    kwargs = dict(actor_id=4, may_decide=True, outcome=R.REDUCED, reason="first time",
                  now=local(2026, 11, 12), zone=SHANGHAI)
    for bad, message in (("600", "lower than 600.00"), ("700", "lower than"), ("-1", "negative"),
                         ("", "Enter an amount")):
        notice = appealed()
        with pytest.raises(R.PenaltyRuleError, match=message):
            R.decide(notice, amount=bad, **kwargs)
        assert notice.status == R.APPEALED and notice.final_amount is None
    notice = appealed()
    R.decide(notice, amount="100", **kwargs)  # below the 500 minimum: allowed on appeal
    assert (notice.status, notice.final_amount, notice.payroll_month) == (
        R.FINAL, Decimal("100.00"), "2026-11")
    notice = appealed()
    R.decide(notice, amount=None, **{**kwargs, "outcome": R.WITHDRAWN})
    assert (notice.status, notice.final_amount, notice.payroll_month) == (
        R.WITHDRAWN, Decimal("0.00"), None)


# --- CORE-05: the deduction month ---------------------------------------------------------------


def test_core_05_unappealed_notice_is_final_when_the_window_ends():
    notice = published(local(2026, 11, 27, 10))
    assert not R.finalise(notice, now=local(2026, 11, 29, 23, 59, 59), zone=SHANGHAI)
    assert notice.status == R.PUBLISHED
    # a sweep that runs days later still dates it to the end of the window
    assert R.finalise(notice, now=local(2026, 12, 5, 8), zone=SHANGHAI)
    assert notice.final_at == local(2026, 11, 30, 0, 0) and notice.payroll_month == "2026-11"
    assert notice.final_amount == notice.payroll_amount == Decimal("200.00")
    assert not R.finalise(notice, now=local(2026, 12, 6), zone=SHANGHAI)


def test_core_05_window_ending_at_month_end_deducts_next_month():
    notice = published(local(2026, 11, 28, 10))
    R.finalise(notice, now=local(2026, 12, 1, 0, 0), zone=SHANGHAI)
    assert notice.final_at == local(2026, 12, 1) and notice.payroll_month == "2026-12"


@pytest.mark.parametrize(("decided", "month"), [
    (local(2026, 11, 30, 23, 59, 59), "2026-11"),
    (local(2026, 12, 1, 0, 0, 0), "2026-12"),
    (datetime(2026, 11, 30, 16, 30, tzinfo=timezone.utc), "2026-12"),  # 12-01 00:30 in Shanghai
])
def test_core_05_decided_penalty_is_deducted_in_the_local_month_of_the_decision(decided, month):
    notice = published(local(2026, 11, 29, 9))
    R.appeal(notice, actor_id=1, text="x", now=local(2026, 11, 30, 9), zone=SHANGHAI)
    R.decide(notice, actor_id=4, may_decide=True, outcome=R.UPHELD, amount=None, reason="r",
             now=decided, zone=SHANGHAI)
    assert notice.payroll_month == month


def test_core_05_publication_month_setting_refunds_on_the_decision_month():
    notice = published(local(2026, 11, 29, 9), mode=R.DEDUCT_ON_PUBLISHED)
    assert (notice.payroll_month, notice.payroll_amount) == ("2026-11", Decimal("200.00"))
    R.appeal(notice, actor_id=1, text="x", now=local(2026, 11, 30, 9), zone=SHANGHAI)
    facts = R.decide(notice, actor_id=4, may_decide=True, outcome=R.REDUCED, amount="50",
                     reason="r", now=local(2026, 12, 2, 9), zone=SHANGHAI)
    assert notice.payroll_month == "2026-11"  # unchanged: deducted exactly once
    assert (facts.adjustment_month, facts.adjustment_amount) == ("2026-12", Decimal("-150.00"))


def test_core_05_month_helpers():
    assert R.month_of(datetime(2026, 10, 31, 16, 0, tzinfo=timezone.utc), SHANGHAI) == "2026-11"
    assert R.month_start("2026-11", SHANGHAI) == datetime(2026, 10, 31, 16, tzinfo=timezone.utc)
    for bad in ("2026-13", "2026-1", "26-11", "2026/11", ""):
        with pytest.raises(ValueError):
            R.parse_month(bad)


# --- CORE-06: repeat offences -----------------------------------------------------------------


def test_core_06_offence_number_is_cumulative_and_escalation_shown_from_n():
    days = [(local(2025, 1, 5), 1), (local(2026, 3, 1), 7), (local(2026, 11, 2), 9)]
    assert [R.offence_number(o, days) for o in days] == [1, 2, 3]
    assert R.escalation_for(FIXED.escalation, 2) is None
    assert R.escalation_for(FIXED.escalation, 3) == (3, "dismissal required")
    assert R.escalation_for({2: "warning", 3: "dismissal"}, 5) == (3, "dismissal")


def test_core_06_reset_period_counts_only_recent_offences():
    days = [(local(2025, 1, 5), 1), (local(2026, 3, 1), 7), (local(2026, 11, 2), 9)]
    assert R.offence_number(days[2], days, reset_months=12, zone=SHANGHAI) == 2
    assert R.offence_number(days[2], days, reset_months=6, zone=SHANGHAI) == 1
    assert R.months_before(local(2026, 3, 31).date(), 1) == local(2026, 2, 28).date()


# --- the lifecycle as a state machine ----------------------------------------------------------

PERSON, AUDITOR_A, AUDITOR_B, DECIDER, STAFF = 1, 2, 3, 4, 5
ACTORS = (PERSON, AUDITOR_A, AUDITOR_B, DECIDER, STAFF)
ISSUERS = {AUDITOR_A, AUDITOR_B}
DECIDERS = {AUDITOR_A, AUDITOR_B, DECIDER}
START = local(2026, 11, 27, 9, 30)
VALID = "<valid>"  # stands for an amount the rule accepts, so valid paths are common
AMOUNTS = st.one_of(st.just(VALID), st.sampled_from(
    [None, "", "200", "150", "500", "750.25", "1000", "1000.01", "0", "-5", "abc", "10.001"]))
TICKS = st.sampled_from([0, 1, 59, 3600, 6 * 3600, 86400, 3 * 86400 + 1])
# biased towards the actor who may act, so that long valid paths are common
APPELLANTS = st.sampled_from([PERSON, PERSON, PERSON, AUDITOR_A, STAFF])
JUDGES = st.sampled_from([DECIDER, DECIDER, AUDITOR_A, AUDITOR_B, PERSON, STAFF])


class Lifecycle(RuleBasedStateMachine):
    """Random actions by random actors never leave a notice in an invalid state."""

    notices = Bundle("notices")

    @initialize()
    def start(self):
        self.now = START
        self.all: list[Notice] = []
        self.appeals: dict[int, R.AppealFacts] = {}
        self.decisions: dict[int, R.DecisionFacts] = {}
        self.seen_terminal: dict[int, Notice] = {}
        self.months: dict[int, str] = {}

    @precondition(lambda self: len(self.all) < 3)
    @rule(target=notices, rule_id=st.sampled_from(sorted(RULES)), manual=st.booleans(),
          proposer=st.sampled_from(sorted(ISSUERS)), amount=st.sampled_from([None, "200", "600"]))
    def draft(self, rule_id, manual, proposer, amount):
        notice = Notice(user_id=PERSON, rule_id=rule_id, source=R.MANUAL if manual else R.ASSESSMENT,
                        proposed_by_id=proposer if manual else None,
                        amount=None if amount is None else Decimal(amount))
        self.all.append(notice)
        return notice

    @rule(seconds=TICKS)
    def tick(self, seconds):
        self.now += timedelta(seconds=seconds)

    def _attempt(self, notice: Notice, action, allowed: bool):
        before = copy.copy(notice)
        try:
            result = action()
        except R.PenaltyRuleError:
            assert notice == before, "a refused action changed the notice"
            assert not allowed, f"refused an allowed action on {before}"
            return None
        assert allowed, f"allowed a forbidden action on {before}"
        return result

    @rule(notice=notices, actor=st.sampled_from(ACTORS), amount=AMOUNTS,
          mode=st.sampled_from(R.DEDUCTION_MODES))
    def publish(self, notice, actor, amount, mode):
        rule_ = RULES[notice.rule_id]
        if amount == VALID:
            amount = str(rule_.amount_max or Decimal("300"))
        chosen = notice.amount if amount in (None, "") else amount
        try:
            R.check_amount(rule_, chosen)
            amount_ok = True
        except R.PenaltyRuleError:
            amount_ok = False
        allowed = (notice.status == R.DRAFT and actor in ISSUERS and actor != notice.user_id
                   and not (notice.source == R.MANUAL and actor == notice.proposed_by_id)
                   and amount_ok)
        self._attempt(notice, lambda: R.publish(
            notice, actor_id=actor, may_issue=actor in ISSUERS, rule=rule_, amount=amount,
            now=self.now, zone=SHANGHAI, appeal_days=2, deduction_mode=mode), allowed)

    @rule(notice=notices, actor=st.sampled_from(ACTORS),
          reason=st.sampled_from(["", "", "", "false alarm"]))
    def discard(self, notice, actor, reason):
        allowed = notice.status == R.DRAFT and actor in ISSUERS and bool(reason)
        self._attempt(notice, lambda: R.discard(notice, actor_id=actor, may_issue=actor in ISSUERS,
                                                reason=reason, now=self.now), allowed)

    @rule(notice=notices, actor=APPELLANTS, text=st.sampled_from(["", "not me", "not me"]))
    def appeal(self, notice, actor, text):
        allowed = (notice.status == R.PUBLISHED and actor == notice.user_id
                   and self.now < notice.appeal_deadline and bool(text))
        facts = self._attempt(notice, lambda: R.appeal(notice, actor_id=actor, text=text,
                                                        now=self.now, zone=SHANGHAI), allowed)
        if facts is not None:
            self.appeals[id(notice)] = facts

    @rule(notice=notices, actor=JUDGES, outcome=st.sampled_from(R.OUTCOMES + ("x",)),
          amount=AMOUNTS, reason=st.sampled_from(["", "checked", "checked"]))
    def decide(self, notice, actor, outcome, amount, reason):
        if amount == VALID:
            amount = str((notice.amount or Decimal(1)) / 2) if notice.amount else "0"
        amount_ok = True
        if outcome == R.REDUCED:
            try:
                amount_ok = R.parse_amount(amount) < notice.amount
            except (R.PenaltyRuleError, TypeError):
                amount_ok = False
        allowed = (notice.status == R.APPEALED and actor in DECIDERS
                   and actor not in (notice.user_id, notice.published_by_id)
                   and not (notice.source == R.MANUAL and actor == notice.proposed_by_id)
                   and outcome in R.OUTCOMES and amount_ok and bool(reason))
        facts = self._attempt(notice, lambda: R.decide(
            notice, actor_id=actor, may_decide=actor in DECIDERS, outcome=outcome, amount=amount,
            reason=reason, now=self.now, zone=SHANGHAI), allowed)
        if facts is not None:
            self.decisions[id(notice)] = facts

    @rule(notice=notices)
    def sweep(self, notice):
        allowed = notice.status == R.PUBLISHED and self.now >= notice.appeal_deadline
        changed = R.finalise(notice, now=self.now, zone=SHANGHAI)
        assert changed == allowed

    def _step(self, name: str, notice: Notice, actor: int):
        """A valid attempt at one step by ``actor`` (what a tap on its button sends)."""
        rule_ = RULES[notice.rule_id]
        if name == "publish":
            return lambda: R.publish(notice, actor_id=actor, may_issue=actor in ISSUERS, rule=rule_,
                                     amount=str(rule_.amount_max or Decimal("300")), now=self.now,
                                     zone=SHANGHAI, appeal_days=2, deduction_mode=R.DEDUCT_ON_FINAL)
        if name == "discard":
            return lambda: R.discard(notice, actor_id=actor, may_issue=actor in ISSUERS, reason="dup",
                                     now=self.now)
        if name == "appeal":
            return lambda: R.appeal(notice, actor_id=actor, text="not me", now=self.now, zone=SHANGHAI)
        if name == "decide":
            return lambda: R.decide(notice, actor_id=actor, may_decide=actor in DECIDERS,
                                    outcome=R.UPHELD, amount=None, reason="checked", now=self.now,
                                    zone=SHANGHAI)
        return lambda: R.finalise(notice, now=self.now, zone=SHANGHAI) or None

    @rule(notice=notices, name=st.sampled_from(["publish", "discard", "appeal", "decide", "sweep"]),
          actors=st.tuples(st.sampled_from(ACTORS), st.sampled_from(ACTORS)))
    def same_step_twice_at_once(self, notice, name, actors):
        """Issue 24: two taps (or two people) send one step at the same moment.  The service
        takes the notice first (``portal.transitions.lock``), so they run one after the other
        and the second sees the first's change: the step happens at most once, and the one
        refused changes nothing."""
        done = 0
        for actor in actors:
            before = copy.copy(notice)
            try:
                result = self._step(name, notice, actor)()
            except R.PenaltyRuleError:
                assert notice == before, "a refused step changed the notice"
                continue
            if name == "sweep" and result is None:
                assert notice == before
                continue
            done += 1
            if name == "appeal":
                self.appeals[id(notice)] = result
            if name == "decide":
                self.decisions[id(notice)] = result
        assert done <= 1, f"{name} happened {done} times at once"

    @invariant()
    def every_notice_is_valid(self):
        for notice in getattr(self, "all", []):
            key = id(notice)
            assert notice.status in R.STATUSES
            if notice.status in R.ISSUED:
                assert notice.published_at and notice.appeal_deadline and notice.published_by_id
                assert notice.amount is not None and notice.amount >= 0
                R.check_amount(RULES[notice.rule_id], notice.amount)  # issued inside the range
                assert notice.published_by_id in ISSUERS
                assert notice.published_by_id != notice.user_id
                if notice.source == R.MANUAL:
                    assert notice.published_by_id != notice.proposed_by_id
                assert notice.appeal_deadline == R.appeal_deadline(notice.published_at, SHANGHAI, 2)
            else:
                assert notice.published_at is None and notice.final_at is None
            if notice.status in (R.FINAL, R.WITHDRAWN):
                assert notice.final_amount is not None and notice.final_at is not None
                assert Decimal(0) <= notice.final_amount <= notice.amount
            if notice.status == R.WITHDRAWN:
                assert notice.final_amount == 0 and key in self.decisions
            if notice.status == R.FINAL and notice.deduction_mode == R.DEDUCT_ON_FINAL:
                assert notice.payroll_month == R.month_of(notice.final_at, SHANGHAI)
                assert notice.payroll_amount == notice.final_amount
            if notice.deduction_mode == R.DEDUCT_ON_PUBLISHED:
                assert notice.payroll_month == R.month_of(notice.published_at, SHANGHAI)
            if notice.status in (R.APPEALED, R.FINAL, R.WITHDRAWN) and key in self.appeals:
                assert self.appeals[key].submitted_at < notice.appeal_deadline
            if notice.status == R.APPEALED:
                assert key in self.appeals
            if key in self.decisions:
                decision = self.decisions[key]
                assert key in self.appeals
                assert decision.decided_by_id not in (notice.user_id, notice.published_by_id)
                assert decision.reason
                assert decision.amount == notice.final_amount
                if decision.outcome == R.REDUCED:
                    assert decision.amount < notice.amount
            elif notice.status == R.FINAL:  # final without a decision: the window ran out
                assert notice.final_at == notice.appeal_deadline and key not in self.appeals
            # a deduction month, once set, never moves
            if notice.payroll_month is not None:
                assert self.months.setdefault(key, notice.payroll_month) == notice.payroll_month
            # nothing leaves a terminal state
            if key in self.seen_terminal:
                assert notice == self.seen_terminal[key]
            elif notice.status in R.TERMINAL:
                self.seen_terminal[key] = copy.copy(notice)


TestCore03PenaltyLifecycle = Lifecycle.TestCase
TestCore03PenaltyLifecycle.settings = settings(max_examples=300, stateful_step_count=80, deadline=None,
                                  suppress_health_check=[HealthCheck.too_slow])
