"""Logging in, logging out, throttling and password hashing, as a user or an attacker sees them.

CORE-01: users log in with their own account; the session is theirs alone.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from babel.dates import format_datetime
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.auth import passwords, throttle
from portal.auth.models import LoginAttempt, User, UserSession
from portal.auth.passwords import hash_password, verify_password
from portal.config import ConfigError, from_environment
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
#
# Growing delays per (name, address), per address and per name; never an account lock that a
# stranger can trigger (portal/auth/throttle.py).

HOME, OFFICE, ATTACKER, FAR = "10.0.0.1", "10.0.0.2", "203.0.113.9", "198.51.100.7"


@pytest.fixture
def three_strikes(app, monkeypatch):
    """Delays from the third failure instead of the tenth, for tests about how the delays behave,
    not where they start (ten argon2 checks per test add up)."""
    monkeypatch.setitem(app.config, "PORTAL_LOGIN_MAX_FAILURES", 3)


def at(app, address: str):
    """A browser at ``address`` (the REMOTE_ADDR the portal sees), reading English."""
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = address
    english(other)
    return other


def fail(client, username: str, times: int, password: str = WRONG):
    response = None
    for _ in range(times):
        token = client.csrf("/login")
        response = client.post("/login", data={"username": username, "password": password,
                                                "csrf_token": token})
    return response


def failures(username: str) -> int:
    return db.session.scalar(select(func.count()).where(
        LoginAttempt.username == username, LoginAttempt.success.is_(False)))


def keys(username: str, address: str) -> dict[str, throttle.Key]:
    db.session.expire_all()
    return throttle.keys_for(username, address)


def back_in_time(delta: timedelta) -> None:
    """Every stored attempt happened ``delta`` earlier (the clock moved on by ``delta``)."""
    for row in db.session.scalars(select(LoginAttempt)):
        row.at -= delta
    db.session.commit()


def assert_throttled(response) -> str:
    assert response.status_code == 429
    message = field_error(response.get_data(as_text=True), "password")
    assert message.startswith("Too many failed attempts; try again at "), message
    return message


def test_core_01_nine_failures_from_one_address_do_not_delay(app, tree):
    make_user("anna", (tree["north"], "staff"))
    home = at(app, HOME)
    assert fail(home, "anna", 9).status_code == 401
    assert home.login("anna").status_code == 302
    assert home.get("/").status_code == 200


def test_core_01_ten_failures_from_one_address_delay_it_even_for_the_right_password(app, tree):
    make_user("anna", (tree["north"], "staff"))
    attacker = at(app, ATTACKER)
    assert fail(attacker, "anna", 9).status_code == 401
    assert_throttled(fail(attacker, "anna", 1))  # the tenth failure starts the delay
    pair = keys("anna", ATTACKER)["name+address"]
    assert pair.failures == 10 and pair.until - pair.last_at == timedelta(minutes=1)
    right = attacker.login("anna")
    assert_throttled(right)
    assert "locked" not in right.get_data(as_text=True)
    assert attacker.get("/").status_code == 302
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 0
    assert failures("anna") == 10, "a refused attempt checks no password and is not counted"


def test_core_01_the_delay_doubles_with_each_further_failure_up_to_the_cap(app, tree):
    make_user("anna", (tree["north"], "staff"))
    attacker = at(app, ATTACKER)
    fail(attacker, "anna", 10)
    seen = []
    for _ in range(3):
        pair = keys("anna", ATTACKER)["name+address"]
        seen.append(pair.until - pair.last_at)
        assert_throttled(attacker.login("anna"))  # the right password waits as well
        back_in_time(seen[-1])  # the delay has passed: the next guess is checked
        assert_throttled(fail(attacker, "anna", 1))
    pair = keys("anna", ATTACKER)["name+address"]
    seen.append(pair.until - pair.last_at)
    assert seen == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    with app.test_request_context():
        cap = app.config["PORTAL_LOGIN_MAX_DELAY"]
        assert [throttle.delay_for(n, 10, cap) for n in (0, 9)] == [None, None]
        assert throttle.delay_for(15, 10, cap) == timedelta(minutes=32)
        assert throttle.delay_for(16, 10, cap) == throttle.delay_for(10_000, 10, cap) == timedelta(hours=1)


def test_core_01_delays_end_and_the_right_password_then_gets_in(app, tree, three_strikes):
    make_user("anna", (tree["north"], "staff"))
    home = at(app, HOME)
    fail(home, "anna", 3)
    assert home.login("anna").status_code == 429
    back_in_time(timedelta(minutes=1, seconds=1))
    assert home.login("anna").status_code == 302
    assert home.get("/").status_code == 200


def test_core_01_fifty_failures_for_admin_from_one_address_do_not_stop_admin_at_another(app, tree):
    boss = make_user("admin", (tree["company"], "admin"))
    office = at(app, OFFICE)
    assert office.login("admin").status_code == 302  # the admin's own address
    office.post_form("/logout")
    attacker = at(app, ATTACKER)
    statuses = [fail(attacker, "admin", 1).status_code for _ in range(50)]
    assert statuses == [401] * 9 + [429] * 41
    assert attacker.login("admin").status_code == 429
    # the right password from the admin's own address gets in at once
    assert office.login("admin").status_code == 302
    assert office.get("/admin/users").status_code == 200
    assert fresh(User, boss.id).active
    # from an address the admin never used, the account-wide delay applies, capped at minutes
    stranger = keys("admin", FAR)["name"]
    assert stranger.failures == 10
    assert utcnow() < stranger.until <= utcnow() + app.config["PORTAL_LOGIN_ACCOUNT_MAX_DELAY"]
    assert at(app, FAR).login("admin").status_code == 429


def test_core_01_failures_spread_over_many_addresses_slow_down_the_name(app, tree, three_strikes):
    make_user("anna", (tree["north"], "staff"))
    home = at(app, HOME)
    for n in range(3):  # one guess from each of three machines: no address reaches its limit
        reply = fail(at(app, f"192.0.2.{n + 1}"), "anna", 1)
    assert reply.status_code == 429
    name = keys("anna", "192.0.2.99")["name"]
    assert name.failures == 3 and name.until - name.last_at == timedelta(minutes=1)
    assert_throttled(fail(at(app, "192.0.2.99"), "anna", 1, password=PASSWORD))
    # a botnet gains one guess per delay, and the delay grows to its modest cap
    for n in range(8):
        back_in_time(timedelta(minutes=5, seconds=1))
        assert fail(at(app, f"192.0.2.{10 + n}"), "anna", 1).status_code == 429
    name = keys("anna", "192.0.2.99")["name"]
    assert name.failures == 11
    cap = app.config["PORTAL_LOGIN_ACCOUNT_MAX_DELAY"]
    assert name.until - name.last_at == cap == timedelta(minutes=5)
    # anna, at home where she has never failed but also never logged in, waits those minutes
    assert home.login("anna").status_code == 429
    back_in_time(timedelta(minutes=5, seconds=1))
    assert home.login("anna").status_code == 302


def test_core_01_spraying_many_names_from_one_address_delays_that_address(app, tree, monkeypatch):
    monkeypatch.setitem(app.config, "PORTAL_LOGIN_ADDRESS_MAX_FAILURES", 4)
    make_user("anna", (tree["north"], "staff"))
    sprayer = at(app, ATTACKER)
    for name in ("ben", "carl", "dora"):
        assert fail(sprayer, name, 1).status_code == 401
    assert_throttled(fail(sprayer, "emma", 1))
    assert keys("zoe", ATTACKER)["address"].failures == 4
    assert_throttled(sprayer.login("anna"))  # every name from that address waits
    assert at(app, HOME).login("anna").status_code == 302  # not from elsewhere


def test_core_01_a_successful_login_forgives_that_address_only(app, tree, three_strikes):
    make_user("anna", (tree["north"], "staff"))
    home, attacker = at(app, HOME), at(app, ATTACKER)
    home.login("anna")  # anna's own address: the name's own delay does not hold there
    home.post_form("/logout")
    assert fail(home, "anna", 2).status_code == 401
    assert fail(attacker, "anna", 1).status_code == 429  # three for the name: strangers wait
    assert home.login("anna").status_code == 302
    home.post_form("/logout")
    assert keys("anna", HOME)["name+address"].failures == 0
    assert keys("anna", ATTACKER)["name+address"].failures == 1
    assert keys("anna", ATTACKER)["name"].failures == 1
    assert fail(home, "anna", 2).status_code == 401  # anna's typos start again from nothing
    assert fail(attacker, "anna", 1).status_code == 429


def test_core_01_failures_older_than_the_window_do_not_count(app, tree, three_strikes):
    make_user("anna", (tree["north"], "staff"))
    home = at(app, HOME)
    fail(home, "anna", 2)
    back_in_time(app.config["PORTAL_LOGIN_WINDOW"] + timedelta(seconds=1))
    assert fail(home, "anna", 2).status_code == 401
    assert home.login("anna").status_code == 302


def test_core_01_throttling_is_kept_in_the_database_across_clients(app, tree):
    """Several gunicorn workers = several clients without shared memory: the count is shared."""
    make_user("anna", (tree["north"], "staff"))
    for _ in range(10):
        fail(at(app, ATTACKER), "anna", 1)
    assert failures("anna") == 10
    assert at(app, ATTACKER).login("anna").status_code == 429


def test_core_01_unknown_and_known_names_get_identical_replies(app, tree, monkeypatch):
    """Message, status and work done (one argon2 check, or none when refused) are the same
    whether the name exists or not, before and after the delays start."""
    monkeypatch.setitem(app.config, "PORTAL_LOGIN_MAX_FAILURES", 2)
    make_user("anna", (tree["north"], "staff"))
    checks = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def verify(self, *args):
            checks.append(1)
            return self.inner.verify(*args)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(passwords, "_hasher", Counting(passwords._hasher))

    def replies(username):
        client = at(app, ATTACKER)
        out = []
        for password in (WRONG, WRONG, PASSWORD, WRONG):
            checks.clear()
            response = fail(client, username, 1, password=password)
            message = field_error(response.get_data(as_text=True), "password")
            message = re.sub(r"try again at .*\.$", "try again at <time>.", message)
            out.append((response.status_code, message, len(checks)))
        return out

    known, unknown = replies("anna"), replies("nobody-here")
    assert known == unknown
    wrong = "Wrong username or password, or the account is disabled."
    wait = "Too many failed attempts; try again at <time>."
    assert known == [(401, wrong, 1), (429, wait, 1), (429, wait, 0), (429, wait, 0)]


def test_core_01_failures_and_delays_are_audited_and_logged(app, tree, caplog):
    anna = make_user("anna", (tree["north"], "staff"))
    caplog.set_level(logging.INFO, logger="portal.security")
    attacker = at(app, ATTACKER)
    fail(attacker, "anna", 11)
    fail(attacker, "nobody", 1)
    db.session.expire_all()
    failed = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "auth.login_failed")).all()
    assert len(failed) == 11
    assert sum(1 for e in failed if e.object_id == str(anna.id)) == 10
    assert any(e.after == {"username": "nobody"} and e.object_id is None for e in failed)
    assert all(e.remote_addr == ATTACKER for e in failed)
    throttled = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "auth.throttled")).all()
    assert sorted(e.after["key"] for e in throttled) == ["name", "name+address"]
    assert all(e.object_id == str(anna.id) and e.after["failures"] == 10
               and e.after["remote_addr"] == ATTACKER for e in throttled)
    records = [r for r in caplog.records if r.name == "portal.security"]
    failed_logs = [r for r in records if "login failed" in r.getMessage()]
    assert len(failed_logs) == 11
    assert all(r.levelno >= logging.WARNING for r in failed_logs)
    assert any("login throttled" in r.getMessage() and "anna" in r.getMessage()
               and r.levelno == logging.WARNING for r in records)
    assert any("refused by throttle" in r.getMessage() for r in records)


def test_core_01_successful_login_is_audited(client, tree):
    anna = make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "auth.login"))
    assert entry is not None and entry.actor_id == anna.id
    assert db.session.scalar(select(func.count()).where(
        LoginAttempt.username == "anna", LoginAttempt.success.is_(True))) == 1


def test_core_01_throttle_settings_are_read_from_config(app, tree, monkeypatch):
    make_user("anna", (tree["north"], "staff"))
    monkeypatch.setitem(app.config, "PORTAL_LOGIN_MAX_FAILURES", 3)
    monkeypatch.setitem(app.config, "PORTAL_LOGIN_DELAY", timedelta(seconds=20))
    monkeypatch.setitem(app.config, "PORTAL_LOGIN_MAX_DELAY", timedelta(seconds=50))
    attacker = at(app, ATTACKER)
    assert fail(attacker, "anna", 2).status_code == 401
    assert fail(attacker, "anna", 1).status_code == 429
    pair = keys("anna", ATTACKER)["name+address"]
    assert pair.until - pair.last_at == timedelta(seconds=20)
    back_in_time(timedelta(seconds=21))
    fail(attacker, "anna", 1)
    back_in_time(timedelta(seconds=41))
    fail(attacker, "anna", 1)
    pair = keys("anna", ATTACKER)["name+address"]
    assert pair.until - pair.last_at == timedelta(seconds=50)  # 80 s, capped


@pytest.mark.parametrize(("env", "key", "expected"), [
    ({}, "PORTAL_LOGIN_MAX_FAILURES", 10),
    ({}, "PORTAL_LOGIN_ADDRESS_MAX_FAILURES", 30),
    ({}, "PORTAL_LOGIN_DELAY", timedelta(minutes=1)),
    ({}, "PORTAL_LOGIN_MAX_DELAY", timedelta(hours=1)),
    ({}, "PORTAL_LOGIN_ACCOUNT_MAX_DELAY", timedelta(minutes=5)),
    ({}, "PORTAL_LOGIN_WINDOW", timedelta(hours=24)),
    ({}, "PORTAL_LOGIN_KNOWN_ADDRESS", timedelta(days=90)),
    ({"PORTAL_LOGIN_MAX_FAILURES": "5"}, "PORTAL_LOGIN_MAX_FAILURES", 5),
    ({"PORTAL_LOGIN_ADDRESS_MAX_FAILURES": "50"}, "PORTAL_LOGIN_ADDRESS_MAX_FAILURES", 50),
    ({"PORTAL_LOGIN_DELAY_SECONDS": "30"}, "PORTAL_LOGIN_DELAY", timedelta(seconds=30)),
    ({"PORTAL_LOGIN_MAX_DELAY_MINUTES": "15"}, "PORTAL_LOGIN_MAX_DELAY", timedelta(minutes=15)),
    ({"PORTAL_LOGIN_ACCOUNT_MAX_DELAY_MINUTES": "0"}, "PORTAL_LOGIN_ACCOUNT_MAX_DELAY", timedelta(0)),
    ({"PORTAL_LOGIN_WINDOW_HOURS": "6"}, "PORTAL_LOGIN_WINDOW", timedelta(hours=6)),
    ({"PORTAL_LOGIN_KNOWN_ADDRESS_DAYS": "30"}, "PORTAL_LOGIN_KNOWN_ADDRESS", timedelta(days=30)),
])
def test_core_01_throttle_settings_come_from_the_environment(env, key, expected):
    assert from_environment(env)[key] == expected


@pytest.mark.parametrize("gone", ["PORTAL_LOGIN_LOCKOUT_MINUTES", "PORTAL_LOGIN_WINDOW_MINUTES"])
def test_core_01_removed_lock_settings_stop_the_start_with_a_message(gone):
    with pytest.raises(ConfigError, match=gone):
        from_environment({gone: "15"})


def test_core_01_the_account_delay_can_be_switched_off(app, tree, three_strikes, monkeypatch):
    monkeypatch.setitem(app.config, "PORTAL_LOGIN_ACCOUNT_MAX_DELAY", timedelta(0))
    make_user("anna", (tree["north"], "staff"))
    for n in range(3):
        fail(at(app, f"192.0.2.{n + 1}"), "anna", 1)
    assert at(app, FAR).login("anna").status_code == 302


def test_core_01_no_account_lock_is_stored_any_more(app):
    assert not hasattr(User, "locked_until")
    assert "locked_until" not in User.__table__.columns


# ---- telling the person ------------------------------------------------------------------------


def flashes(page: str) -> list[str]:
    found = re.findall(r'<li class="flash flash-warning">(.*?)</li>', page, re.S)
    return [html.unescape(m.strip()) for m in found]


def test_core_01_the_next_login_tells_the_person_in_their_language_and_zone(app, tree):
    tree["north"].timezone = "America/New_York"
    anna = make_user("anna", (tree["north"], "staff"), locale="zh_Hans")
    office = at(app, OFFICE)
    office.login("anna")
    office.post_form("/logout")
    fail(at(app, HOME), "anna", 1)
    fail(at(app, ATTACKER), "anna", 2)
    last = db.session.scalar(select(LoginAttempt.at).where(LoginAttempt.success.is_(False))
                             .order_by(LoginAttempt.id.desc()).limit(1))
    english(office)  # the login page in English; anna reads Chinese once she is in
    response = office.login("anna")
    assert response.status_code == 302
    page = office.get(response.headers["Location"]).get_data(as_text=True)
    local = format_datetime(last, "short", tzinfo=ZoneInfo("America/New_York"), locale="zh_Hans")
    assert flashes(page) == [f"自上次登录以来有 3 次登录失败，最近一次来自地址 {ATTACKER}，时间 {local}。"]
    # told once: the next login has nothing to report
    office.post_form("/logout")
    office.login("anna")
    assert flashes(office.get("/").get_data(as_text=True)) == []
    assert fresh(User, anna.id).active


def test_core_01_the_notice_in_english_names_one_attempt_in_the_singular(app, tree):
    make_user("anna", (tree["north"], "staff"), locale="en")
    fail(at(app, ATTACKER), "anna", 1)
    office = at(app, OFFICE)
    office.login("anna")
    last = db.session.scalar(select(LoginAttempt.at).where(LoginAttempt.success.is_(False)))
    local = format_datetime(last, "short", tzinfo=ZoneInfo("Asia/Shanghai"), locale="en")
    assert flashes(office.get("/").get_data(as_text=True)) == [
        f"1 failed login attempt since your last login, from address {ATTACKER} at {local}."]


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
