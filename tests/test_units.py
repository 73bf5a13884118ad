"""The business-unit tree and its admin pages; plugins switched on and off per unit (CORE-02)."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.extensions import db
from portal.testing import make_user
from portal.units.models import Unit, UnitPlugin, plugin_enabled, would_create_cycle


def field_error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1).strip()) if match else None


def input_value(page: str, field: str) -> str | None:
    tag = re.search(rf'<input[^>]*\bname="{field}"[^>]*>', page)
    if tag is None:
        return None
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else ""


def select_options(page: str, field: str) -> set[int]:
    block = re.search(rf'<select[^>]*\bname="{field}"[^>]*>(.*?)</select>', page, re.S)
    assert block, f"no <select name={field}>"
    return {int(v) for v in re.findall(r'<option[^>]*value="(\d+)"', block.group(1))}


def fresh(ident) -> Unit:
    db.session.expire_all()
    return db.session.get(Unit, ident)


def audits(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


def unit_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Unit))


def login(app, username: str, *roles, locale="en"):
    make_user(username, *roles, locale=locale)
    client = app.test_client()
    assert client.login(username).status_code == 302
    return client


@pytest.fixture
def region_admin(app, tree):
    return login(app, "rita", (tree["region"], "admin"))


@pytest.fixture
def top_admin(app, tree):
    return login(app, "tom", (tree["company"], "admin"))


def unit_form(unit: Unit, **changes) -> dict:
    data = {"code": unit.code, "name_zh": unit.name_zh, "name_en": unit.name_en, "kind": unit.kind,
            "parent_id": unit.parent_id or 0, "timezone": unit.timezone or ""}
    data.update(changes)
    return data


# ---- the tree ------------------------------------------------------------------------------


def test_core_02_time_zone_and_plugins_are_inherited_down_the_tree(app, tree):
    region = tree["region"]
    region.timezone = "Asia/Urumqi"
    db.session.commit()
    assert tree["north"].effective_timezone("Asia/Shanghai") == "Asia/Urumqi"
    assert tree["club"].effective_timezone("Asia/Shanghai") == "Asia/Shanghai"
    assert plugin_enabled(tree["north"], "notices") is True  # from acme
    assert plugin_enabled(tree["south"], "notices") is False  # its own setting
    assert plugin_enabled(tree["north"], "nosuch") is False  # off unless switched on


def test_core_02_cycle_detection(tree):
    assert would_create_cycle(tree["region"], tree["north"])
    assert would_create_cycle(tree["region"], tree["region"])
    assert not would_create_cycle(tree["north"], tree["south"])
    assert not would_create_cycle(tree["north"], None)


# ---- create --------------------------------------------------------------------------------


def test_core_02_create_unit_validates_every_field_and_keeps_the_input(region_admin, tree):
    before = unit_count()
    typed = {"code": "West Side", "name_zh": "", "name_en": "West", "kind": "station",
             "parent_id": tree["north"].id, "timezone": "Mars/Olympus"}
    response = region_admin.post_form("/admin/units/new", typed)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Lowercase letters" in field_error(page, "code")
    assert field_error(page, "name_zh") == "This field is required."
    assert "Unknown time zone" in field_error(page, "timezone")
    assert field_error(page, "name_en") is None and field_error(page, "parent_id") is None
    assert input_value(page, "code") == "West Side"
    assert input_value(page, "name_en") == "West"
    assert input_value(page, "timezone") == "Mars/Olympus"
    assert unit_count() == before
    assert audits("unit.created") == []


def test_core_02_create_unit_under_a_parent_in_scope_with_audit(region_admin, tree):
    page = region_admin.get("/admin/units/new").get_data(as_text=True)
    assert select_options(page, "parent_id") == {tree["region"].id, tree["north"].id,
                                                 tree["south"].id}
    response = region_admin.post_form("/admin/units/new", {
        "code": "north-desk", "name_zh": "北站服务台", "name_en": "North desk", "kind": "desk",
        "parent_id": tree["north"].id, "timezone": "Asia/Urumqi"})
    assert response.status_code == 302
    unit = db.session.scalar(select(Unit).where(Unit.code == "north-desk"))
    assert (unit.parent_id, unit.kind, unit.timezone) == (tree["north"].id, "desk", "Asia/Urumqi")
    [entry] = audits("unit.created")
    assert entry.object_id == str(unit.id)
    assert entry.after["code"] == "north-desk" and entry.after["parent_id"] == tree["north"].id
    # inherits the plugins of its parent at once
    assert plugin_enabled(unit, "notices") is True


def test_core_02_create_unit_refuses_a_taken_code_and_a_parent_outside_scope(region_admin, tree):
    before = unit_count()
    response = region_admin.post_form("/admin/units/new", {
        "code": "club", "name_zh": "另一个", "name_en": "Another", "kind": "station",
        "parent_id": tree["north"].id, "timezone": ""})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "code") == "This code is taken."
    for forged in (tree["club"].id, tree["company"].id, 0):
        response = region_admin.post_form("/admin/units/new", {
            "code": "west", "name_zh": "西站", "name_en": "West", "kind": "station",
            "parent_id": forged, "timezone": ""})
        assert response.status_code == 400
        assert field_error(response.get_data(as_text=True), "parent_id")
    assert unit_count() == before


def test_core_02_unknown_kind_is_refused(region_admin, tree):
    response = region_admin.post_form("/admin/units/new", {
        "code": "west", "name_zh": "西站", "name_en": "West", "kind": "castle",
        "parent_id": tree["north"].id, "timezone": ""})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "kind")


# ---- rename, move, time zone --------------------------------------------------------------------


def test_core_02_rename_is_audited_with_before_and_after(region_admin, tree):
    north = tree["north"]
    response = region_admin.post_form(f"/admin/units/{north.id}",
                                      unit_form(north, name_zh="北站（新）", name_en="North New"))
    assert response.status_code == 302
    north = fresh(north.id)
    assert (north.name_zh, north.name_en) == ("北站（新）", "North New")
    [entry] = audits("unit.updated")
    assert entry.before["name_en"] == "North" and entry.after["name_en"] == "North New"
    assert entry.before["name_zh"] == "north（中文）" and entry.after["name_zh"] == "北站（新）"


def test_core_02_move_to_another_parent_in_scope(region_admin, tree):
    south = tree["south"]
    response = region_admin.post_form(f"/admin/units/{south.id}",
                                      unit_form(south, parent_id=tree["north"].id))
    assert response.status_code == 302
    assert fresh(south.id).parent_id == tree["north"].id
    [entry] = audits("unit.updated")
    assert entry.before["parent_id"] == tree["region"].id
    assert entry.after["parent_id"] == tree["north"].id


def test_core_02_move_outside_scope_is_refused(region_admin, tree):
    south = tree["south"]
    response = region_admin.post_form(f"/admin/units/{south.id}",
                                      unit_form(south, parent_id=tree["club"].id))
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "parent_id")
    assert fresh(south.id).parent_id == tree["region"].id


def test_core_02_move_under_own_descendant_is_not_offered_and_refused(top_admin, tree):
    region = tree["region"]
    page = top_admin.get(f"/admin/units/{region.id}").get_data(as_text=True)
    offered = select_options(page, "parent_id")
    assert tree["company"].id in offered and tree["club"].id in offered
    assert not offered & {region.id, tree["north"].id, tree["south"].id}
    for forged in (tree["north"].id, region.id):
        response = top_admin.post_form(f"/admin/units/{region.id}",
                                       unit_form(region, parent_id=forged))
        assert response.status_code == 400
        assert field_error(response.get_data(as_text=True), "parent_id")
    assert fresh(region.id).parent_id == tree["company"].id
    assert audits("unit.updated") == []
    # moving it under its sibling is fine
    response = top_admin.post_form(f"/admin/units/{region.id}",
                                   unit_form(region, parent_id=tree["club"].id))
    assert response.status_code == 302
    assert fresh(region.id).parent_id == tree["club"].id
    assert fresh(tree["north"].id).ancestors()[0].id == region.id


def test_core_02_admin_cannot_move_own_scope_root(region_admin, tree):
    region = tree["region"]
    page = region_admin.get(f"/admin/units/{region.id}").get_data(as_text=True)
    assert select_options(page, "parent_id") == {tree["company"].id}
    response = region_admin.post_form(f"/admin/units/{region.id}",
                                      unit_form(region, parent_id=tree["club"].id))
    assert response.status_code == 400
    assert fresh(region.id).parent_id == tree["company"].id
    # but it can be renamed
    response = region_admin.post_form(f"/admin/units/{region.id}",
                                      unit_form(region, name_en="East Region"))
    assert response.status_code == 302
    region = fresh(region.id)
    assert region.name_en == "East Region" and region.parent_id == tree["company"].id


def test_core_02_root_unit_edit_keeps_it_a_root(top_admin, tree):
    company = tree["company"]
    response = top_admin.post_form(f"/admin/units/{company.id}",
                                   unit_form(company, name_en="Acme Co"))
    assert response.status_code == 302
    company = fresh(company.id)
    assert company.name_en == "Acme Co" and company.parent_id is None


def test_core_02_time_zone_is_validated_on_edit(region_admin, tree):
    north = tree["north"]
    response = region_admin.post_form(f"/admin/units/{north.id}",
                                      unit_form(north, timezone="Asia/Beijing"))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Unknown time zone" in field_error(page, "timezone")
    assert input_value(page, "timezone") == "Asia/Beijing"
    assert fresh(north.id).timezone is None
    response = region_admin.post_form(f"/admin/units/{north.id}",
                                      unit_form(north, timezone="Asia/Urumqi"))
    assert response.status_code == 302
    assert fresh(north.id).timezone == "Asia/Urumqi"
    response = region_admin.post_form(f"/admin/units/{north.id}", unit_form(north, timezone=""))
    assert response.status_code == 302
    assert fresh(north.id).timezone is None  # empty: inherit


def test_core_02_edit_refuses_a_code_taken_by_another_unit(region_admin, tree):
    north = tree["north"]
    response = region_admin.post_form(f"/admin/units/{north.id}", unit_form(north, code="south"))
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "code") == "This code is taken."
    assert fresh(north.id).code == "north"


def test_core_02_units_outside_scope_answer_404(region_admin, tree):
    for unit in (tree["club"], tree["company"]):
        assert region_admin.get(f"/admin/units/{unit.id}").status_code == 404
        response = region_admin.post_form(f"/admin/units/{unit.id}", unit_form(unit, name_en="X"))
        assert response.status_code == 404
        assert region_admin.get(f"/admin/units/{unit.id}/plugins").status_code == 404
        response = region_admin.post_form(f"/admin/units/{unit.id}/plugins/notices",
                                          {"state": "off"})
        assert response.status_code == 404
    listing = region_admin.get("/admin/units").get_data(as_text=True)
    assert f"/admin/units/{tree['north'].id}" in listing
    assert f"/admin/units/{tree['club'].id}" not in listing
    assert fresh(tree["club"].id).name_en == "Club"


def test_core_02_unit_admin_needs_the_admin_role(app, tree):
    manager = login(app, "mona", (tree["region"], "manager"))
    assert manager.get("/admin/units").status_code == 403
    assert manager.get(f"/admin/units/{tree['north'].id}").status_code == 403
    assert manager.post_form(f"/admin/units/{tree['north'].id}/plugins/notices",
                             {"state": "off"}).status_code == 403
    assert plugin_enabled(tree["north"], "notices") is True


# ---- plugins per unit ---------------------------------------------------------------------------


def nav_has_notices(client) -> bool:
    """The notice board's link (from its portal_nav_items hook) is in the main navigation."""
    page = client.get("/").get_data(as_text=True)
    nav = re.search(r'<nav class="site-nav".*?</nav>', page, re.S)
    return bool(nav) and 'href="/notices/"' in nav.group(0)


def dashboard_has_notices_panel(client) -> bool:
    """The dashboard lazily loads the panel the board declares in portal_dashboard_panels."""
    return 'hx-get="/notices/panel"' in client.get("/").get_data(as_text=True)


def test_core_02_switching_a_plugin_off_returns_the_row_and_hides_it(app, top_admin, tree):
    north = tree["north"]
    staff = login(app, "nina", (north, "staff"))
    assert staff.get("/notices/").status_code == 200
    assert nav_has_notices(staff)
    assert dashboard_has_notices_panel(staff)

    response = top_admin.post_form(f"/admin/units/{north.id}/plugins/notices", {"state": "off"},
                                   htmx=True)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert body.strip().startswith('<tr id="plugin-notices"')
    assert 'value="on"' in body  # the button now switches it back on
    assert 'value="inherit"' in body  # the unit has its own setting now
    assert "Vary" in response.headers and "HX-Request" in response.headers["Vary"]

    assert staff.get("/notices/").status_code == 404
    assert staff.get("/notices/panel").status_code == 404
    assert not nav_has_notices(staff)
    assert not dashboard_has_notices_panel(staff)
    assert 'hx-get="/testplug/panel"' in staff.get("/").get_data(as_text=True)  # still on
    assert db.session.scalar(select(UnitPlugin.enabled).where(
        UnitPlugin.unit_id == north.id, UnitPlugin.plugin == "notices")) is False
    [entry] = audits("unit.plugin")
    assert entry.unit_id == north.id
    assert entry.before == {"plugin": "notices", "enabled": True}
    assert entry.after == {"plugin": "notices", "enabled": False, "state": "off"}

    # inherit: the unit's own setting goes, the company's (on) applies again
    response = top_admin.post_form(f"/admin/units/{north.id}/plugins/notices",
                                   {"state": "inherit"}, htmx=True)
    assert response.status_code == 200
    assert 'value="inherit"' not in response.get_data(as_text=True)
    assert db.session.scalar(select(UnitPlugin.id).where(
        UnitPlugin.unit_id == north.id, UnitPlugin.plugin == "notices")) is None
    assert staff.get("/notices/").status_code == 200
    assert nav_has_notices(staff)
    assert dashboard_has_notices_panel(staff)


def test_core_02_sub_units_follow_the_parent_plugin_state(app, top_admin, tree):
    region, north, south = tree["region"], tree["north"], tree["south"]
    staff = login(app, "nina", (north, "staff"))
    top_admin.post_form(f"/admin/units/{region.id}/plugins/notices", {"state": "off"}, htmx=True)
    assert staff.get("/notices/").status_code == 404
    assert plugin_enabled(fresh(north.id), "notices") is False
    # a sub-unit's own setting beats the parent's
    top_admin.post_form(f"/admin/units/{north.id}/plugins/notices", {"state": "on"}, htmx=True)
    assert staff.get("/notices/").status_code == 200
    top_admin.post_form(f"/admin/units/{north.id}/plugins/notices", {"state": "inherit"}, htmx=True)
    assert staff.get("/notices/").status_code == 404
    top_admin.post_form(f"/admin/units/{region.id}/plugins/notices", {"state": "on"}, htmx=True)
    assert staff.get("/notices/").status_code == 200
    assert plugin_enabled(fresh(south.id), "notices") is False  # south keeps its own "off"


def test_core_02_plugin_toggle_without_htmx_renders_the_page(top_admin, tree):
    response = top_admin.post_form(f"/admin/units/{tree['club'].id}/plugins/notices",
                                   {"state": "off"})
    assert response.status_code == 200
    assert "<html" in response.get_data(as_text=True)
    assert plugin_enabled(fresh(tree["club"].id), "notices") is False


def test_core_02_plugin_toggle_refuses_bad_input(top_admin, tree):
    north = tree["north"]
    assert top_admin.post_form(f"/admin/units/{north.id}/plugins/notices",
                               {"state": "maybe"}).status_code == 400
    assert top_admin.post_form(f"/admin/units/{north.id}/plugins/nosuch",
                               {"state": "off"}).status_code == 404
    assert top_admin.post_form(f"/admin/units/{north.id}/plugins/core",
                               {"state": "off"}).status_code == 404
    # a POST without the CSRF token changes nothing
    response = top_admin.post(f"/admin/units/{north.id}/plugins/notices", data={"state": "off"})
    assert response.status_code == 400
    assert plugin_enabled(fresh(north.id), "notices") is True
    assert db.session.scalar(select(func.count()).select_from(UnitPlugin).where(
        UnitPlugin.unit_id == north.id)) == 0


def test_core_02_plugin_page_lists_feature_plugins_with_their_state(top_admin, tree):
    page = top_admin.get(f"/admin/units/{tree['south'].id}/plugins").get_data(as_text=True)
    rows = dict(re.findall(r'<tr id="plugin-(\w+)">(.*?)</tr>', page, re.S))
    assert set(rows) == {"express", "notices", "testplug"}
    assert "Off" in rows["notices"] and "inherited" not in rows["notices"]
    assert "On" in rows["testplug"] and "inherited" in rows["testplug"]
    # shown by title in the user's language (here English), the code name beside it
    assert "Notice board <code>notices</code>" in rows["notices"]
    assert "testplug <code>testplug</code>" in rows["testplug"]  # no TITLE: the code name


def test_core_02_dashboard_units_panel_names_plugins_in_the_users_language(app, tree):
    make_user("zhang", (tree["north"], "staff"))
    client = app.test_client()
    client.login("zhang")
    panel = client.get("/panels/units", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "公告栏" in panel and "Notice board" not in panel
