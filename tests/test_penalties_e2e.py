"""End to end with the test plugin: event → draft → published → appealed → decided → payroll (CORE-03..05).

The test plugin's ``portal_assess_penalties`` proposes the TST-P01 draft and its
``portal_penalty_issued`` is told of the publication.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.db_types import utcnow
from portal.extensions import db
from portal.penalties import payroll as P
from portal.penalties import rules as R
from portal.penalties import service
from portal.penalties.models import PenaltyNotice
from portal.testing import make_user
from tests import testplug
from tests.penalty_support import cast, late_reply, local


def test_core_03_event_to_payroll_through_the_service(app, tree):
    people = cast(tree)
    testplug.ISSUED.clear()
    [notice] = service.record_event(late_reply(tree["north"], people["sam"], local(2026, 11, 9, 15)))
    db.session.commit()
    service.publish(notice, people["ida"], now=local(2026, 11, 10, 10))
    service.appeal(notice, people["sam"], "the customer called twice", now=local(2026, 11, 12, 23))
    service.decide(notice, people["ivy"], R.REDUCED, "one call was outside hours", amount="120",
                   now=local(2026, 11, 16, 9))
    db.session.commit()
    assert (notice.status, notice.final_amount, notice.payroll_month) == (
        R.FINAL, Decimal("120.00"), "2026-11")
    assert [d.rule_id for d in testplug.ISSUED] == ["TST-P01"]
    [line] = P.lines("2026-11")
    assert (line.notice_id, line.username, line.rule_id, line.amount) == (
        notice.id, "sam", "TST-P01", Decimal("120.00"))
    assert list(P.lines("2026-12")) == []


def test_core_03_event_to_payroll_over_http(client, app, tree):
    people = cast(tree, maker=make_user)
    [draft] = service.record_event(late_reply(tree["north"], people["sam"], utcnow(),
                                              evidence="ticket 42: reply after 47 minutes"))
    db.session.commit()
    nid = draft.id

    client.login("ida")  # the auditor sees the proposal in the ledger and publishes it
    assert f'href="/penalties/{nid}"' in client.get("/penalties/ledger?status=draft").get_data(as_text=True)
    assert client.post_form(f"/penalties/{nid}/publish", {"amount": "200"}).status_code == 302
    client.post_form("/logout")

    client.login("sam")  # the person reads the notice in the inbox and appeals in time
    assert "TST-P01" in client.get("/penalties/inbox").get_data(as_text=True)
    appealed = client.post_form(f"/penalties/{nid}/appeal", {"text": "the customer hung up twice"},
                                htmx=True)
    assert appealed.status_code == 200
    client.post_form("/logout")

    client.login("ivy")  # a third person decides
    decided = client.post_form(f"/penalties/{nid}/decide",
                               {"outcome": "reduced", "amount": "100", "reason": "partly justified"})
    assert decided.status_code == 302
    db.session.expire_all()
    notice = db.session.get(PenaltyNotice, nid)
    assert (notice.status, notice.final_amount) == (R.FINAL, Decimal("100.00"))
    assert notice.published_by_id == people["ida"].id and notice.decision.decided_by_id == people["ivy"].id
    client.post_form("/logout")

    client.login("max")  # the manager exports the month's statement
    month = notice.payroll_month
    assert month == R.month_of(notice.final_at, local(2026, 1, 1).tzinfo)
    export = client.get(f"/penalties/payroll/export?month={month}&unit={tree['region'].id}&format=csv")
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(export.get_data().decode("utf-8-sig"))))
    assert len(rows) == 2
    assert (rows[1][3], rows[1][5], rows[1][6], rows[1][-1]) == ("sam", str(nid), "TST-P01", "100.00")

    trail = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.object_type == "penalty_notice", AuditEntry.object_id == str(nid))
        .order_by(AuditEntry.id)).all()
    assert trail == ["penalty.drafted", "penalty.published", "penalty.appealed", "penalty.decided"]
