"""Per-unit, effective-dated regulation settings (CORE-10).

A setting holds the regulation's value as its default; an approved change applies
from the day after approval in the unit's time zone unless another date is chosen,
and an event is always judged by the value in force when it happened.
"""

from __future__ import annotations

import html
import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.db_types import utcnow
from portal.extensions import db
from portal.plugin_api import SettingError, SettingSpec
from portal.settings import models as settings
from portal.settings.models import SettingValue
from portal.testing import make_unit, make_user

KEY = "testplug.reply_minutes"  # minutes, default 30, 1..1440 (declared by tests/testplug)
UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def field_error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1).strip()) if match else None


def input_value(page: str, field: str) -> str | None:
    tag = re.search(rf'<input[^>]*\bname="{field}"[^>]*>', page)
    if tag is None:
        return None
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else ""


def rows() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(SettingValue))


def audits(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


@pytest.fixture
def shanghai(tree):
    tree["company"].timezone = "Asia/Shanghai"
    db.session.commit()
    return tree


# ---- the spec: parse, dump, validation ---------------------------------------------------------


def spec(type_: str, default, **kw) -> SettingSpec:
    return SettingSpec(f"x.{type_}", type_, default, "标签", "Label", **kw)


@pytest.mark.parametrize("type_, default, raw, expected", [
    ("int", 3, " 42 ", 42),
    ("int", 3, "-7", -7),
    ("minutes", 30, "1440", 1440),
    ("decimal", Decimal("200"), "200", Decimal("200")),
    ("decimal", Decimal("200"), "200.5", Decimal("200.50")),
    ("decimal", Decimal("200"), "0.01", Decimal("0.01")),
    ("bool", True, "false", False),
    ("bool", False, "ON", True),
    ("bool", False, "1", True),
    ("time", time(9), "08:30", time(8, 30)),
    ("time", time(9), "23:59", time(23, 59)),
    ("text", "final", " published ", "published"),
])
def test_core_10_spec_parses_typed_values(type_, default, raw, expected):
    s = spec(type_, default)
    value = s.parse(raw)
    assert value == expected and type(value) is type(expected)
    assert s.parse(s.dump(value)) == value  # what is stored reads back the same


@pytest.mark.parametrize("type_, default, raw, message", [
    ("int", 3, "", "a whole number"),
    ("int", 3, "4.5", "a whole number"),
    ("int", 3, "ten", "a whole number"),
    ("minutes", 30, "30m", "a whole number of minutes"),
    ("decimal", Decimal("1"), "1.005", "at most two decimal places"),
    ("decimal", Decimal("1"), "NaN", "at most two decimal places"),
    ("decimal", Decimal("1"), "Infinity", "at most two decimal places"),
    ("decimal", Decimal("1"), "two hundred", "an amount such as 200 or 200.50"),
    ("decimal", Decimal("1"), "200,00", "an amount such as 200 or 200.50"),
    ("bool", True, "yes please", "yes or no"),
    ("time", time(9), "8:30", "a time as HH:MM"),
    ("time", time(9), "08:30:00", "a time as HH:MM"),
    ("time", time(9), "24:00", "a time as HH:MM"),
])
def test_core_10_spec_refuses_malformed_values(type_, default, raw, message):
    with pytest.raises(SettingError) as caught:
        spec(type_, default).parse(raw)
    assert str(caught.value) == message


@pytest.mark.parametrize("type_, default, bounds, low, high", [
    ("int", 5, {"minimum": 1, "maximum": 10}, "0", "11"),
    ("minutes", 30, {"minimum": 1, "maximum": 1440}, "0", "1441"),
    ("decimal", Decimal("200"), {"minimum": Decimal("0"), "maximum": Decimal("500")}, "-0.01",
     "500.01"),
    ("time", time(9), {"minimum": time(6), "maximum": time(22)}, "05:59", "22:01"),
])
def test_core_10_spec_enforces_bounds(type_, default, bounds, low, high):
    s = spec(type_, default, **bounds)
    with pytest.raises(SettingError, match="must be at least"):
        s.parse(low)
    with pytest.raises(SettingError, match="must be at most"):
        s.parse(high)
    s.parse(s.dump(bounds["minimum"]))
    s.parse(s.dump(bounds["maximum"]))


def test_core_10_spec_custom_validation():
    def one_of(value):
        if value not in ("final", "published"):
            raise SettingError("final or published")

    s = spec("text", "final", validate=one_of)
    assert s.parse("published") == "published"
    with pytest.raises(SettingError, match="final or published"):
        s.parse("draft")


def test_core_10_decimal_is_exact_and_float_is_refused():
    s = spec("decimal", Decimal("0.10"))
    total = s.parse("0.10") + s.parse("0.20")
    assert total == Decimal("0.30") and isinstance(total, Decimal)
    assert s.dump(Decimal("200")) == "200.00"
    assert s.dump(Decimal("0.1")) == "0.10"
    with pytest.raises(TypeError):
        s.dump(0.1)  # a float is never money
    with pytest.raises(TypeError):
        spec("decimal", 200.0)
    with pytest.raises(TypeError):
        spec("decimal", Decimal("1"), minimum=0.5)


def test_core_10_dump_of_bool_and_time():
    assert spec("bool", True).dump(True) == "true"
    assert spec("bool", True).dump(False) == "false"
    assert spec("time", time(9)).dump(time(7, 5)) == "07:05"
    assert spec("minutes", 30).as_timedelta(90) == timedelta(minutes=90)


# ---- value(), effective dating -------------------------------------------------------------------


def test_core_10_value_is_the_regulation_default_without_rows(app, tree):
    registry = app.extensions["portal"]
    assert registry.settings[KEY].default == 30
    for unit in tree.values():
        assert settings.value(unit, KEY) == 30
        assert settings.in_force(unit, KEY) is None
    assert settings.value(tree["north"], "testplug.fine") == Decimal("200.00")
    assert settings.value(tree["north"], "notices.visible_days") == 30


def test_core_10_default_effective_date_is_the_day_after_approval_in_the_units_zone(shanghai):
    company = shanghai["company"]
    # 23:59:59 in Shanghai on 23 November → from the 24th
    effective = settings.default_effective_date
    assert effective(company, at("2026-11-23T15:59:59Z")) == date(2026, 11, 24)
    # one second later it is already the 24th in Shanghai → from the 25th
    assert effective(company, at("2026-11-23T16:00:00Z")) == date(2026, 11, 25)
    # a unit in another zone counts its own days
    london = make_unit("london", company, timezone="Europe/London")
    assert effective(london, at("2026-11-23T23:30:00Z")) == date(2026, 11, 24)
    assert effective(london, at("2026-11-24T00:00:00Z")) == date(2026, 11, 25)
    # a sub-unit without its own zone uses the nearest one up the tree
    below = make_unit("london-desk", london, kind="desk")
    assert effective(below, at("2026-11-23T23:30:00Z")) == date(2026, 11, 24)


def test_core_10_a_change_approved_today_applies_from_local_midnight_tomorrow(shanghai):
    company, north = shanghai["company"], shanghai["north"]
    approved = at("2026-11-23T03:00:00Z")  # 11:00 in Shanghai on the 23rd
    effective = settings.default_effective_date(company, approved)
    assert effective == date(2026, 11, 24)
    settings.change(company, KEY, "45", effective, approver=None, note="文件 2026-17")
    db.session.commit()
    assert settings.value(company, KEY, at=approved) == 30
    assert settings.value(company, KEY, at=at("2026-11-23T15:59:59Z")) == 30
    assert settings.value(company, KEY, at=at("2026-11-23T16:00:00Z")) == 45
    assert settings.value(north, KEY, at=at("2026-11-23T15:59:59Z")) == 30  # inherited, same day
    assert settings.value(north, KEY, at=at("2026-11-23T16:00:00Z")) == 45
    row = settings.in_force(north, KEY, at=at("2026-11-24T16:00:00Z"))
    assert row.unit_id == company.id and row.note == "文件 2026-17" and row.value == "45"


def test_core_10_events_are_judged_by_the_value_in_force_when_they_happened(shanghai):
    company = shanghai["company"]
    settings.change(company, KEY, "45", date(2026, 1, 1), approver=None)
    settings.change(company, KEY, "60", date(2026, 6, 1), approver=None)
    db.session.commit()
    assert settings.value(company, KEY, at=at("2025-12-31T15:59:59Z")) == 30  # 23:59:59 local
    assert settings.value(company, KEY, at=at("2025-12-31T16:00:00Z")) == 45  # 00:00 on 1 Jan
    assert settings.value(company, KEY, at=at("2026-05-31T12:00:00Z")) == 45
    assert settings.value(company, KEY, at=at("2026-06-01T00:00:00Z")) == 60
    # a later correction for a past date changes the past only from its own effective date
    settings.change(company, KEY, "50", date(2026, 3, 1), approver=None)
    db.session.commit()
    assert settings.value(company, KEY, at=at("2026-02-15T00:00:00Z")) == 45
    assert settings.value(company, KEY, at=at("2026-03-15T00:00:00Z")) == 50
    assert settings.value(company, KEY, at=at("2026-07-01T00:00:00Z")) == 60


def test_core_10_two_values_for_the_same_day_the_later_approval_wins(shanghai):
    company = shanghai["company"]
    settings.change(company, KEY, "45", date(2026, 1, 1), approver=None)
    settings.change(company, KEY, "40", date(2026, 1, 1), approver=None)
    db.session.commit()
    assert settings.value(company, KEY, at=at("2026-01-02T00:00:00Z")) == 40


def test_core_10_company_value_is_inherited_unless_a_sub_unit_has_its_own(shanghai):
    tree = shanghai
    company, region, north, south, club = (tree[k] for k in
                                           ("company", "region", "north", "south", "club"))
    settings.change(company, KEY, "45", date(2026, 1, 1), approver=None)
    settings.change(south, KEY, "20", date(2026, 2, 1), approver=None)
    db.session.commit()
    when = at("2026-03-01T00:00:00Z")
    assert [settings.value(u, KEY, at=when) for u in (company, region, north, south, club)] == [
        45, 45, 45, 20, 45]
    # before south's own value applies it follows the company
    assert settings.value(south, KEY, at=at("2026-01-15T00:00:00Z")) == 45
    # a newer company value does not override the sub-unit's own
    settings.change(company, KEY, "90", date(2026, 4, 1), approver=None)
    db.session.commit()
    later = at("2026-05-01T00:00:00Z")
    assert settings.value(north, KEY, at=later) == 90
    assert settings.value(south, KEY, at=later) == 20
    # the nearest unit up the tree wins: a value on the region beats the company's
    settings.change(region, KEY, "75", date(2026, 4, 15), approver=None)
    db.session.commit()
    assert settings.value(north, KEY, at=later) == 75
    assert settings.value(club, KEY, at=later) == 90


def test_core_10_change_is_stored_typed_and_audited(shanghai):
    company = shanghai["company"]
    boss = make_user("boss", (company, "admin"))
    settings.change(company, "testplug.fine", "250.5", date(2026, 1, 1), approver=boss, note="批文")
    db.session.commit()
    row = db.session.scalar(select(SettingValue).where(SettingValue.key == "testplug.fine"))
    assert row.value == "250.50" and row.approved_by_id == boss.id
    fine = settings.value(company, "testplug.fine", at=at("2026-02-01T00:00:00Z"))
    assert fine == Decimal("250.50")
    [entry] = audits("setting.changed")
    assert entry.object_id == "acme:testplug.fine" and entry.unit_id == company.id
    assert entry.before == {"value": "200.00"}
    assert entry.after == {"value": "250.50", "effective_from": "2026-01-01", "note": "批文"}


# ---- the admin pages ---------------------------------------------------------------------------


def login(app, username: str, *roles):
    make_user(username, *roles, locale="en")
    client = app.test_client()
    assert client.login(username).status_code == 302
    return client


def today(unit) -> date:
    return settings.local_date(unit, utcnow())


def test_core_10_form_defaults_to_tomorrow_and_records_a_scheduled_change(app, shanghai):
    company = shanghai["company"]
    admin = login(app, "boss", (company, "admin"))
    page = admin.get(f"/admin/settings/{KEY}").get_data(as_text=True)
    tomorrow = settings.default_effective_date(company)
    assert input_value(page, "effective_from") == tomorrow.isoformat()
    assert input_value(page, "value") == "30"
    response = admin.post_form(f"/admin/settings/{KEY}", {
        "value": "45", "effective_from": tomorrow.isoformat(), "note": "批文 17"})
    assert response.status_code == 302
    assert settings.value(company, KEY) == 30  # not yet
    assert settings.value(company, KEY, at=utcnow() + timedelta(days=2)) == 45
    listing = admin.get("/admin/settings").get_data(as_text=True)
    assert f"45 from {tomorrow.isoformat()}" in " ".join(listing.split())
    [entry] = audits("setting.changed")
    assert entry.before == {"value": "30"}
    assert entry.after["value"] == "45" and entry.after["effective_from"] == tomorrow.isoformat()
    assert entry.actor_name == "boss"


def test_core_10_form_accepts_today_for_an_immediate_change(app, shanghai):
    north = shanghai["north"]
    admin = login(app, "rita", (shanghai["region"], "admin"))
    admin.post_form("/unit", {"unit_id": north.id})
    response = admin.post_form(f"/admin/settings/{KEY}", {
        "value": "15", "effective_from": today(north).isoformat()})
    assert response.status_code == 302
    assert settings.value(north, KEY) == 15
    assert settings.value(shanghai["south"], KEY) == 30  # only the current unit changed
    assert settings.value(shanghai["region"], KEY) == 30
    page = admin.get("/admin/settings").get_data(as_text=True)
    assert "Regulation settings" in page


def test_core_10_form_refuses_a_past_date_and_an_invalid_value_keeping_the_input(app, shanghai):
    company = shanghai["company"]
    admin = login(app, "boss", (company, "admin"))
    yesterday = today(company) - timedelta(days=1)
    response = admin.post_form(f"/admin/settings/{KEY}", {
        "value": "45", "effective_from": yesterday.isoformat(), "note": "backdated"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "cannot apply to the past" in field_error(page, "effective_from")
    assert field_error(page, "value") is None
    assert input_value(page, "effective_from") == yesterday.isoformat()
    assert input_value(page, "value") == "45" and input_value(page, "note") == "backdated"

    for bad, message in (("abc", "a whole number of minutes"), ("0", "must be at least 1"),
                         ("1441", "must be at most 1440"), ("", "This field is required.")):
        response = admin.post_form(f"/admin/settings/{KEY}", {
            "value": bad, "effective_from": today(company).isoformat()})
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        assert field_error(page, "value") == message
        assert input_value(page, "value") == bad
    response = admin.post_form(f"/admin/settings/{KEY}", {"value": "45", "effective_from": "31/12"})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "effective_from")
    assert rows() == 0
    assert audits("setting.changed") == []


@pytest.mark.parametrize("role", ["manager", "auditor"])
def test_core_10_managers_and_auditors_see_settings_but_cannot_change_them(app, shanghai, role):
    company = shanghai["company"]
    reader = login(app, "mona", (company, role))
    listing = reader.get("/admin/settings")
    assert listing.status_code == 200
    assert KEY in listing.get_data(as_text=True)
    page = reader.get(f"/admin/settings/{KEY}")
    assert page.status_code == 200
    assert 'name="value"' not in page.get_data(as_text=True)  # no form offered
    for data in ({"value": "45", "effective_from": today(company).isoformat()},
                 {"value": "", "effective_from": ""}):
        assert reader.post_form(f"/admin/settings/{KEY}", data).status_code == 403
    assert rows() == 0
    assert audits("setting.changed") == []


def test_core_10_staff_cannot_see_settings(app, shanghai):
    staff = login(app, "nina", (shanghai["north"], "staff"))
    assert staff.get("/admin/settings").status_code == 403
    assert staff.get(f"/admin/settings/{KEY}").status_code == 403


def test_core_10_unknown_setting_answers_404(app, shanghai):
    admin = login(app, "boss", (shanghai["company"], "admin"))
    assert admin.get("/admin/settings/testplug.nosuch").status_code == 404
    assert admin.post_form("/admin/settings/testplug.nosuch",
                           {"value": "1", "effective_from": "2030-01-01"}).status_code == 404


def test_core_10_settings_page_marks_inherited_values(app, shanghai):
    settings.change(shanghai["company"], KEY, "45", date(2020, 1, 1), approver=None)
    db.session.commit()
    admin = login(app, "rita", (shanghai["region"], "admin"))
    page = admin.get("/admin/settings").get_data(as_text=True)
    row = re.search(rf'<tr>\s*<td><a href="/admin/settings/{re.escape(KEY)}">.*?</tr>', page,
                    re.S)
    assert row and "45" in row.group(0) and "inherited" in row.group(0)
