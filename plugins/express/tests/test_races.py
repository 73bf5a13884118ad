"""Issue 24: the ladder's steps are safe against double taps and two people at once.

Real concurrent requests through the app: two threads, each with its own test client (its
own login), released together by a barrier (``portal.testing.concurrently``), repeated as
many times as fit in a couple of seconds (``race_rounds``).  On every round: no 5xx, at most
one row where the regulation allows one, and the loser gets the message a late tap gets.
"""

from __future__ import annotations

import html
import re
import uuid
from itertools import count

import pytest
from sqlalchemy import func, select

from plugins.express import service as svc
from plugins.express.models import CLOSED, CustomerUpdate, Hop, Inquiry
from plugins.express.tests.conftest import T0, minutes
from portal.audit import AuditEntry
from portal.extensions import db
from portal.submissions import FIELD
from portal.testing import Tab, concurrently, make_user, race_rounds

_waybills = count(1)


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def statuses(results) -> list:
    """Each answer's status; an exception the app let through counts as a 500."""
    return [r.status_code if hasattr(r, "status_code") else 500 for r in results]


def no_server_error(results) -> None:
    assert all(s < 500 for s in statuses(results)), [repr(r) if isinstance(r, BaseException) else s
                                                    for r, s in zip(results, statuses(results))]


def fresh_inquiry(net, at=T0) -> Inquiry:
    inquiry = svc.take_inquiry(net.pudong, net.amy, waybill=f"6009{next(_waybills):08d}",
                               inquirer_name="Mr Wang", inquirer_phone="13812345678", at=at)
    db.session.commit()
    return inquiry


def rows(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def audit_count(action: str, object_id) -> int:
    return rows(AuditEntry, AuditEntry.action == action, AuditEntry.object_id == str(object_id))


def test_exp_r03_forward_twice_at_once_sends_one_request(app, net):
    tabs = [Tab(app, "amy"), Tab(app, "amy")]
    data = {"forward-target": str(net.minhang.id), "forward-message": "Please check."}
    for _ in race_rounds():
        inquiry = fresh_inquiry(net)
        results = concurrently(app, *(t.post(f"/express/{inquiry.id}/forward", data) for t in tabs))
        no_server_error(results)
        assert rows(Hop, Hop.inquiry_id == inquiry.id) == 1
        assert audit_count("express.forward_sent", db.session.scalar(
            select(Hop.id).where(Hop.inquiry_id == inquiry.id))) == 1
        refused = [r for r in results if r.status_code == 400]
        assert len(refused) <= 1
        for response in refused:  # the message a late second tap gets
            assert "The inquiry is already with the destination station." in text_of(response)


def test_exp_r05_two_different_replies_at_once_one_is_stored_the_other_names_who_answered(app, net):
    net.users["bea"] = make_user("bea", (net.minhang, "staff"), locale="en", display_name="Bea")
    bob, bea = Tab(app, "bob"), Tab(app, "bea")
    for _ in race_rounds():
        inquiry = fresh_inquiry(net)
        hop = svc.forward(inquiry, net.amy, net.minhang, at=T0 + minutes(2))
        db.session.commit()
        path = f"/express/{inquiry.id}/hops/{hop.id}/reply"
        results = concurrently(
            app, bob.post(path, {f"reply{hop.id}-outcome": "found", f"reply{hop.id}-text": "On the shelf."}),
            bea.post(path, {f"reply{hop.id}-outcome": "not_found", f"reply{hop.id}-text": "Not here."}))
        no_server_error(results)
        assert sorted(statuses(results)) == [302, 400], statuses(results)
        db.session.expire_all()
        stored = db.session.get(Hop, hop.id)
        winner = "Bob" if stored.outcome == "found" else "Bea"
        assert stored.replied_by.display_name == winner
        assert audit_count("express.hop_replied", hop.id) == 1
        # the inquiry's result agrees with the one reply stored
        assert db.session.get(Inquiry, inquiry.id).result == ("found" if stored.outcome == "found" else None)
        [loser] = [r for r in results if r.status_code == 400]
        assert f"{winner} already answered this request at" in text_of(loser)


def test_exp_r09_result_twice_at_once_closes_once_without_500(app, net):
    tabs = [Tab(app, "amy"), Tab(app, "amy")]
    data = {"customer-kind": "result", "customer-text": "Delivered to the neighbour."}
    for _ in race_rounds():
        inquiry = fresh_inquiry(net, at=T0)  # the customer's clock is long breached: met late
        results = concurrently(app, *(t.post(f"/express/{inquiry.id}/customer", data) for t in tabs))
        no_server_error(results)
        assert rows(CustomerUpdate, CustomerUpdate.inquiry_id == inquiry.id) == 1
        assert audit_count("express.inquiry_closed", inquiry.id) == 1
        assert db.session.get(Inquiry, inquiry.id).status == CLOSED
        for response in results:
            if response.status_code == 400:
                assert "This inquiry is closed." in text_of(response)


@pytest.mark.parametrize("same_form", [True, False])
def test_exp_r01_intake_twice_at_once_opens_one_inquiry(app, net, same_form):
    """The same rendered form (one submission key): both taps land on the one inquiry.  Two
    forms typed alike (no key): the second is asked whether it is another call."""
    tabs = [Tab(app, "amy"), Tab(app, "amy")]
    for _ in race_rounds():
        data = {"waybill": f"6008{next(_waybills):08d}", "inquirer_name": "Mr Li",
                "inquirer_phone": "13812345678", "partner_id": "0"}
        if same_form:
            data[FIELD] = uuid.uuid4().hex
        results = concurrently(app, *(t.post("/express/new", data) for t in tabs))
        no_server_error(results)
        assert rows(Inquiry, Inquiry.waybill == data["waybill"]) == 1
        if same_form:
            assert statuses(results) == [302, 302] and results[0].location == results[1].location
        else:
            assert sorted(statuses(results)) == [302, 400]


def test_exp_r01_a_second_intake_of_the_waybill_within_the_window_asks_first(net, client):
    client.login("amy")
    data = {"waybill": "600812345678", "inquirer_name": "Mr Li", "inquirer_phone": "13812345678",
            "partner_id": "0"}
    first = client.post_form("/express/new", data)
    assert first.status_code == 302
    again = client.post_form("/express/new", data)
    assert again.status_code == 400
    page = text_of(again)
    assert re.search(r'id="confirm_repeat-error">Amy opened inquiry no\. \d+ about this waybill at', page)
    assert 'value="Mr Li"' in page  # what was typed stays
    assert rows(Inquiry, Inquiry.waybill == data["waybill"]) == 1
    confirmed = client.post_form("/express/new", {**data, "confirm_repeat": "y"})
    assert confirmed.status_code == 302
    assert rows(Inquiry, Inquiry.waybill == data["waybill"]) == 2


@pytest.mark.parametrize("minutes_set, asked", [("0", False), ("5", True)])
def test_exp_r01_the_repeat_window_is_a_unit_setting(net, minutes_set, asked):
    from datetime import date

    from portal.settings import models as settings

    settings.change(net.pudong, svc.REPEAT_WINDOW, minutes_set, date(2026, 1, 1), net.root)
    db.session.commit()
    fresh_inquiry_at = T0
    svc.take_inquiry(net.pudong, net.amy, waybill="600812345600", inquirer_name="A",
                     inquirer_phone="13812345678", at=fresh_inquiry_at)
    db.session.commit()
    if asked:
        with pytest.raises(svc.ExpressError) as refused:
            svc.take_inquiry(net.pudong, net.amy, waybill="600812345600", inquirer_name="A",
                             inquirer_phone="13812345678", at=T0 + minutes(4))
        assert refused.value.field == "confirm_repeat"
        db.session.rollback()
    else:
        svc.take_inquiry(net.pudong, net.amy, waybill="600812345600", inquirer_name="A",
                         inquirer_phone="13812345678", at=T0 + minutes(4))
        db.session.commit()
    # after the window nobody is asked
    svc.take_inquiry(net.pudong, net.amy, waybill="600812345600", inquirer_name="A",
                     inquirer_phone="13812345678", at=T0 + minutes(6))
    db.session.commit()
