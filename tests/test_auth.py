"""Logging in, logging out, throttling and password hashing, as a user or an attacker sees them.

CORE-01: users log in with their own account; the session is theirs alone.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, update

from portal.audit import AuditEntry
from portal.auth.models import LoginAttempt, User, UserSession
from portal.auth.passwords import hash_password, verify_password
from portal.db_types import utcnow
from portal.extensions import db
from portal.testing import PASSWORD, make_user

COOKIE = "portal_session"
WRONG = "wrong-password-1"


def cookie(client) -> str | None:
    found = client.get_cookie(COOKIE)
    return found.value if found else None


def replay(app, value: str):
    """A fresh browser that carries only a copied session cookie."""
    other = app.test_client()
    other.set_cookie(COOKIE, value)
    return other


def english(client) -> None:
    """Choose English, so the assertions below read the English message ids."""
    response = client.post_form("/language", {"language": "en", "next": "/login"})
    assert response.status_code == 302


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', html, re.S)
    return match.group(1).strip() if match else None


def fresh(model, ident):
    db.session.expire_all()
    return db.session.get(model, ident)


# ---- login ---------------------------------------------------------------------------------------


def test_core_01_login_issues_a_new_session_cookie(app, client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.get("/login")
    before = cookie(client)
    assert before, "the login page sets a (pre-login) session cookie for its CSRF token"
    response = client.login("anna")
    assert response.status_code == 302
    after = cookie(client)
    assert after and after != before
    assert client.get("/").status_code == 200
    # the pre-login cookie does not carry the login
    stale = replay(app, before).get("/")
    assert stale.status_code == 302
    assert stale.headers["Location"].startswith("/login")


def test_core_01_each_login_gets_its_own_server_side_session(app, tree):
    anna = make_user("anna", (tree["north"], "staff"))
    first, second = app.test_client(), app.test_client()
    first.login("anna")
    second.login("anna")
    assert cookie(first) != cookie(second)
    rows = db.session.scalars(select(UserSession).where(UserSession.user_id == anna.id)).all()
    assert len(rows) == 2
    assert len({r.token_hash for r in rows}) == 2
    assert all(r.ended_at is None for r in rows)


def test_core_01_session_cookie_does_not_hold_the_user_id_or_token_in_clear(app, client, tree):
    anna = make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == anna.id))
    # only the hash is stored; the token itself is not derivable from the database row
    assert len(row.token_hash) == 64
    assert row.token_hash not in cookie(client)


def test_core_01_login_after_logout_is_a_new_session(app, client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    first = cookie(client)
    client.post_form("/logout")
    client.login("anna")
    assert cookie(client) != first
    assert replay(app, first).get("/").status_code == 302
    assert client.get("/").status_code == 200


def test_core_01_no_remember_me_cookie(client, tree):
    make_user("anna", (tree["north"], "staff"))
    response = client.login("anna")
    names = [h.split("=", 1)[0] for h in response.headers.getlist("Set-Cookie")]
    assert names == [COOKIE]
    assert "remember" not in client.get("/login").get_data(as_text=True).lower()


def test_core_01_wrong_password_error_sits_at_the_password_field_and_username_is_kept(client, tree):
    make_user("anna", (tree["north"], "staff"))
    token = client.csrf("/login")
    response = client.post("/login", data={"username": "Anna", "password": WRONG,
                                            "csrf_token": token})
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert field_error(html, "password")
    assert field_error(html, "username") is None
    assert re.search(r'<input[^>]*id="username"[^>]*value="Anna"', html)
    # the password is never echoed back
    assert WRONG not in html
    assert 'aria-invalid="true"' in html
    assert client.get("/").status_code == 302


def test_core_01_disabled_and_unknown_users_get_the_same_message(client, tree):
    make_user("anna", (tree["north"], "staff"))
    make_user("gone", (tree["north"], "staff"), active=False)
    english(client)
    messages = {}
    for username, password in [("anna", WRONG), ("gone", PASSWORD), ("nobody", PASSWORD)]:
        token = client.csrf("/login")
        response = client.post("/login", data={"username": username, "password": password,
                                                "csrf_token": token})
        assert response.status_code == 401, username
        messages[username] = field_error(response.get_data(as_text=True), "password")
    assert messages["anna"] == messages["gone"] == messages["nobody"]
    assert "Wrong username or password" in messages["anna"]
    assert client.get("/").status_code == 302


def test_core_01_disabled_user_cannot_log_in_even_with_the_right_password(client, tree):
    make_user("gone", (tree["north"], "staff"), active=False)
    response = client.login("gone")
    assert response.status_code == 401
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 0
    assert client.get("/").status_code == 302


def test_core_01_login_is_case_insensitive_on_the_username(client, tree):
    make_user("anna", (tree["north"], "staff"))
    assert client.login("  ANNA ").status_code == 302
    assert client.get("/").status_code == 200


def test_core_01_empty_form_shows_field_errors(client, tree):
    token = client.csrf("/login")
    response = client.post("/login", data={"username": "", "password": "", "csrf_token": token})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert field_error(html, "username") and field_error(html, "password")


@pytest.mark.parametrize("target", [
    "//evil.com",
    "https://evil.com",
    "http://evil.com/",
    "/\\evil.com",
    "\\\\evil.com",
    "/\t/evil.com",
    "https:/evil.com",
    "javascript:alert(1)",
])
def test_core_01_next_parameter_cannot_redirect_off_site(client, tree, target):
    make_user("anna", (tree["north"], "staff"))
    token = client.csrf("/login")
    response = client.post("/login", query_string={"next": target},
                           data={"username": "anna", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "evil" not in location and "javascript" not in location
    assert location == "/"


@pytest.mark.parametrize("target", ["//evil.com", "https://evil.com", "/\\evil.com", "/\t/evil.com"])
def test_core_01_language_switch_cannot_redirect_off_site(client, target):
    response = client.post_form("/language", {"language": "en", "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_core_01_language_switch_returns_to_the_page(client):
    response = client.post_form("/language", {"language": "en", "next": "/login?x=1"})
    assert response.headers["Location"] == "/login?x=1"


def test_core_01_next_parameter_within_the_portal_is_followed(client, tree):
    make_user("anna", (tree["north"], "staff"))
    bounced = client.get("/notices/?ended=1")
    assert bounced.status_code == 302
    login_url = bounced.headers["Location"]
    assert login_url.startswith("/login?next=")
    token = client.csrf(login_url)
    response = client.post(login_url, data={"username": "anna", "password": PASSWORD,
                                            "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/notices/?ended=1"


def test_core_01_logged_in_user_visiting_login_goes_to_the_dashboard(client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    response = client.get("/login")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


# ---- logout --------------------------------------------------------------------------------------


def test_core_01_logout_ends_the_server_side_session(app, client, tree):
    anna = make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    copied = cookie(client)
    assert replay(app, copied).get("/").status_code == 200  # the copy works while logged in
    response = client.post_form("/logout")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    replayed = replay(app, copied).get("/")
    assert replayed.status_code == 302
    assert replayed.headers["Location"].startswith("/login")
    assert client.get("/").status_code == 302
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == anna.id))
    assert row.ended_at is not None and row.end_reason == "logout"
    assert db.session.scalar(select(func.count()).where(
        AuditEntry.action == "auth.logout", AuditEntry.actor_id == anna.id)) == 1


def test_core_01_logout_ends_only_that_session(app, tree):
    make_user("anna", (tree["north"], "staff"))
    tablet, desktop = app.test_client(), app.test_client()
    tablet.login("anna")
    desktop.login("anna")
    tablet.post_form("/logout")
    assert tablet.get("/").status_code == 302
    assert desktop.get("/").status_code == 200


def test_core_01_logout_by_get_is_not_allowed(client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


def test_core_01_logout_by_htmx_redirects_with_hx_redirect(app, client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    copied = cookie(client)
    response = client.post_form("/logout", htmx=True)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/login"
    assert replay(app, copied).get("/").status_code == 302


# ---- throttling ----------------------------------------------------------------------------------


@pytest.fixture
def three_strikes(app, monkeypatch):
    """The limit at 3 instead of 10, for tests about how the lock behaves, not where it starts
    (ten argon2 checks per test add up)."""
    monkeypatch.setitem(app.config, "PORTAL_LOGIN_MAX_FAILURES", 3)


def fail(client, username: str, times: int, password: str = WRONG):
    response = None
    for _ in range(times):
        token = client.csrf("/login")
        response = client.post("/login", data={"username": username, "password": password,
                                                "csrf_token": token})
    return response


def test_core_01_nine_failures_do_not_lock(client, tree):
    anna = make_user("anna", (tree["north"], "staff"))
    assert fail(client, "anna", 9).status_code == 401
    assert fresh(User, anna.id).locked_until is None
    assert client.login("anna").status_code == 302
    assert client.get("/").status_code == 200


def test_core_01_ten_failures_lock_the_account_even_for_the_right_password(client, tree):
    anna = make_user("anna", (tree["north"], "staff"))
    english(client)
    assert fail(client, "anna", 9).status_code == 401
    tenth = fail(client, "anna", 1)
    assert tenth.status_code == 429
    assert "locked" in tenth.get_data(as_text=True)
    until = fresh(User, anna.id).locked_until
    assert until is not None
    assert timedelta(minutes=14) < until - utcnow() <= timedelta(minutes=15)
    right = client.login("anna")
    assert right.status_code == 429
    html = right.get_data(as_text=True)
    assert "Too many failed attempts" in html and "locked until" in html
    assert client.get("/").status_code == 302
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 0


def test_core_01_lock_expires(client, tree, three_strikes):
    anna = make_user("anna", (tree["north"], "staff"))
    fail(client, "anna", 3)
    assert client.login("anna").status_code == 429
    db.session.execute(update(User).where(User.id == anna.id)
                       .values(locked_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert client.login("anna").status_code == 302
    assert client.get("/").status_code == 200


def test_core_01_one_failure_after_the_lock_expired_does_not_relock(client, tree, three_strikes):
    anna = make_user("anna", (tree["north"], "staff"))
    fail(client, "anna", 3)
    # 15 minutes and a second later: the failures are still inside a 15-minute window
    # that reaches back before the lock ended, but they were already punished
    past = utcnow() - timedelta(seconds=1)
    db.session.execute(update(LoginAttempt).values(at=past - timedelta(minutes=14, seconds=50)))
    db.session.execute(update(User).where(User.id == anna.id).values(locked_until=past))
    db.session.commit()
    assert fail(client, "anna", 1).status_code == 401
    assert fresh(User, anna.id).locked_until == past


def test_core_01_failures_older_than_the_window_do_not_count(client, tree, three_strikes):
    anna = make_user("anna", (tree["north"], "staff"))
    fail(client, "anna", 2)
    db.session.execute(update(LoginAttempt).values(at=utcnow() - timedelta(minutes=16)))
    db.session.commit()
    assert fail(client, "anna", 1).status_code == 401
    assert fresh(User, anna.id).locked_until is None


def test_core_01_a_successful_login_resets_the_failure_count(client, tree, three_strikes):
    anna = make_user("anna", (tree["north"], "staff"))
    fail(client, "anna", 2)
    client.login("anna")
    client.post_form("/logout")
    assert fail(client, "anna", 2).status_code == 401
    assert fresh(User, anna.id).locked_until is None


def test_core_01_throttling_is_kept_in_the_database_across_clients(app, tree):
    """Several gunicorn workers = several clients without shared memory: the count is shared."""
    anna = make_user("anna", (tree["north"], "staff"))
    for i in range(10):
        fail(app.test_client(), "anna", 1)
    assert fresh(User, anna.id).locked_until is not None
    assert db.session.scalar(select(func.count()).where(
        LoginAttempt.username == "anna", LoginAttempt.success.is_(False))) == 10
    assert app.test_client().login("anna").status_code == 429


def test_core_01_lock_applies_to_the_account_not_to_other_users(client, tree, three_strikes):
    make_user("anna", (tree["north"], "staff"))
    make_user("bert", (tree["north"], "staff"))
    fail(client, "anna", 3)
    assert client.login("anna").status_code == 429
    assert client.login("bert").status_code == 302


def test_core_01_failures_and_lock_are_audited_and_logged(client, tree, caplog):
    anna = make_user("anna", (tree["north"], "staff"))
    caplog.set_level(logging.WARNING, logger="portal.security")
    fail(client, "anna", 10)
    fail(client, "nobody", 1)
    db.session.expire_all()
    failed = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "auth.login_failed")).all()
    assert len(failed) == 11
    assert sum(1 for e in failed if e.object_id == str(anna.id)) == 10
    assert any(e.after == {"username": "nobody"} and e.object_id is None for e in failed)
    locked = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "auth.locked")).all()
    assert len(locked) == 1
    assert locked[0].object_id == str(anna.id)
    assert locked[0].after["failures"] == 10
    records = [r for r in caplog.records if r.name == "portal.security"]
    failed_logs = [r for r in records if "login failed" in r.getMessage()]
    assert len(failed_logs) == 11
    assert all(r.levelno >= logging.WARNING for r in failed_logs)
    assert any("account locked" in r.getMessage() and "anna" in r.getMessage() for r in records)


def test_core_01_successful_login_is_audited(client, tree):
    anna = make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "auth.login"))
    assert entry is not None and entry.actor_id == anna.id
    assert db.session.scalar(select(func.count()).where(
        LoginAttempt.username == "anna", LoginAttempt.success.is_(True))) == 1


def test_core_01_throttle_settings_are_read_from_config(app, client, tree, monkeypatch):
    anna = make_user("anna", (tree["north"], "staff"))
    monkeypatch.setitem(app.config, "PORTAL_LOGIN_MAX_FAILURES", 3)
    monkeypatch.setitem(app.config, "PORTAL_LOGIN_LOCKOUT", timedelta(minutes=2))
    assert fail(client, "anna", 2).status_code == 401
    assert fail(client, "anna", 1).status_code == 429
    until = fresh(User, anna.id).locked_until
    assert timedelta(minutes=1) < until - utcnow() <= timedelta(minutes=2)


# ---- argon2id ------------------------------------------------------------------------------------


def test_core_01_passwords_are_stored_as_argon2id(client, tree):
    anna = make_user("anna", (tree["north"], "staff"))
    assert anna.password_hash.startswith("$argon2id$")
    assert PASSWORD not in anna.password_hash
    assert hash_password(PASSWORD) != hash_password(PASSWORD)  # salted


def test_core_01_weak_parameters_are_rehashed_at_login(client, tree):
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    anna = make_user("anna", (tree["north"], "staff"))
    anna.password_hash = weak
    db.session.commit()
    assert PasswordHasher().check_needs_rehash(weak)
    assert client.login("anna").status_code == 302
    stored = fresh(User, anna.id).password_hash
    assert stored != weak
    assert stored.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(stored)
    client.post_form("/logout")
    assert client.login("anna").status_code == 302  # the new hash still verifies


def test_core_01_wrong_password_does_not_rehash(tree):
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    user = User(username="x", display_name="X", password_hash=weak)
    assert verify_password(user, WRONG) is False
    assert user.password_hash == weak
    assert verify_password(user, PASSWORD) is True
    assert user.password_hash != weak


def test_core_01_argon2i_hashes_are_upgraded_to_argon2id(client, tree):
    from argon2 import Type

    old = PasswordHasher(type=Type.I).hash(PASSWORD)
    anna = make_user("anna", (tree["north"], "staff"))
    anna.password_hash = old
    db.session.commit()
    assert client.login("anna").status_code == 302
    assert fresh(User, anna.id).password_hash.startswith("$argon2id$")


def test_core_01_garbage_hash_refuses_login(client, tree):
    anna = make_user("anna", (tree["north"], "staff"))
    anna.password_hash = "not-a-hash"
    db.session.commit()
    assert client.login("anna").status_code == 401


def test_core_01_unknown_usernames_lock_like_real_ones(client, tree, three_strikes):
    """The lock message must not tell which usernames exist."""
    make_user("anna", (tree["north"], "staff"))
    english(client)
    real = fail(client, "anna", 3)
    ghost = fail(client, "nobody-here", 3)
    assert real.status_code == ghost.status_code == 429
    assert "locked until" in ghost.get_data(as_text=True)
    again = fail(client, "nobody-here", 1)
    assert again.status_code == 429
