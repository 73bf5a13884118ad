"""The penalty ledger over HTTP: my penalties, appeals, drafting, deciding, lists, inbox (CORE-03..06)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.db_types import utcnow
from portal.extensions import db
from portal.penalties import rules as R
from portal.penalties import service
from portal.penalties.models import InboxMessage, PenaltyNotice
from portal.testing import make_user
from tests.penalty_support import cast, drafted, late_reply, local, published


@pytest.fixture
def people(tree):
    return cast(tree, maker=make_user)


def _fresh(notice_id: int) -> PenaltyNotice:
    db.session.expire_all()
    return db.session.get(PenaltyNotice, notice_id)


def _now_published(tree, people, **kwargs):
    return published(tree, people, utcnow() - timedelta(minutes=5), **kwargs)


def test_core_04_my_penalties_lists_my_issued_notices_only(client, tree, people):
    mine = _now_published(tree, people, evidence="ticket 11 answered after 50 min")
    draft = drafted(tree, people["sam"], local(2026, 11, 1, 9), evidence="draft only")
    [other] = service.record_event(late_reply(tree["north"], people["ivy"], local(2026, 11, 1, 9)))
    service.publish(other, people["ida"], now=utcnow())
    db.session.commit()
    client.login("sam")
    page = client.get("/penalties/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'href="/penalties/{mine.id}"' in html
    assert f'href="/penalties/{draft.id}"' not in html and f'href="/penalties/{other.id}"' not in html
    detail = client.get(f"/penalties/{mine.id}").get_data(as_text=True)
    assert "ticket 11 answered after 50 min" in detail
    last = R.last_appeal_moment(mine.appeal_deadline, local(2026, 1, 1).tzinfo)
    assert last.strftime("%Y-%m-%d %H:%M:%S") in detail  # the countdown's end, local time
    assert 'hx-trigger="every 60s"' in detail and 'name="text"' in detail  # the appeal form
    countdown = client.get(f"/penalties/{mine.id}/countdown", headers={"HX-Request": "true"})
    assert countdown.status_code == 200 and "<html" not in countdown.get_data(as_text=True)
    # another person's notice and a draft: as if they did not exist
    assert client.get(f"/penalties/{other.id}").status_code == 404
    assert client.get(f"/penalties/{draft.id}").status_code == 404
    assert client.get("/penalties/999999").status_code == 404


def test_core_04_appeal_over_http_in_time_and_too_late(client, tree, people):
    on_time = _now_published(tree, people)
    too_late = published(tree, people, utcnow() - timedelta(days=5))
    client.login("sam")
    response = client.post_form(f"/penalties/{on_time.id}/appeal", {"text": "I replied at 14:10"},
                                htmx=True)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body and "I replied at 14:10" in body
    assert _fresh(on_time.id).status == R.APPEALED
    refused = client.post_form(f"/penalties/{too_late.id}/appeal", {"text": "late"})
    assert refused.status_code == 400
    last = R.last_appeal_moment(too_late.appeal_deadline, local(2026, 1, 1).tzinfo)
    html = refused.get_data(as_text=True)
    assert re.search(r'id="text-error">[^<]*' + re.escape(last.strftime("%Y-%m-%d %H:%M:%S")), html)
    assert _fresh(too_late.id).status == R.PUBLISHED
    # no CSRF token: refused, nothing written
    third = _now_published(tree, people, evidence="third")
    assert client.post(f"/penalties/{third.id}/appeal", data={"text": "x"}).status_code == 400
    assert _fresh(third.id).status == R.PUBLISHED
    # someone else cannot appeal for sam
    client.post_form("/logout")
    client.login("ivy")
    assert client.post_form(f"/penalties/{third.id}/appeal", {"text": "x"}).status_code == 400
    assert _fresh(third.id).status == R.PUBLISHED


def test_core_03_auditor_drafts_with_range_check_and_another_publishes(client, tree, people):
    client.login("ida")
    form = client.get("/penalties/new").get_data(as_text=True)
    assert "(sam)" in form and "TST-P02" in form and "(cal)" not in form  # people in scope only
    data = {"unit_id": tree["north"].id, "user_id": people["sam"].id, "rule_id": "TST-P02",
            "amount": "300", "occurred_at": "2026-11-09T14:30", "evidence": "complaint no. 5, second"}
    refused = client.post_form("/penalties/new", data)
    assert refused.status_code == 400
    assert re.search(r'id="amount-error">[^<]*500\.00[^<]*1000\.00', refused.get_data(as_text=True))
    assert db.session.scalar(select(PenaltyNotice)) is None
    created = client.post_form("/penalties/new", {**data, "amount": "600"})
    assert created.status_code == 302
    notice = db.session.scalar(select(PenaltyNotice))
    assert (notice.source, notice.proposed_by_id, notice.amount, notice.status) == (
        R.MANUAL, people["ida"].id, Decimal("600.00"), R.DRAFT)
    assert notice.occurred_at == local(2026, 11, 9, 14, 30)  # the unit's local time
    # the proposer cannot publish it
    own = client.post_form(f"/penalties/{notice.id}/publish", {"amount": "600"})
    assert own.status_code == 400 and _fresh(notice.id).status == R.DRAFT
    client.post_form("/logout")
    client.login("ivy")
    wrong = client.post_form(f"/penalties/{notice.id}/publish", {"amount": "1001"})
    assert wrong.status_code == 400 and 'id="amount-error"' in wrong.get_data(as_text=True)
    done = client.post_form(f"/penalties/{notice.id}/publish", {"amount": "750"})
    assert done.status_code == 302
    notice = _fresh(notice.id)
    assert (notice.status, notice.amount, notice.published_by_id) == (
        R.PUBLISHED, Decimal("750.00"), people["ivy"].id)
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.object_type == "penalty_notice")).all()
    assert actions == ["penalty.drafted", "penalty.published"]


def test_core_03_decision_over_http_reaches_the_inbox(client, tree, people):
    notice = _now_published(tree, people)
    service.appeal(notice, people["sam"], "not me")
    db.session.commit()
    client.login("ida")  # the issuer
    refused = client.post_form(f"/penalties/{notice.id}/decide",
                               {"outcome": "reduced", "amount": "50", "reason": "ok"})
    assert refused.status_code == 400 and _fresh(notice.id).status == R.APPEALED
    client.post_form("/logout")
    client.login("ivy")
    page = client.get(f"/penalties/{notice.id}").get_data(as_text=True)
    assert 'name="outcome"' in page
    no_reason = client.post_form(f"/penalties/{notice.id}/decide", {"outcome": "reduced", "amount": "50"})
    assert no_reason.status_code == 400 and 'id="reason-error"' in no_reason.get_data(as_text=True)
    higher = client.post_form(f"/penalties/{notice.id}/decide",
                              {"outcome": "reduced", "amount": "250", "reason": "r"})
    assert higher.status_code == 400 and 'id="amount-error"' in higher.get_data(as_text=True)
    done = client.post_form(f"/penalties/{notice.id}/decide",
                            {"outcome": "reduced", "amount": "50", "reason": "first offence"})
    assert done.status_code == 302
    assert (_fresh(notice.id).status, _fresh(notice.id).final_amount) == (R.FINAL, Decimal("50.00"))
    client.post_form("/logout")
    client.login("sam")
    header = client.get("/penalties/").get_data(as_text=True)
    unread = service.unread_count(people["sam"].id)
    assert unread == 2  # published, decided
    assert re.search(r'class="inbox-link"[^>]*>[^<]*<span class="badge[^"]*"[^>]*>2</span>', header)
    inbox = client.get("/penalties/inbox").get_data(as_text=True)
    assert "first offence" in inbox
    message = db.session.scalar(select(InboxMessage).where(InboxMessage.kind == "penalty.decided"))
    opened = client.post_form(f"/penalties/inbox/{message.id}/read", {"open": "1"})
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/penalties/{notice.id}")
    assert service.unread_count(people["sam"].id) == 1
    client.post_form("/penalties/inbox/read-all")
    assert service.unread_count(people["sam"].id) == 0
    assert 'class="badge' not in client.get("/penalties/inbox").get_data(as_text=True).split(
        'class="inbox-link"')[1].split("</a>")[0]


def test_core_01_inbox_of_someone_else_is_404(client, tree, people):
    notice = _now_published(tree, people)
    message = db.session.scalar(select(InboxMessage).where(InboxMessage.user_id == people["sam"].id))
    client.login("cal")
    assert client.post_form(f"/penalties/inbox/{message.id}/read").status_code == 404
    assert db.session.get(InboxMessage, message.id).read_at is None
    assert notice.id


def test_core_01_ledger_and_actions_are_scoped_and_permissioned(client, tree, people):
    north = _now_published(tree, people)
    dan = make_user("dan", (tree["company"], "auditor"))
    [club] = service.record_event(late_reply(tree["club"], people["cal"], local(2026, 11, 3, 9)))
    db.session.commit()
    client.login("cal")  # staff: no ledger, no drafting, no payroll
    for path in ("/penalties/ledger", "/penalties/new", "/penalties/payroll", "/penalties/repeat"):
        assert client.get(path).status_code == 403
    client.post_form("/logout")
    client.login("ida")  # auditor of the region: the club is outside
    ledger = client.get("/penalties/ledger").get_data(as_text=True)
    assert f'href="/penalties/{north.id}"' in ledger and f'href="/penalties/{club.id}"' not in ledger
    assert client.get(f"/penalties/{club.id}").status_code == 404
    assert client.post_form(f"/penalties/{club.id}/publish", {"amount": "200"}).status_code == 404
    assert _fresh(club.id).status == R.DRAFT
    client.post_form("/logout")
    client.login("max")  # manager: sees the ledger, may not publish
    assert client.get("/penalties/ledger").status_code == 200
    assert client.post_form(f"/penalties/{north.id}/decide", {"outcome": "upheld"}).status_code == 403
    assert dan.id


def test_core_03_ledger_filters_and_counts(client, tree, people):
    for day in (2, 4):
        published(tree, people, local(2026, 11, day, 10))
    drafted(tree, people["sam"], local(2026, 10, 5, 9), evidence="october draft")
    manual = service.create_manual(unit=tree["north"], person=people["sam"], rule_id="TST-P02",
                                   evidence="x", occurred_at=local(2026, 11, 6, 9),
                                   proposer=people["ida"], amount="500")
    db.session.commit()
    client.login("max")

    def results(query: str) -> str:
        response = client.get(f"/penalties/ledger?{query}", headers={"HX-Request": "true"})
        assert response.status_code == 200
        return response.get_data(as_text=True)

    everything = results("")
    assert "<html" not in everything and everything.count('href="/penalties/') == 4
    assert re.search(r"<td>TST-P01</td><td class=\"num\">3</td>", everything)
    assert re.search(r"<td>TST-P02</td><td class=\"num\">1</td>", everything)
    assert results("rule=TST-P02").count('href="/penalties/') == 1
    assert f'href="/penalties/{manual.id}"' in results("rule=TST-P02")
    assert results("status=draft").count('href="/penalties/') == 2
    assert results("month=2026-11").count('href="/penalties/') == 3
    assert results("month=2026-10&status=draft").count('href="/penalties/') == 1
    assert results("person=sam&status=published").count('href="/penalties/') == 2
    assert results(f"unit={tree['club'].id}").count('href="/penalties/') == 4  # not in scope: ignored
    bad = client.get("/penalties/ledger?month=11-2026")
    assert bad.status_code == 400


def test_core_06_repeat_offenders_page(client, tree, people):
    for day in (2, 4, 6):
        published(tree, people, local(2026, 11, day, 10))
    client.login("ida")
    page = client.get("/penalties/repeat").get_data(as_text=True)
    assert "sam" in page.lower() and "dismissal required" in page
    assert re.search(r'<td class="num">3</td>', page)


def test_core_05_payroll_page_and_scope(client, tree, people):
    notice = published(tree, people, local(2026, 11, 2, 10))
    service.finalise_due(local(2026, 11, 10))
    db.session.commit()
    client.login("max")
    page = client.get(f"/penalties/payroll?month=2026-11&unit={tree['north'].id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'href="/penalties/{notice.id}"' in html and "200.00" in html
    assert client.get("/penalties/payroll?month=2026-13").status_code == 400
    assert client.get(f"/penalties/payroll?month=2026-11&unit={tree['club'].id}").status_code == 404
    assert client.get(
        f"/penalties/payroll/export?month=2026-11&unit={tree['club'].id}&format=csv").status_code == 404
    assert client.get("/penalties/payroll/export?month=2026-11&format=pdf").status_code == 400


def test_core_03_a_fixed_fine_is_shown_read_only_when_publishing(app, client):
    """The amount of a fixed rule is the unit's setting: the issuer sees it, cannot type another."""
    from portal.penalties import service
    from portal.testing import make_unit, make_user

    unit = make_unit("st", kind="station", plugins={"express": True})
    person = make_user("pat", (unit, "staff"))
    proposer = make_user("ann", (unit, "auditor"))
    make_user("ben", (unit, "auditor"), locale="en")
    notice = service.create_manual(unit=unit, person=person, rule_id="EXP-R14", evidence="forwarded to the VP",
                                   occurred_at=utcnow(), proposer=proposer)
    db.session.commit()
    client.login("ben")
    page = client.get(f"/penalties/{notice.id}").get_data(as_text=True)
    amount = re.search(r'<input[^>]*name="amount"[^>]*>', page).group(0)
    assert "readonly" in amount and 'value="100.00"' in amount
    assert "Fixed by the rule" in page
