"""The user admin pages as an administrator of one region sees them (CORE-01).

The administrator ``rita`` holds ``admin`` on the region ``east`` (north, south
below it).  The company ``acme`` above it and the ``club`` beside it are outside
her scope.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.auth.models import LoginAttempt, Membership, User, UserSession
from portal.db_types import utcnow
from portal.extensions import db
from portal.testing import PASSWORD, make_user

NEW_PASSWORD = "new-secret-77"


def field_error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1).strip()) if match else None


def input_value(page: str, field: str) -> str | None:
    """The value an <input> renders (what the user typed comes back)."""
    tag = re.search(rf'<input[^>]*\bname="{field}"[^>]*>', page)
    if tag is None:
        return None
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else ""


def select_options(page: str, field: str) -> set[int]:
    block = re.search(rf'<select[^>]*\bname="{field}"[^>]*>(.*?)</select>', page, re.S)
    assert block, f"no <select name={field}>"
    return {int(v) for v in re.findall(r'<option[^>]*value="(\d+)"', block.group(1))}


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def audits(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
    ).all()


def fresh(model, ident):
    db.session.expire_all()
    return db.session.get(model, ident)


@pytest.fixture
def rita(tree):
    """A region admin, reading the pages in English."""
    return make_user("rita", (tree["region"], "admin"), locale="en")


@pytest.fixture
def admin(client, rita):
    response = client.login("rita")
    assert response.status_code == 302
    return client


VALID = {"username": "lena", "display_name": "Lena Li", "email": "lena@example.com",
         "password": PASSWORD, "role": "staff"}


# ---- create ------------------------------------------------------------------------------------


def test_core_01_create_user_validates_every_field_next_to_it_and_keeps_the_input(admin, tree):
    users, memberships = count(User), count(Membership)
    typed = {"username": "Lena Li!", "display_name": "", "email": "not-an-email",
             "password": "abcdefghijklmnop", "unit_id": tree["north"].id, "role": "staff"}
    response = admin.post_form("/admin/users/new", typed)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "lowercase letters" in field_error(page, "username")
    assert field_error(page, "display_name")
    assert field_error(page, "email")
    assert field_error(page, "password") == "Mix letters with digits or symbols."
    assert field_error(page, "unit_id") is None and field_error(page, "role") is None
    # what was typed is kept, except the password
    assert input_value(page, "username") == "Lena Li!"
    assert input_value(page, "email") == "not-an-email"
    assert "abcdefghijklmnop" not in page
    assert input_value(page, "password") == ""
    assert re.search(rf'<option[^>]*selected[^>]*value="{tree["north"].id}"|'
                     rf'<option[^>]*value="{tree["north"].id}"[^>]*selected', page)
    # nothing written
    assert (count(User), count(Membership)) == (users, memberships)
    assert audits("user.created") == []


@pytest.mark.parametrize("field, value, message", [
    ("username", "", "This field is required."),
    ("username", "x", "lowercase letters"),
    ("display_name", "x" * 121, "120"),
    ("email", "lena@", "Invalid email address."),
    ("password", "short-1", "At least 10 characters."),
    ("password", "", "This field is required."),
    ("role", "emperor", "Not a valid choice"),
])
def test_core_01_create_user_refuses_each_bad_field(admin, tree, field, value, message):
    users = count(User)
    data = {**VALID, "unit_id": tree["north"].id, field: value}
    response = admin.post_form("/admin/users/new", data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = field_error(page, field)
    assert error and message in error
    assert [f for f in ("username", "display_name", "email", "password", "unit_id", "role")
            if f != field and field_error(page, f)] == []
    assert count(User) == users


def test_core_01_duplicate_username_is_refused_whatever_the_case(admin, tree):
    make_user("lena", (tree["club"], "staff"))  # taken, even by someone outside the admin's scope
    users, memberships = count(User), count(Membership)
    response = admin.post_form("/admin/users/new", {**VALID, "username": "Lena",
                                                    "unit_id": tree["north"].id})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert field_error(page, "username") == "This username is taken."
    assert input_value(page, "username") == "Lena"
    assert (count(User), count(Membership)) == (users, memberships)


def test_core_01_created_user_can_log_in_and_the_creation_is_audited(app, admin, tree, rita):
    response = admin.post_form("/admin/users/new", {**VALID, "unit_id": tree["north"].id})
    assert response.status_code == 302
    lena = db.session.scalar(select(User).where(User.username == "lena"))
    assert lena is not None and lena.display_name == "Lena Li" and lena.email == "lena@example.com"
    assert response.headers["Location"] == f"/admin/users/{lena.id}"
    assert [(m.unit_id, m.role) for m in lena.memberships] == [(tree["north"].id, "staff")]
    assert PASSWORD not in lena.password_hash and lena.password_hash.startswith("$argon2id$")
    [entry] = audits("user.created")
    assert entry.actor_id == rita.id and entry.object_id == str(lena.id)
    assert entry.unit_id == tree["north"].id
    assert entry.after["username"] == "lena" and entry.after["role"] == "staff"
    assert "password" not in str(entry.after)

    other = app.test_client()
    assert other.login("lena").status_code == 302
    assert other.get("/").status_code == 200


def test_core_01_create_user_offers_and_accepts_only_units_in_scope(admin, tree):
    page = admin.get("/admin/users/new").get_data(as_text=True)
    scope = {tree["region"].id, tree["north"].id, tree["south"].id}
    assert select_options(page, "unit_id") == scope
    users = count(User)
    for outside in (tree["company"], tree["club"], 99999):
        unit_id = outside if isinstance(outside, int) else outside.id
        response = admin.post_form("/admin/users/new", {**VALID, "unit_id": unit_id})
        assert response.status_code == 400
        assert field_error(response.get_data(as_text=True), "unit_id")
    assert count(User) == users


# ---- visibility --------------------------------------------------------------------------------


def test_core_01_admin_sees_only_users_with_a_role_in_scope(admin, tree):
    inside = make_user("nina", (tree["north"], "staff"))
    outside = make_user("carl", (tree["club"], "manager"))
    above = make_user("boss", (tree["company"], "manager"))  # sees east, but is not in its scope
    listing = admin.get("/admin/users").get_data(as_text=True)
    assert "nina" in listing
    assert "carl" not in listing and "boss" not in listing
    assert admin.get(f"/admin/users/{inside.id}").status_code == 200
    for user in (outside, above):
        assert admin.get(f"/admin/users/{user.id}").status_code == 404
        # and no action reaches them either
        assert admin.post_form(f"/admin/users/{user.id}/edit",
                               {"display_name": "Hacked", "active": "y"}).status_code == 404
        response = admin.post_form(f"/admin/users/{user.id}/password",
                                   {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert response.status_code == 404
        assert admin.post_form(f"/admin/users/{user.id}/roles",
                               {"unit_id": tree["north"].id, "role": "staff"}).status_code == 404
    assert fresh(User, outside.id).display_name == "Carl"
    assert len(fresh(User, above.id).memberships) == 1


def test_core_01_staff_and_managers_cannot_reach_the_user_admin(app, tree):
    make_user("nina", (tree["north"], "staff"))
    make_user("mona", (tree["region"], "manager"))
    for name in ("nina", "mona"):
        client = app.test_client()
        client.login(name)
        assert client.get("/admin/users").status_code == 403
        assert client.get("/admin/users/new").status_code == 403
        response = client.post_form("/admin/users/new", {**VALID, "unit_id": tree["north"].id})
        assert response.status_code == 403
    assert db.session.scalar(select(User).where(User.username == "lena")) is None


# ---- roles ---------------------------------------------------------------------------------------


def test_core_01_grant_offers_only_units_in_scope_and_refuses_a_forged_unit(admin, tree):
    nina = make_user("nina", (tree["north"], "staff"))
    page = admin.get(f"/admin/users/{nina.id}").get_data(as_text=True)
    scope = {tree["region"].id, tree["north"].id, tree["south"].id}
    assert select_options(page, "unit_id") == scope
    memberships = count(Membership)
    for forged in (tree["club"].id, tree["company"].id):
        response = admin.post_form(f"/admin/users/{nina.id}/roles",
                                   {"unit_id": forged, "role": "supervisor"})
        assert response.status_code == 400
        assert field_error(response.get_data(as_text=True), "unit_id")
    assert count(Membership) == memberships
    assert audits("membership.granted") == []


def test_core_01_grant_and_revoke_a_role_with_audit(admin, tree, rita):
    nina = make_user("nina", (tree["north"], "staff"))
    response = admin.post_form(f"/admin/users/{nina.id}/roles",
                               {"unit_id": tree["south"].id, "role": "supervisor"})
    assert response.status_code == 302
    roles = {(m.unit_id, m.role) for m in fresh(User, nina.id).memberships}
    assert roles == {(tree["north"].id, "staff"), (tree["south"].id, "supervisor")}
    [granted] = audits("membership.granted")
    assert granted.actor_id == rita.id and granted.object_id == str(nina.id)
    assert granted.after == {"role": "supervisor", "unit_id": tree["south"].id}

    # the same role twice is refused next to the field
    response = admin.post_form(f"/admin/users/{nina.id}/roles",
                               {"unit_id": tree["south"].id, "role": "supervisor"})
    assert response.status_code == 400
    assert "already has this role" in field_error(response.get_data(as_text=True), "role")
    assert len(fresh(User, nina.id).memberships) == 2

    membership = db.session.scalar(select(Membership).where(
        Membership.user_id == nina.id, Membership.role == "supervisor"))
    response = admin.post_form(f"/admin/users/{nina.id}/roles/{membership.id}/revoke")
    assert response.status_code == 302
    assert {(m.unit_id, m.role) for m in fresh(User, nina.id).memberships} == {
        (tree["north"].id, "staff")}
    [revoked] = audits("membership.revoked")
    assert revoked.before == {"role": "supervisor", "unit_id": tree["south"].id}


def test_core_01_a_role_outside_scope_cannot_be_revoked(admin, tree):
    nina = make_user("nina", (tree["north"], "staff"), (tree["club"], "manager"))
    elsewhere = next(m for m in nina.memberships if m.unit_id == tree["club"].id)
    page = admin.get(f"/admin/users/{nina.id}").get_data(as_text=True)
    assert f"/roles/{elsewhere.id}/revoke" not in page
    response = admin.post_form(f"/admin/users/{nina.id}/roles/{elsewhere.id}/revoke")
    assert response.status_code == 404
    assert len(fresh(User, nina.id).memberships) == 2
    assert audits("membership.revoked") == []


def test_core_01_revoking_the_last_role_in_scope_leaves_the_user_out_of_sight(admin, tree):
    nina = make_user("nina", (tree["north"], "staff"), (tree["club"], "staff"))
    mine = next(m for m in nina.memberships if m.unit_id == tree["north"].id)
    response = admin.post_form(f"/admin/users/{nina.id}/roles/{mine.id}/revoke")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/users"
    assert admin.get(f"/admin/users/{nina.id}").status_code == 404


def test_core_01_admin_cannot_revoke_own_admin_role(admin, tree, rita):
    mine = rita.memberships[0]
    response = admin.post_form(f"/admin/users/{rita.id}/roles/{mine.id}/revoke")
    assert response.status_code == 302
    assert [m.role for m in fresh(User, rita.id).memberships] == ["admin"]
    assert audits("membership.revoked") == []


# ---- disable / reset -----------------------------------------------------------------------------


def test_core_01_disable_a_user_fully_in_scope_ends_sessions_and_is_audited(app, admin, tree, rita):
    nina = make_user("nina", (tree["north"], "staff"), (tree["south"], "staff"))
    other = app.test_client()
    other.login("nina")
    assert other.get("/").status_code == 200
    response = admin.post_form(f"/admin/users/{nina.id}/edit",
                               {"display_name": "Nina N", "email": ""})  # "active" unticked
    assert response.status_code == 302
    nina = fresh(User, nina.id)
    assert nina.active is False and nina.display_name == "Nina N"
    assert other.get("/").status_code == 302  # her session ended
    open_sessions = db.session.scalars(select(UserSession).where(
        UserSession.user_id == nina.id, UserSession.ended_at.is_(None))).all()
    assert open_sessions == []
    [entry] = audits("user.updated")
    assert entry.actor_id == rita.id
    assert entry.before == {"display_name": "Nina", "email": None, "active": True}
    assert entry.after == {"display_name": "Nina N", "email": None, "active": False}
    assert app.test_client().login("nina").status_code == 401


def test_core_01_edit_validates_and_writes_nothing_on_error(admin, tree):
    nina = make_user("nina", (tree["north"], "staff"))
    response = admin.post_form(f"/admin/users/{nina.id}/edit",
                               {"display_name": "", "email": "nope", "active": "y"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert field_error(page, "display_name") and field_error(page, "email")
    assert input_value(page, "email") == "nope"
    assert fresh(User, nina.id).display_name == "Nina"
    assert audits("user.updated") == []


def test_core_01_disable_or_reset_refused_when_a_role_lies_outside_scope(admin, tree):
    nina = make_user("nina", (tree["north"], "staff"), (tree["club"], "staff"))
    before_hash = nina.password_hash
    page = admin.get(f"/admin/users/{nina.id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f"/admin/users/{nina.id}/password" not in text  # no reset form offered
    response = admin.post_form(f"/admin/users/{nina.id}/edit", {"display_name": "Nina"})
    assert response.status_code == 403
    response = admin.post_form(f"/admin/users/{nina.id}/password",
                               {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 403
    nina = fresh(User, nina.id)
    assert nina.active is True and nina.password_hash == before_hash
    assert audits("user.updated") == [] and audits("user.password_reset") == []
    # the name may still be corrected while she stays active
    response = admin.post_form(f"/admin/users/{nina.id}/edit",
                               {"display_name": "Nina Wu", "active": "y"})
    assert response.status_code == 302
    assert fresh(User, nina.id).display_name == "Nina Wu"


def test_core_01_admin_cannot_disable_own_account(admin, rita):
    response = admin.post_form(f"/admin/users/{rita.id}/edit", {"display_name": "Rita"})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "active") == \
        "You cannot disable your own account."
    assert fresh(User, rita.id).active is True
    assert admin.get("/admin/users").status_code == 200
    assert audits("user.updated") == []


def test_core_01_reset_password_validates_then_ends_sessions_and_clears_failures(app, admin, tree):
    nina = make_user("nina", (tree["north"], "staff"))
    for minutes in range(10):  # ten failures from the tablet's address: nina waits there
        db.session.add(LoginAttempt(username="nina", success=False, remote_addr="127.0.0.1",
                                    at=utcnow() - timedelta(seconds=minutes)))
    db.session.commit()
    assert app.test_client().login("nina").status_code == 429
    old_hash = nina.password_hash
    response = admin.post_form(f"/admin/users/{nina.id}/password",
                               {"password": NEW_PASSWORD, "confirm": "something-else-1"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert field_error(page, "confirm") == "The two entries differ."
    assert NEW_PASSWORD not in page
    assert fresh(User, nina.id).password_hash == old_hash

    response = admin.post_form(f"/admin/users/{nina.id}/password",
                               {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    nina = fresh(User, nina.id)
    assert nina.password_hash != old_hash
    [entry] = audits("user.password_reset")
    assert entry.object_id == str(nina.id) and NEW_PASSWORD not in str(entry.after)
    assert entry.after == {"failed_logins_cleared": 10}
    other = app.test_client()
    assert other.login("nina", PASSWORD).status_code == 401
    assert other.login("nina", NEW_PASSWORD).status_code == 302


def test_core_01_user_pages_answer_htmx_with_a_redirect_header(admin, tree):
    response = admin.post_form("/admin/users/new", {**VALID, "unit_id": tree["north"].id},
                               htmx=True)
    assert response.status_code == 200
    lena = db.session.scalar(select(User).where(User.username == "lena"))
    assert response.headers["HX-Redirect"] == f"/admin/users/{lena.id}"


def test_core_01_user_search_is_limited_to_scope(admin, tree):
    make_user("nina.north", (tree["north"], "staff"))
    make_user("nina.club", (tree["club"], "staff"))
    response = admin.get("/admin/users?q=NINA", headers={"HX-Request": "true"})
    page = response.get_data(as_text=True)
    assert "<html" not in page
    assert "nina.north" in page and "nina.club" not in page
