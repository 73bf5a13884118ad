"""Issue 24: every POST route of the core and the plugins, posted twice at the same moment with
the same rendered form, answers without a 5xx and stores no row twice.

The routes are read from ``app.url_map`` (every rule that accepts POST, the test plugin's
aside), so a new route is covered as soon as it exists.  One world of records serves them all
(the express network of ``plugins/express/tests`` plus penalty notices, a notice-board notice,
a calendar day, a membership…); for each route the test

* logs in two tablets as the person who would post there (``Tab``),
* finds the route's form on the pages of its blueprint and fills it with valid values (the
  bad-input sweep's helpers), with one submission key — the same rendered form,
* posts it from both tablets at once (``concurrently``) and checks both answers are below 500
  and that no table gained more than one row (one post of any of these forms adds at most one
  row to a table; audit entries, sessions, login attempts and submission keys aside).

Routes run in an order that leaves the closing steps (the customer's result, logging out, a
changed password) to the end, so the steps before them find their records open.
"""

from __future__ import annotations

import io
import re
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from plugins.express.tests.conftest import net  # noqa: F401 - fixtures used by ``world``
from plugins.express.tests.test_bad_input import (  # noqa: F401
    Form,
    FormParser,
    World,
    actor_for,
    base,
    path_of,
    world,
)
from plugins.express import service as svc
from portal.auth.models import Membership
from portal.db_types import utcnow
from portal.extensions import db
from portal.penalties import service as penalties
from portal.plugin_api import DomainEvent  # noqa: F401
from portal.sla.models import CalendarDay
from portal.submissions import FIELD
from portal.testing import PASSWORD, Tab, concurrently, make_user
from portal.units.models import set_plugin

SKIPPED = {"testplug.probe_change"}  # the test plugin's probe of sealed rows needs a table of its own
LAST = ["express.customer", "express.signed", "penalties.inbox_read_all", "auth.switch_unit",
        "auth.set_language", "admin.user_password", "auth.change_password", "auth.logout", "auth.login"]
UNCOUNTED = {"audit_entries", "audit_head", "user_sessions", "login_attempts", "form_submissions"}


def post_rules(app) -> list:
    rules = [r for r in app.url_map.iter_rules() if "POST" in r.methods and r.endpoint not in SKIPPED]
    return sorted(rules, key=lambda r: (LAST.index(r.endpoint) if r.endpoint in LAST else -1, r.rule))


def counts() -> dict[str, int]:
    db.session.expire_all()
    return {t.name: db.session.scalar(select(func.count()).select_from(t))
            for t in db.metadata.sorted_tables if t.name not in UNCOUNTED}


def _manual_draft(net, person, occurred_minutes_ago: int):
    notice = penalties.create_manual(unit=net.pudong, person=person, rule_id="EXP-P07",
                                     evidence="Second complaint about one parcel.",
                                     occurred_at=utcnow() - timedelta(minutes=occurred_minutes_ago),
                                     proposer=net.ada, amount="600")
    db.session.commit()
    return notice


@pytest.fixture
def core_world(net, world: World) -> World:  # noqa: F811
    """The express world plus the core's records: notices in each state of the penalty
    lifecycle for amy, a board notice, a calendar day, a user and a role to change."""
    to_publish = _manual_draft(net, net.amy, 60)
    to_discard = _manual_draft(net, net.amy, 61)
    to_appeal = _manual_draft(net, net.amy, 62)
    penalties.publish(to_appeal, net.aldo, amount="600")
    to_decide = _manual_draft(net, net.amy, 63)
    penalties.publish(to_decide, net.aldo, amount="600")
    db.session.commit()
    penalties.appeal(to_decide, net.amy, "The second complaint was about another parcel.")
    db.session.commit()
    set_plugin(net.acme, "notices", True)
    from plugins.notices.models import Notice

    board = Notice(unit_id=net.acme.id, title="Holiday hours", body="Closed on Monday.",
                   visible_until=date.today() + timedelta(days=30), author_id=net.root.id)
    day = CalendarDay(unit_id=net.acme.id, day=date(2031, 1, 6), kind="holiday", note="closed",
                      created_by_id=net.root.id)
    target = make_user("tom", (net.minhang, "staff"), locale="en")
    db.session.add_all([board, day])
    db.session.commit()
    membership = db.session.scalar(select(Membership).where(Membership.user_id == target.id))
    signed = svc.take_inquiry(net.pudong, net.amy, waybill="600123456722", inquirer_name="Ms Lu",
                              inquirer_phone="13812345677", at=utcnow() - timedelta(minutes=3))
    db.session.commit()
    message = db.session.scalars(select(penalties.InboxMessage).where(
        penalties.InboxMessage.user_id == net.amy.id)).first()
    world.by_endpoint.update({
        "penalties.publish": {"notice_id": to_publish.id},
        "penalties.discard": {"notice_id": to_discard.id},
        "penalties.appeal": {"notice_id": to_appeal.id},
        "penalties.decide": {"notice_id": to_decide.id},
        "penalties.inbox_read": {"message_id": message.id},
        "notices.acknowledge": {"notice_id": board.id},
        "notices.withdraw": {"notice_id": board.id},
        "sla.calendar_delete": {"day_id": day.id},
        "admin.unit_plugin_toggle": {"unit_id": net.pudong.id},
        "express.signed": {"inquiry_id": signed.id},
    })
    world.path.update({"user_id": target.id, "membership_id": membership.id, "key": "express.reply_minutes",
                       "name": "notices", "day_id": day.id, "message_id": message.id})
    world.valid.update({"username": "newcomer", "code": "newunit", "password": "another-long-pass-42",
                        "new_password": "another-long-pass-42", "confirm": "another-long-pass-42",
                        "current_password": PASSWORD, "value": "45", "state": "off",
                        "effective_from": (date.today() + timedelta(days=1)).isoformat(),
                        "title": "Notice", "body": "Text", "reason": "Checked twice.", "day": "2031-01-07",
                        "text": "I answered in time.", "outcome": "upheld", "amount": "600",
                        "evidence": "Seen on camera.", "address": "127.0.0.1", "role": "staff",
                        "rule_id": "EXP-P07"})
    return world


def copy(data: dict) -> dict:
    """The same form for another tablet: a file field gets its own file object, same bytes."""
    return {k: (io.BytesIO(v[0].getvalue()), v[1]) if isinstance(v, tuple) else v for k, v in data.items()}


def actor(rule) -> str:
    if rule.endpoint.startswith("express."):
        return actor_for(rule)
    return {"penalties.appeal": "amy", "penalties.inbox_read": "amy", "penalties.inbox_read_all": "amy",
            "penalties.publish": "ada", "penalties.discard": "ada", "penalties.new": "ada",
            "penalties.decide": "root", "notices.acknowledge": "amy"}.get(rule.endpoint, "root")


def ids_for(rule, world: World) -> dict:
    return {**world.path, **world.by_endpoint.get(rule.endpoint, {})}


def pages_for(app, rule, ids: dict) -> list[str]:
    """The pages of the route's blueprint (paths from the same records), the route's own path
    first (a form that posts to the page it is on)."""
    blueprint = rule.endpoint.split(".")[0]
    if "hop_id" in rule.arguments:  # a request's forms are on its inquiry's page
        ids = {**ids, "inquiry_id": ids["hop_inquiry_id"]}
    out = []
    for page in app.url_map.iter_rules():
        if page.endpoint.split(".")[0] != blueprint or "GET" not in page.methods:
            continue
        if page.arguments - set(ids) - {"kind"}:
            continue
        out.append(path_of(page, ids))
    own = path_of(rule, ids) if "GET" in rule.methods else None
    return sorted(set(out), key=lambda p: (p != own, p))


def form_for(tab: Tab, pages: list[str], path: str) -> Form | None:
    for page in pages:
        response = tab.client.get(page)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        parser = FormParser(page)
        parser.feed(response.get_data(as_text=True))
        for form in parser.forms:
            if form.action == path:
                return form
    return None


def test_every_post_route_twice_at_once_answers_below_500_and_stores_no_row_twice(app, net, core_world):
    """The same rendered form (one submission key) posted twice at once."""
    sweep(app, core_world, keyed=True)


def test_every_post_route_raced_without_a_submission_key_answers_below_500(app, net, core_world):
    """Two posts alike without a key (a script, two forms typed alike): the steps themselves
    are safe — a lock, a conditional write or a constraint refuses the second, never a 500."""
    sweep(app, core_world, keyed=False)


def sweep(app, world: World, keyed: bool) -> None:
    problems: list[str] = []
    tabs: dict[str, list[Tab]] = {}
    for rule in post_rules(app):
        name = actor(rule)
        if rule.endpoint == "auth.login":
            clients = [app.test_client(), app.test_client()]
            token = clients[0].csrf("/login")
            data = {"username": "root", "password": PASSWORD, "csrf_token": token}
            posts = [lambda c=c: c.post("/login", data=data) for c in clients]
            label = "auth.login"
        else:
            if name not in tabs:
                tabs[name] = [Tab(app, name), Tab(app, name)]
            pair = tabs[name]
            ids = ids_for(rule, world)
            path = path_of(rule, ids)
            form = form_for(pair[0], pages_for(app, rule, ids), path)
            data = base(form, world) if form is not None else {}
            if keyed:
                data[FIELD] = uuid.uuid4().hex  # one rendered form
            posts = [tab.post(path, copy(data)) for tab in pair]
            label = f"{rule.endpoint} {path}{'' if form else ' (no form found)'}"
            if rule.endpoint in LAST[-4:]:
                tabs.pop(name)  # sessions end or change: the next route logs in again
        before = counts()
        results = concurrently(app, *posts)
        for result in results:
            status = getattr(result, "status_code", None)
            if status is None:
                problems.append(f"{label}: 500 ({type(result).__name__}: {str(result)[:120]})")
            elif status >= 500:
                problems.append(f"{label}: {status}")
        after = counts()
        grown = {t: after[t] - before[t] for t in after if after[t] - before[t] > 1}
        if grown and keyed:
            problems.append(f"{label}: rows stored twice {grown}")
    assert not problems, "\n".join(problems)


def test_the_sweep_reads_every_post_route_of_core_and_plugins(app):
    endpoints = {r.endpoint.split(".")[0] for r in post_rules(app)}
    assert {"auth", "admin", "audit", "penalties", "sla", "express", "notices"} <= endpoints
    assert not re.search(r"testplug", " ".join(r.endpoint for r in post_rules(app)))
