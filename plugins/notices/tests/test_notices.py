"""The notice board (公告栏) end to end: posting, reading, acknowledging, withdrawing.

Units (``portal.testing.tree``): acme (company, notices on) > east (region) > north, south
(notices off); club beside east.
"""

from __future__ import annotations

import functools
import html
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from plugins.notices import rules
from plugins.notices.models import Notice, NoticeRead
from portal.audit import AuditEntry
from portal.db_types import utcnow
from portal.extensions import db
from portal.settings import models as settings
from portal.auth.models import Membership, User
from portal.auth.passwords import hash_password
from portal.testing import PASSWORD, make_user


def field_error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1).strip()) if match else None


def input_value(page: str, field: str) -> str | None:
    tag = re.search(rf'<input[^>]*\bname="{field}"[^>]*>', page)
    if tag is None:
        return None
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else ""


def notices() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Notice))


def reads(notice_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(NoticeRead)
                             .where(NoticeRead.notice_id == notice_id))


def today(unit) -> date:
    return settings.local_date(unit, utcnow())


@functools.cache
def _password_hash() -> str:
    """One argon2 hash of the test password for all these users (hashing is slow on purpose)."""
    return hash_password(PASSWORD)


ROLES = {
    "sue": ("company", "supervisor"),  # posts for the whole company
    "max": ("company", "manager"),
    "sam": ("north", "supervisor"),
    "nina": ("north", "staff"),
    "olga": ("south", "staff"),  # the notice board is off at south
    "carl": ("club", "staff"),
    "ada": ("company", "auditor"),
}


class People(dict):
    """Logged-in clients by name, each reading the pages in English; logged in when first used."""

    def __init__(self, app, tree):
        super().__init__()
        self.app = app
        for name, (unit, role) in ROLES.items():
            db.session.add(User(username=name, display_name=name.title(), locale="en",
                                password_hash=_password_hash(),
                                memberships=[Membership(unit_id=tree[unit].id, role=role)]))
        db.session.commit()

    def __missing__(self, name):
        client = self.app.test_client()
        assert client.login(name).status_code == 302
        self[name] = client
        return client


@pytest.fixture
def people(app, tree):
    return People(app, tree)


def post(client, title="Holiday hours", body="Open 9 to 17 on the 1st.", **extra):
    return client.post_form("/notices/new", {"title": title, "body": body, **extra})


def posted(response) -> Notice:
    assert response.status_code == 302, response.get_data(as_text=True)
    notice_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    db.session.expire_all()
    return db.session.get(Notice, notice_id)


def add_notice(unit, author, title, visible_until, **fields) -> Notice:
    notice = Notice(unit_id=unit.id, title=title, body=fields.pop("body", "text"),
                    visible_until=visible_until, author_id=author.id, **fields)
    db.session.add(notice)
    db.session.commit()
    return notice


def user(name):
    return db.session.scalar(select(User).where(User.username == name))


# ---- posting --------------------------------------------------------------------------------


def test_supervisor_posts_a_notice_for_the_unit_with_the_default_end(people, tree):
    response = post(people["sue"])
    notice = posted(response)
    company = tree["company"]
    assert notice.unit_id == company.id and notice.author_id == user("sue").id
    assert notice.title == "Holiday hours" and notice.pinned is False
    # 30 days counting the day of publication (the setting's regulation default)
    assert notice.visible_until == today(company) + timedelta(days=29)
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "notices.posted"))
    assert entry.object_id == str(notice.id) and entry.unit_id == company.id
    assert entry.after["title"] == "Holiday hours"
    page = people["sue"].get(response.headers["Location"]).get_data(as_text=True)
    assert "Holiday hours" in page and "Notice published." in page


def test_default_visible_days_come_from_the_units_setting(people, tree):
    company = tree["company"]
    settings.change(company, "notices.visible_days", "7", today(company), approver=None)
    db.session.commit()
    form = people["sue"].get("/notices/new").get_data(as_text=True)
    assert "Default for this unit: 7 days." in form
    notice = posted(post(people["sue"]))
    assert notice.visible_until == today(company) + timedelta(days=6)
    # a chosen end date wins over the default
    chosen = today(company) + timedelta(days=60)
    notice = posted(post(people["sue"], title="Long one", visible_until=chosen.isoformat(),
                         pinned="y"))
    assert notice.visible_until == chosen and notice.pinned is True


def test_a_sub_units_own_setting_applies_to_its_posts(people, tree):
    north = tree["north"]
    settings.change(tree["company"], "notices.visible_days", "7", today(north), approver=None)
    settings.change(north, "notices.visible_days", "3", today(north), approver=None)
    db.session.commit()
    notice = posted(post(people["sam"]))
    assert notice.unit_id == north.id
    assert notice.visible_until == today(north) + timedelta(days=2)


def test_post_validation_shows_errors_next_to_fields_and_keeps_the_input(people, tree):
    before = notices()
    response = post(people["sue"], title="", body="Keep this text")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert field_error(page, "title") == "This field is required."
    assert field_error(page, "body") is None
    assert "Keep this text" in page

    yesterday = today(tree["company"]) - timedelta(days=1)
    response = post(people["sue"], title="Old news", visible_until=yesterday.isoformat())
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert field_error(page, "visible_until") == "The end date cannot be before today."
    assert input_value(page, "title") == "Old news"
    assert input_value(page, "visible_until") == yesterday.isoformat()

    response = post(people["sue"], visible_until="2026-13-01")
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "visible_until")

    response = post(people["sue"], title="x" * 201)
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "title")
    assert notices() == before

    # ending today is fine
    notice = posted(post(people["sue"], visible_until=today(tree["company"]).isoformat()))
    assert notice.visible_until == today(tree["company"])


@pytest.mark.parametrize("name", ["nina", "carl", "ada"])
def test_staff_and_auditors_cannot_post(people, name):
    client = people[name]
    assert client.get("/notices/new").status_code == 403
    assert post(client).status_code == 403
    assert notices() == 0
    assert "Post a notice" not in client.get("/notices/").get_data(as_text=True)


def test_posting_is_refused_where_the_board_is_switched_off(app, tree):
    make_user("sid", (tree["south"], "supervisor"), locale="en")
    client = app.test_client()
    client.login("sid")
    assert client.get("/notices/new").status_code == 404
    assert post(client).status_code == 404
    assert notices() == 0


# ---- reading ---------------------------------------------------------------------------------


def test_staff_of_a_sub_unit_see_the_companys_notice(people, tree):
    notice = posted(post(people["sue"], title="Company-wide notice"))
    for name in ("nina", "carl", "max", "ada"):
        listing = people[name].get("/notices/").get_data(as_text=True)
        assert "Company-wide notice" in listing, name
        assert people[name].get(f"/notices/{notice.id}").status_code == 200
    # the dashboard panel lists it too
    assert "Company-wide notice" in people["nina"].get("/notices/panel").get_data(as_text=True)
    # but not where the board is off
    assert people["olga"].get("/notices/").status_code == 404
    assert people["olga"].get(f"/notices/{notice.id}").status_code == 404


def test_a_units_notice_stays_inside_its_subtree(people, tree):
    notice = posted(post(people["sam"], title="North only"))
    assert "North only" in people["nina"].get("/notices/").get_data(as_text=True)
    assert "North only" not in people["carl"].get("/notices/").get_data(as_text=True)
    assert people["carl"].get(f"/notices/{notice.id}").status_code == 404
    assert people["carl"].post_form(f"/notices/{notice.id}/read").status_code == 404
    assert reads(notice.id) == 0
    # the company above sees into its sub-units
    assert people["max"].get(f"/notices/{notice.id}").status_code == 200


def test_pinned_notices_come_first(people, tree):
    company = tree["company"]
    until = today(company) + timedelta(days=5)
    add_notice(company, user("sue"), "Plain", until)
    add_notice(company, user("sue"), "Pinned", until, pinned=True)
    add_notice(company, user("sue"), "Newer plain", until)
    page = people["nina"].get("/notices/").get_data(as_text=True)
    titles = re.findall(r'<h2><a href="/notices/\d+">(.*?)</a></h2>', page)
    assert titles[0] == "Pinned" and set(titles) == {"Plain", "Pinned", "Newer plain"}


def test_ended_notices_are_hidden_unless_asked_for(people, tree):
    company = tree["company"]
    sue = user("sue")
    add_notice(company, sue, "Current", today(company))
    add_notice(company, sue, "Ended yesterday", today(company) - timedelta(days=1))
    listing = people["nina"].get("/notices/").get_data(as_text=True)
    assert "Current" in listing and "Ended yesterday" not in listing
    assert "Ended yesterday" not in people["nina"].get("/notices/panel").get_data(as_text=True)
    full = people["nina"].get("/notices/?ended=1").get_data(as_text=True)
    assert "Current" in full and "Ended yesterday" in full
    assert re.search(r"Ended yesterday.*?badge-muted\">Ended<", full, re.S)
    partial = people["nina"].get("/notices/?ended=1", headers={"HX-Request": "true"})
    text = partial.get_data(as_text=True)
    assert "<html" not in text and "Ended yesterday" in text


# ---- acknowledging ---------------------------------------------------------------------------


def test_acknowledge_via_htmx_returns_the_partial_and_is_idempotent(people, tree):
    notice = posted(post(people["sue"]))
    nina = people["nina"]
    detail = nina.get(f"/notices/{notice.id}").get_data(as_text=True)
    assert "I have read this" in detail
    for _ in range(2):
        response = nina.post_form(f"/notices/{notice.id}/read", htmx=True)
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        assert "<html" not in body
        assert body.strip().startswith('<div id="notice-ack">')
        assert "You have confirmed reading this notice." in body
        assert "have confirmed reading." not in body.replace("You have confirmed reading", "")
    assert reads(notice.id) == 1
    acks = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "notices.read")).all()
    assert len(acks) == 1 and acks[0].actor_name == "nina"
    assert "I have read this" not in nina.get(f"/notices/{notice.id}").get_data(as_text=True)
    # without htmx, the whole page
    page = nina.post_form(f"/notices/{notice.id}/read").get_data(as_text=True)
    assert "<html" in page
    assert reads(notice.id) == 1


def test_readers_count_is_shown_to_the_poster_only(people, tree):
    notice = posted(post(people["sue"]))
    for name in ("nina", "carl"):
        people[name].post_form(f"/notices/{notice.id}/read", htmx=True)
    assert reads(notice.id) == 2
    assert "2 people have confirmed reading." in people["sue"].get(
        f"/notices/{notice.id}").get_data(as_text=True)
    assert "2 people have confirmed reading." in people["max"].get(
        f"/notices/{notice.id}").get_data(as_text=True)  # may post there
    for name in ("nina", "ada"):
        page = people[name].get(f"/notices/{notice.id}").get_data(as_text=True)
        assert "people have confirmed reading" not in page, name


def test_acknowledging_needs_the_csrf_token(people, tree):
    notice = posted(post(people["sue"]))
    response = people["nina"].post(f"/notices/{notice.id}/read", headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert reads(notice.id) == 0


# ---- withdrawing -------------------------------------------------------------------------------


def test_withdraw_by_the_author(people, tree):
    notice = posted(post(people["sue"], title="To withdraw"))
    assert "Withdraw" in people["sue"].get(f"/notices/{notice.id}").get_data(as_text=True)
    response = people["sue"].post_form(f"/notices/{notice.id}/withdraw")
    assert response.status_code == 302 and response.headers["Location"] == "/notices/"
    db.session.expire_all()
    notice = db.session.get(Notice, notice.id)
    assert notice.withdrawn_at is not None and notice.withdrawn_by_id == user("sue").id
    assert "To withdraw" not in people["nina"].get("/notices/").get_data(as_text=True)
    full = people["nina"].get("/notices/?ended=1").get_data(as_text=True)
    assert re.search(r"To withdraw.*?Withdrawn", full, re.S)
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "notices.withdrawn"))
    assert entry.before == {"withdrawn_at": None} and entry.after["withdrawn_at"]
    # once withdrawn, it cannot be withdrawn again
    assert people["sue"].post_form(f"/notices/{notice.id}/withdraw").status_code == 403


def test_withdraw_by_a_poster_in_scope_but_not_by_others(people, tree):
    notice = posted(post(people["sue"]))
    # staff and auditors cannot; a supervisor below the company has no scope over its notice
    for name in ("nina", "ada", "sam"):
        page = people[name].get(f"/notices/{notice.id}").get_data(as_text=True)
        assert f"/notices/{notice.id}/withdraw" not in page, name
        assert people[name].post_form(f"/notices/{notice.id}/withdraw").status_code == 403, name
    db.session.expire_all()
    assert db.session.get(Notice, notice.id).withdrawn_at is None
    # a manager of the company may, though not the author
    assert people["max"].post_form(f"/notices/{notice.id}/withdraw").status_code == 302
    db.session.expire_all()
    assert db.session.get(Notice, notice.id).withdrawn_by_id == user("max").id


def test_a_notice_outside_scope_cannot_be_withdrawn(people, tree):
    notice = posted(post(people["sam"], title="North only"))
    assert people["carl"].post_form(f"/notices/{notice.id}/withdraw").status_code == 404
    # the company's manager has scope over north
    assert people["max"].post_form(f"/notices/{notice.id}/withdraw").status_code == 302


# ---- rules.py ------------------------------------------------------------------------------------


def test_rules_default_end_counts_the_publication_day():
    assert rules.default_end(date(2026, 1, 1), 30) == date(2026, 1, 30)
    assert rules.default_end(date(2026, 1, 1), 1) == date(2026, 1, 1)
    assert rules.default_end(date(2026, 2, 20), 10) == date(2026, 3, 1)  # across a month end
    assert rules.default_end(date(2028, 2, 20), 10) == date(2028, 2, 29)  # leap year


def test_rules_end_date_error():
    day = date(2026, 11, 23)
    assert rules.end_date_error(day, None) is None
    assert rules.end_date_error(day, day) is None
    assert rules.end_date_error(day, day + timedelta(days=1)) is None
    assert rules.end_date_error(day, day - timedelta(days=1)) == "before_publication"


def test_rules_is_current():
    published, until = date(2026, 11, 1), date(2026, 11, 30)
    assert rules.is_current(published, until, False, date(2026, 11, 1))
    assert rules.is_current(published, until, False, date(2026, 11, 30))
    assert not rules.is_current(published, until, False, date(2026, 12, 1))
    assert not rules.is_current(published, until, False, date(2026, 10, 31))
    assert not rules.is_current(published, until, True, date(2026, 11, 15))
