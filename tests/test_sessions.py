"""Server-side sessions: idle and absolute limits, and ending a user's sessions (CORE-01).

Time is moved by editing ``UserSession`` rows, never by sleeping.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal import config as config_module
from portal.auth.models import User, UserSession
from portal.db_types import utcnow
from portal.extensions import db
from portal.testing import PASSWORD, make_app, make_user

NEW_PASSWORD = "battery-staple-77"


def session_of(username: str) -> UserSession:
    db.session.expire_all()
    user = db.session.scalar(select(User).where(User.username == username))
    rows = db.session.scalars(
        select(UserSession).where(UserSession.user_id == user.id).order_by(UserSession.id)
    ).all()
    return rows[-1]


def age(row_id: int, **fields) -> None:
    """Move a session's timestamps into the past."""
    now = utcnow()
    db.session.execute(
        update(UserSession).where(UserSession.id == row_id)
        .values(**{name: now - delta for name, delta in fields.items()})
    )
    db.session.commit()


def assert_bounced(response) -> None:
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


# ---- idle and absolute limits --------------------------------------------------------------------


def test_core_01_idle_session_within_30_minutes_lives(client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    row = session_of("anna")
    age(row.id, last_seen_at=timedelta(minutes=29))
    assert client.get("/").status_code == 200
    refreshed = session_of("anna")
    assert refreshed.ended_at is None
    assert utcnow() - refreshed.last_seen_at < timedelta(minutes=1)  # activity was recorded


def test_core_01_idle_timeout_after_30_minutes(app, client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    row = session_of("anna")
    age(row.id, last_seen_at=timedelta(minutes=31))
    assert_bounced(client.get("/"))
    ended = session_of("anna")
    assert ended.ended_at is not None and ended.end_reason == "idle"
    # bringing the timestamp back does not revive an ended session
    age(row.id, last_seen_at=timedelta(0))
    assert_bounced(client.get("/"))


def test_core_01_activity_keeps_the_session_alive(client, tree):
    """Idle means idle: a session used every 20 minutes outlives 30 minutes."""
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    row = session_of("anna")
    age(row.id, created_at=timedelta(minutes=40), last_seen_at=timedelta(minutes=20))
    assert client.get("/").status_code == 200
    assert session_of("anna").ended_at is None


def test_core_01_absolute_timeout_after_12_hours_even_when_active(client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    row = session_of("anna")
    age(row.id, created_at=timedelta(hours=11, minutes=59), last_seen_at=timedelta(seconds=5))
    assert client.get("/").status_code == 200
    age(row.id, created_at=timedelta(hours=12, minutes=1), last_seen_at=timedelta(seconds=5))
    assert_bounced(client.get("/"))
    ended = session_of("anna")
    assert ended.end_reason == "absolute"


def test_core_01_idle_timeout_is_a_setting(app, client, tree, monkeypatch):
    make_user("anna", (tree["north"], "staff"))
    monkeypatch.setitem(app.config, "PORTAL_IDLE_TIMEOUT", timedelta(minutes=5))
    client.login("anna")
    row = session_of("anna")
    age(row.id, last_seen_at=timedelta(minutes=4))
    assert client.get("/").status_code == 200
    age(row.id, last_seen_at=timedelta(minutes=6))
    assert_bounced(client.get("/"))


def test_core_01_absolute_timeout_is_a_setting(app, client, tree, monkeypatch):
    make_user("anna", (tree["north"], "staff"))
    monkeypatch.setitem(app.config, "PORTAL_ABSOLUTE_TIMEOUT", timedelta(hours=1))
    client.login("anna")
    row = session_of("anna")
    age(row.id, created_at=timedelta(minutes=61), last_seen_at=timedelta(seconds=1))
    assert_bounced(client.get("/"))


def test_core_01_timeouts_from_make_app_overrides(database_url, app, tree):
    other = make_app(database_url, PORTAL_IDLE_TIMEOUT=timedelta(minutes=2))
    try:
        make_user("anna", (tree["north"], "staff"))
        client = other.test_client()
        assert client.login("anna").status_code == 302
        row = session_of("anna")
        age(row.id, last_seen_at=timedelta(minutes=3))
        assert_bounced(client.get("/"))
        # the same session in the default app would still be fine at 3 minutes; prove the
        # override, not a broken session, did it
        assert session_of("anna").end_reason == "idle"
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.mark.parametrize(("env", "key", "expected"), [
    ({"PORTAL_IDLE_TIMEOUT_MINUTES": "10"}, "PORTAL_IDLE_TIMEOUT", timedelta(minutes=10)),
    ({"PORTAL_ABSOLUTE_TIMEOUT_HOURS": "8"}, "PORTAL_ABSOLUTE_TIMEOUT", timedelta(hours=8)),
    ({}, "PORTAL_IDLE_TIMEOUT", timedelta(minutes=30)),
    ({}, "PORTAL_ABSOLUTE_TIMEOUT", timedelta(hours=12)),
])
def test_core_01_timeouts_come_from_the_environment(env, key, expected):
    assert config_module.from_environment(env)[key] == expected


def test_core_01_expired_htmx_request_gets_hx_redirect(client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    age(session_of("anna").id, last_seen_at=timedelta(minutes=31))
    response = client.get("/panels/units", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


# ---- ending a user's sessions --------------------------------------------------------------------


def test_core_01_disabling_a_user_ends_their_sessions(app, tree):
    make_user("boss", (tree["company"], "admin"))
    anna = make_user("anna", (tree["north"], "staff"))
    admin, tablet, desktop = app.test_client(), app.test_client(), app.test_client()
    admin.login("boss")
    tablet.login("anna")
    desktop.login("anna")
    assert tablet.get("/").status_code == 200
    response = admin.post_form(f"/admin/users/{anna.id}/edit",
                               {"display_name": "Anna", "email": ""})  # 'active' unticked
    assert response.status_code == 302
    assert_bounced(tablet.get("/"))
    assert_bounced(desktop.get("/"))
    assert admin.get("/").status_code == 200
    db.session.expire_all()
    rows = db.session.scalars(select(UserSession).where(UserSession.user_id == anna.id)).all()
    assert [r.end_reason for r in rows] == ["disabled", "disabled"]
    assert tablet.login("anna").status_code == 401


def test_core_01_disabled_flag_alone_ends_a_live_session(client, tree):
    """Even if a user is disabled behind the admin page's back, the next request is refused."""
    anna = make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    db.session.execute(update(User).where(User.id == anna.id).values(active=False))
    db.session.commit()
    assert_bounced(client.get("/"))
    assert session_of("anna").end_reason == "disabled"


def test_core_01_changing_own_password_ends_every_session(app, tree):
    make_user("anna", (tree["north"], "staff"))
    tablet, desktop = app.test_client(), app.test_client()
    tablet.login("anna")
    desktop.login("anna")
    response = tablet.post_form("/account/password", {
        "current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert_bounced(desktop.get("/"))
    assert_bounced(tablet.get("/"))
    assert tablet.login("anna").status_code == 401
    assert tablet.login("anna", NEW_PASSWORD).status_code == 302
    assert tablet.get("/").status_code == 200


def test_core_01_wrong_current_password_changes_nothing(app, tree):
    make_user("anna", (tree["north"], "staff"))
    tablet, desktop = app.test_client(), app.test_client()
    tablet.login("anna")
    desktop.login("anna")
    response = tablet.post_form("/account/password", {
        "current": "not-my-password-1", "new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 400
    assert 'id="current-error"' in response.get_data(as_text=True)
    assert desktop.get("/").status_code == 200
    assert tablet.get("/").status_code == 200


def test_core_01_admin_password_reset_ends_the_users_sessions(app, tree):
    make_user("boss", (tree["company"], "admin"))
    anna = make_user("anna", (tree["north"], "staff"))
    admin, tablet = app.test_client(), app.test_client()
    admin.login("boss")
    tablet.login("anna")
    response = admin.post_form(f"/admin/users/{anna.id}/password",
                               {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert_bounced(tablet.get("/"))
    assert session_of("anna").end_reason == "password_reset"
    assert admin.get("/").status_code == 200
    assert tablet.login("anna", NEW_PASSWORD).status_code == 302


def test_core_01_admin_reset_clears_the_failed_logins(app, tree):
    make_user("boss", (tree["company"], "admin"))
    anna = make_user("anna", (tree["north"], "staff"))
    admin, tablet = app.test_client(), app.test_client()
    admin.login("boss")
    for _ in range(10):
        tablet.login("anna", "wrong-password-1")
    assert tablet.login("anna").status_code == 429
    admin.post_form(f"/admin/users/{anna.id}/password",
                    {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert tablet.login("anna", NEW_PASSWORD).status_code == 302
