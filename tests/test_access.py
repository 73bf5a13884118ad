"""Deny by default: access marks, roles per unit, unit scoping, plugins per unit.

CORE-01 (roles per unit, deny by default) and CORE-02 (unit tree, plugins per unit).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from flask import Blueprint
from sqlalchemy import func, select

from plugins.notices.models import Notice
from portal.audit import AuditEntry
from portal.auth.access import AUTHENTICATED, PUBLIC, authenticated, permission_required
from portal.extensions import db
from portal.hookspecs import hookimpl
from portal.plugin_api import Permission
from portal.testing import make_app, make_user
from portal.units.models import UnitPlugin

# ---- tiny plugins for start-up checks (module level, registered via PORTAL_EXTRA_PLUGINS) --------

unmarked_bp = Blueprint("unmarked", __name__, url_prefix="/unmarked")


@unmarked_bp.route("/secret")
def secret():  # deliberately without @public / @authenticated / @permission_required
    return "everyone sees this"


@unmarked_bp.route("/fine")
@authenticated
def fine():
    return "fine"


class UnmarkedPlugin:
    """A plugin that forgot to mark one of its views."""

    @hookimpl
    def portal_register_blueprints(self, app):  # noqa: ARG002
        return [unmarked_bp]


unmarked_plugin = UnmarkedPlugin()


marked_bp = Blueprint("marked", __name__, url_prefix="/marked")


@marked_bp.route("/")
@permission_required("marked.view")
def marked_index():
    return "marked"


class MarkedPlugin:
    """The same shape, done right."""

    @hookimpl
    def portal_register_blueprints(self, app):  # noqa: ARG002
        return [marked_bp]

    @hookimpl
    def portal_register_permissions(self):
        return [Permission("marked.view", "看", "View", ("staff",))]


marked_plugin = MarkedPlugin()


unknown_perm_bp = Blueprint("ghostperm", __name__, url_prefix="/ghostperm")


@unknown_perm_bp.route("/")
@permission_required("ghostperm.nobody_registered_this")
def ghost_index():
    return "?"


class UnknownPermissionPlugin:
    @hookimpl
    def portal_register_blueprints(self, app):  # noqa: ARG002
        return [unknown_perm_bp]


unknown_permission_plugin = UnknownPermissionPlugin()


def _dispose(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# ---- start-up checks -----------------------------------------------------------------------------


def test_core_01_every_registered_view_declares_access(app):
    for endpoint, view in app.view_functions.items():
        if endpoint == "static":
            continue
        access = getattr(view, "_portal_access", None)
        assert access is not None, endpoint
        assert access in (PUBLIC, AUTHENTICATED) or access in app.extensions["portal"].permissions


def test_core_01_only_login_language_and_health_are_public(app):
    public = {endpoint for endpoint, view in app.view_functions.items()
              if getattr(view, "_portal_access", None) == PUBLIC}
    assert public == {"auth.login", "auth.set_language", "core.healthz"}


def test_core_01_app_refuses_to_start_with_an_unmarked_view(database_url):
    from tests import testplug

    with pytest.raises(RuntimeError, match=r"declare no access.*unmarked\.secret") as info:
        make_app(database_url,
                 PORTAL_EXTRA_PLUGINS={"testplug": testplug, "unmarked": unmarked_plugin})
    assert "unmarked.fine" not in str(info.value)


def test_core_01_app_refuses_a_view_needing_an_unregistered_permission(database_url):
    with pytest.raises(RuntimeError, match="ghostperm.nobody_registered_this"):
        make_app(database_url, PORTAL_EXTRA_PLUGINS={"ghostperm": unknown_permission_plugin})


def test_core_01_a_correctly_marked_plugin_starts_and_is_enforced(database_url, app, tree):
    other = make_app(database_url, PORTAL_EXTRA_PLUGINS={"marked": marked_plugin})
    try:
        db.session.add(UnitPlugin(unit_id=tree["company"].id, plugin="marked", enabled=True))
        db.session.commit()
        make_user("anna", (tree["north"], "staff"))
        make_user("ivan", (tree["north"], "auditor"))
        client = other.test_client()
        assert client.get("/marked/").status_code == 302
        client.login("anna")
        assert client.get("/marked/").status_code == 200
        auditor = other.test_client()
        auditor.login("ivan")
        assert auditor.get("/marked/").status_code == 403
    finally:
        _dispose(other)


# ---- roles ---------------------------------------------------------------------------------------


def test_core_01_staff_gets_403_on_admin_pages(client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    north = tree["north"].id
    for path in ("/admin/users", "/admin/users/new", "/admin/units", f"/admin/units/{north}"):
        assert client.get(path).status_code == 403, path
    response = client.post_form("/admin/users/new", {
        "username": "mallory", "display_name": "M", "password": "pass-word-123",
        "unit_id": tree["north"].id, "role": "admin"})
    assert response.status_code == 403
    assert db.session.scalar(select(func.count()).where(
        AuditEntry.action == "access.denied")) == 5
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "user.created")) == 0


def test_core_01_admin_link_hidden_from_staff(client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    html = client.get("/").get_data(as_text=True)
    assert 'href="/admin/users"' not in html
    assert 'href="/notices/"' in html


@pytest.mark.parametrize(("role", "allowed"), [
    ("inspector", True),
    ("staff", False),
    ("supervisor", False),
    ("manager", False),
    ("auditor", False),
])
def test_core_01_plugin_permission_follows_its_role_grants(client, tree, role, allowed):
    make_user("anna", (tree["north"], role))
    client.login("anna")
    response = client.get("/testplug/inspect")
    assert response.status_code == (200 if allowed else 403)
    if allowed:
        assert response.get_data(as_text=True) == "inspected"


def test_core_01_role_on_a_parent_unit_applies_to_sub_units(client, tree):
    make_user("sue", (tree["region"], "supervisor"))
    client.login("sue")
    assert client.get("/notices/new").status_code == 200  # at the region itself
    client.post_form("/unit", {"unit_id": tree["north"].id})
    assert current_unit_id(client) == tree["north"].id
    assert client.get("/notices/new").status_code == 200  # granted on east, applies to north


def test_core_01_role_on_a_sub_unit_does_not_apply_upwards_or_sideways(client, tree):
    make_user("anna", (tree["north"], "supervisor"))
    client.login("anna")
    assert current_unit_id(client) == tree["north"].id
    for unit in ("region", "company", "south", "club"):
        client.post_form("/unit", {"unit_id": tree[unit].id})
        assert current_unit_id(client) == tree["north"].id, unit


def test_core_01_roles_are_per_unit(client, tree):
    make_user("mia", (tree["north"], "staff"), (tree["club"], "supervisor"))
    client.login("mia")
    client.post_form("/unit", {"unit_id": tree["north"].id})
    assert current_unit_id(client) == tree["north"].id
    assert client.get("/notices/new").status_code == 403
    client.post_form("/unit", {"unit_id": tree["club"].id})
    assert current_unit_id(client) == tree["club"].id
    assert client.get("/notices/new").status_code == 200


def current_unit_id(client) -> int:
    html = client.get("/").get_data(as_text=True)
    match = re.search(r'<option value="(\d+)" selected>', html)
    assert match, "no current unit in the header"
    return int(match.group(1))


def test_core_01_switching_to_a_unit_without_a_role_is_refused(client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    response = client.post_form("/unit", {"unit_id": tree["club"].id})
    assert response.status_code == 302
    assert current_unit_id(client) == tree["north"].id
    html = client.get("/").get_data(as_text=True)
    assert f'<option value="{tree["club"].id}"' not in html
    # a forged session value for a foreign unit is ignored too
    with client.session_transaction() as session:
        session["unit_id"] = tree["club"].id
    assert current_unit_id(client) == tree["north"].id


def test_core_01_unit_switcher_offers_sub_units(client, tree):
    make_user("sue", (tree["region"], "supervisor"))
    client.login("sue")
    html = client.get("/").get_data(as_text=True)
    offered = {int(i) for i in re.findall(r'<option value="(\d+)"', html)}
    assert offered == {tree["region"].id, tree["north"].id, tree["south"].id}


def test_core_01_user_without_any_role_sees_nothing(client, tree):
    make_user("lonely")
    assert client.login("lonely").status_code == 302
    assert client.get("/").status_code == 403
    assert client.get("/notices/").status_code == 404
    assert client.get("/testplug/").status_code == 404


# ---- unit scoping: guessed ids -------------------------------------------------------------------


def post_notice(unit, author, title="Closed on Monday") -> Notice:
    notice = Notice(unit_id=unit.id, title=title, body="Body", author_id=author.id,
                    visible_until=date.today() + timedelta(days=5))
    db.session.add(notice)
    db.session.commit()
    return notice


def test_core_01_guessing_a_notice_id_of_another_unit_gives_404(client, tree):
    boss = make_user("clubboss", (tree["club"], "manager"))
    make_user("anna", (tree["north"], "supervisor"))
    club_notice = post_notice(tree["club"], boss, "Club only")
    south_notice = post_notice(tree["south"], boss, "South only")
    company_notice = post_notice(tree["company"], boss, "For everyone")
    client.login("anna")
    for notice in (club_notice, south_notice):
        response = client.get(f"/notices/{notice.id}")
        assert response.status_code == 404
        assert notice.title not in response.get_data(as_text=True)
        assert client.post_form(f"/notices/{notice.id}/read").status_code == 404
        assert client.post_form(f"/notices/{notice.id}/withdraw").status_code == 404
    assert client.get("/notices/999999").status_code == 404
    # the control: a notice from above is readable
    assert client.get(f"/notices/{company_notice.id}").status_code == 200
    listing = client.get("/notices/").get_data(as_text=True)
    assert "For everyone" in listing and "Club only" not in listing and "South only" not in listing


def test_core_01_404_for_foreign_and_missing_ids_look_the_same(client, tree):
    boss = make_user("clubboss", (tree["club"], "manager"))
    make_user("anna", (tree["north"], "staff"))
    club_notice = post_notice(tree["club"], boss)
    client.login("anna")
    foreign = client.get(f"/notices/{club_notice.id}").get_data(as_text=True)
    missing = client.get("/notices/999999").get_data(as_text=True)
    tokens = re.compile(r'content="[^"]+"|"X-CSRFToken": "[^"]+"|value="[^"]+"')
    assert tokens.sub("", foreign) == tokens.sub("", missing)


def test_core_01_region_admin_cannot_open_units_or_users_outside_the_region(client, tree):
    make_user("radmin", (tree["region"], "admin"))
    clubber = make_user("clubber", (tree["club"], "staff"))
    northie = make_user("northie", (tree["north"], "staff"))
    client.login("radmin")
    assert client.get(f"/admin/units/{tree['north'].id}").status_code == 200
    assert client.get(f"/admin/users/{northie.id}").status_code == 200
    for path in (f"/admin/units/{tree['club'].id}",
                 f"/admin/units/{tree['company'].id}",
                 f"/admin/units/{tree['club'].id}/plugins",
                 f"/admin/users/{clubber.id}"):
        assert client.get(path).status_code == 404, path
    for path, data in ((f"/admin/units/{tree['club'].id}/plugins/notices", {"state": "off"}),
                       (f"/admin/users/{clubber.id}/edit", {"display_name": "X"}),
                       (f"/admin/users/{clubber.id}/password",
                        {"password": "pass-word-123", "confirm": "pass-word-123"})):
        assert client.post_form(path, data).status_code == 404, path
    db.session.expire_all()
    assert db.session.get(type(clubber), clubber.id).active is True
    club_plugins = select(UnitPlugin).where(UnitPlugin.unit_id == tree["club"].id)
    assert db.session.scalar(club_plugins) is None
    users = client.get("/admin/users").get_data(as_text=True)
    assert "northie" in users and "clubber" not in users


def test_core_01_region_admin_cannot_grant_roles_on_units_outside_the_region(client, tree):
    make_user("radmin", (tree["region"], "admin"))
    northie = make_user("northie", (tree["north"], "staff"))
    client.login("radmin")
    response = client.post_form(f"/admin/users/{northie.id}/roles",
                                {"unit_id": tree["company"].id, "role": "admin"})
    assert response.status_code == 400
    db.session.expire_all()
    assert {(m.unit_id, m.role) for m in db.session.get(type(northie), northie.id).memberships} == {
        (tree["north"].id, "staff")}


# ---- plugins per unit ----------------------------------------------------------------------------


def test_core_02_plugin_switched_off_answers_404_and_hides_its_nav(client, tree):
    boss = make_user("sue", (tree["region"], "supervisor"))
    south_notice = post_notice(tree["south"], boss)
    make_user("sam", (tree["south"], "supervisor"))
    client.login("sam")
    for path in ("/notices/", "/notices/new", "/notices/panel", f"/notices/{south_notice.id}"):
        assert client.get(path).status_code == 404, path
    assert client.post_form("/notices/new", {"title": "x", "body": "y"}).status_code == 404
    html = client.get("/").get_data(as_text=True)
    assert 'href="/notices/"' not in html
    assert 'hx-get="/notices/panel"' not in html
    # testplug is on in south (inherited from the company) and its nav shows
    assert 'href="/testplug/"' in html
    assert client.get("/testplug/").status_code == 200


def test_core_02_same_user_sees_the_plugin_where_it_is_on(client, tree):
    make_user("sue", (tree["region"], "supervisor"))
    client.login("sue")
    client.post_form("/unit", {"unit_id": tree["north"].id})
    html = client.get("/").get_data(as_text=True)
    assert 'href="/notices/"' in html and 'hx-get="/notices/panel"' in html
    assert client.get("/notices/").status_code == 200
    client.post_form("/unit", {"unit_id": tree["south"].id})
    html = client.get("/").get_data(as_text=True)
    assert 'href="/notices/"' not in html
    assert client.get("/notices/").status_code == 404


def test_core_02_plugin_off_at_company_is_off_below_unless_switched_on(client, tree):
    db.session.add(UnitPlugin(unit_id=tree["club"].id, plugin="testplug", enabled=False))
    db.session.commit()
    make_user("clara", (tree["club"], "staff"))
    client.login("clara")
    assert client.get("/testplug/").status_code == 404
    assert 'href="/testplug/"' not in client.get("/").get_data(as_text=True)


def test_core_02_switching_a_plugin_off_takes_effect_on_the_next_request(app, tree):
    make_user("boss", (tree["company"], "admin"))
    make_user("anna", (tree["north"], "staff"))
    admin, staff = app.test_client(), app.test_client()
    admin.login("boss")
    staff.login("anna")
    assert staff.get("/notices/").status_code == 200
    toggle = f"/admin/units/{tree['north'].id}/plugins/notices"
    admin.post_form(toggle, {"state": "off"}, htmx=True)
    assert staff.get("/notices/").status_code == 404
    admin.post_form(toggle, {"state": "inherit"}, htmx=True)
    assert staff.get("/notices/").status_code == 200
