"""One rendered form is sent once (``portal.submissions``): a second POST with the same
submission key answers with the first one's redirect and creates nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from portal.auth.models import User
from portal.extensions import db
from portal.submissions import FIELD, HEADER, FormSubmission
from portal.testing import Tab, concurrently, make_user, race_rounds

@pytest.fixture
def admin(tree):
    return make_user("root", (tree["company"], "admin"))


def new_user_form(tree, username: str, key: str | None) -> dict:
    data = {"username": username, "display_name": "New Person", "password": "another-long-pass-42",
            "unit_id": str(tree["north"].id), "role": "staff"}
    if key is not None:
        data[FIELD] = key
    return data


def users_named(username: str) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(User).where(User.username == username))


def test_a_second_post_of_one_rendered_form_redirects_where_the_first_did(tree, admin, client):
    client.login("root")
    data = new_user_form(tree, "nina", uuid.uuid4().hex)
    first = client.post_form("/admin/users/new", data)
    assert first.status_code == 302
    again = client.post_form("/admin/users/new", data)
    assert (again.status_code, again.location) == (302, first.location)
    assert users_named("nina") == 1


def test_a_repeat_by_htmx_header_gets_the_first_ones_redirect(tree, admin, client):
    client.login("root")
    key = uuid.uuid4().hex
    first = client.post_form("/admin/users/new", new_user_form(tree, "nina", None), htmx=True,
                             headers={HEADER: key})
    again = client.post_form("/admin/users/new", new_user_form(tree, "nina", None), htmx=True,
                             headers={HEADER: key})
    assert first.headers["HX-Redirect"] == again.headers["HX-Redirect"]
    assert users_named("nina") == 1


def test_a_refused_submission_lets_its_key_go_so_the_corrected_form_is_sent(tree, admin, client):
    client.login("root")
    key = uuid.uuid4().hex
    refused = client.post_form("/admin/users/new", {**new_user_form(tree, "nina", key), "password": "short"})
    assert refused.status_code == 400
    corrected = client.post_form("/admin/users/new", new_user_form(tree, "nina", key))
    assert corrected.status_code == 302
    assert users_named("nina") == 1


def test_a_key_of_another_user_is_not_theirs_to_replay(tree, admin, client, app):
    make_user("rita", (tree["company"], "admin"))
    client.login("root")
    key = uuid.uuid4().hex
    assert client.post_form("/admin/users/new", new_user_form(tree, "nina", key)).status_code == 302
    other = app.test_client()
    other.login("rita")
    second = other.post_form("/admin/users/new", new_user_form(tree, "nora", key))
    assert second.status_code == 302 and "nora" not in (second.location or "")
    assert users_named("nora") == 1  # rita's post ran as her own
    assert db.session.scalar(select(FormSubmission.user_id).where(FormSubmission.key == key)) == admin.id


def test_a_key_that_is_not_a_key_is_ignored(tree, admin, client):
    client.login("root")
    response = client.post_form("/admin/users/new", new_user_form(tree, "nina", "'; drop table users"))
    assert response.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(FormSubmission)) == 0


def test_one_rendered_form_posted_twice_at_once_creates_one_row(tree, admin, app):
    tabs = [Tab(app, "root"), Tab(app, "root")]
    for n in race_rounds():
        data = new_user_form(tree, f"twin{n}", uuid.uuid4().hex)

        results = concurrently(app, *(tab.post("/admin/users/new", data) for tab in tabs))
        assert [getattr(r, "status_code", r) for r in results] == [302, 302]
        assert results[0].location == results[1].location
        assert users_named(f"twin{n}") == 1


def test_every_page_loads_the_script_that_gives_forms_their_keys(tree, admin, client):
    client.login("root")
    page = client.get("/admin/users/new").get_data(as_text=True)
    assert '<script src="/static/js/portal.js" defer></script>' in page
    script = client.get("/static/js/portal.js").get_data(as_text=True)
    assert f'var FIELD = "{FIELD}";' in script and f'"{HEADER}"' in script
    assert "hx-disabled-elt" in script
