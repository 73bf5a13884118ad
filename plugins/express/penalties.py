"""Which penalty an express event proposes (the core's assessment hook; drafts only, CORE-03).

* ``express.complaint_verified`` — a complaint verified by inspection: the rule of its kind
  (EXP-P02, P03, P04 / P04-M, P06, P07) against the person it names.
* ``express.p05_response.breached`` — the station manager did not answer a 质控部 penalty
  notice in time (EXP-P05), charged to the manager who held the response.

Late replies (EXP-R09/R10) are not fined: they are counted per person and station each
month for appraisal (EXP-R13, P01).  A refused 越级 forward is logged, and an auditor
may turn it into EXP-R14 by hand — never automatically (see the readings).
"""

from __future__ import annotations

from portal.plugin_api import DomainEvent, PenaltyDraft

# complaint kind → rule (None: recorded and verified, no fine — R15 reports, P06 without refusal)
COMPLAINT_RULES = {
    "quality": "EXP-P02",
    "abuse": "EXP-P03",
    "attitude_staff": "EXP-P04",
    "attitude_manager": "EXP-P04-M",
    "regulator": "EXP-P06",
    "secondary": "EXP-P07",
    "inaction": None,
}


def assess(event: DomainEvent) -> list[PenaltyDraft]:
    if event.name == "express.complaint_verified":
        rule = event.data.get("rule")
        if not rule or event.subject_user_id is None:
            return []
        return [PenaltyDraft(rule, event.unit_id, event.subject_user_id, event.occurred_at,
                             evidence=event.data.get("evidence", ""))]
    if event.name == "express.p05_response.breached" and event.subject_user_id is not None:
        return [PenaltyDraft("EXP-P05", event.unit_id, event.subject_user_id, event.occurred_at,
                             evidence=event.data.get("evidence", ""))]
    return []
