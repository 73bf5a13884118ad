"""Failed logins as an administrator sees and clears them (CORE-01).

``boss`` administers the whole company (the top unit) and sees accounts and addresses;
``rita`` administers the region ``east`` (north, south below it) and sees only the accounts
of her units; the ``club`` beside it is outside her scope.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audit import AuditEntry
from portal.auth import throttle
from portal.auth.models import LoginAttempt
from portal.db_types import utcnow
from portal.extensions import db
from portal.testing import make_user

ATTACKER, SPRAYER, HOME = "203.0.113.9", "198.51.100.7", "10.0.0.1"


def at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def failed(username: str, address: str, times: int) -> None:
    """``times`` failures of ``username`` from ``address`` in the last minutes (no argon2)."""
    for n in range(times):
        db.session.add(LoginAttempt(username=username, remote_addr=address, success=False,
                                    at=utcnow() - timedelta(seconds=10 * (times - n))))
    db.session.commit()


def audits(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                              .order_by(AuditEntry.id)).all()


def text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.fixture
def people(tree):
    return {
        "boss": make_user("boss", (tree["company"], "admin"), locale="en"),
        "rita": make_user("rita", (tree["region"], "admin"), locale="en"),
        "anna": make_user("anna", (tree["north"], "staff")),
        "carl": make_user("carl", (tree["club"], "staff")),
        "dual": make_user("dual", (tree["north"], "staff"), (tree["club"], "staff")),
    }


@pytest.fixture
def attacked(app, people):
    failed("anna", ATTACKER, 12)
    failed("carl", ATTACKER, 2)
    failed("dual", ATTACKER, 10)
    for name in ("nobody", "root", "test", "guest", "oracle", "admin1"):
        failed(name, SPRAYER, 1)
    return people


def logged_in(app, username: str):
    client = at(app, HOME)
    assert client.login(username).status_code == 302
    return client


def test_core_01_top_admin_sees_failed_logins_per_account_and_per_address(app, attacked):
    page = logged_in(app, "boss").get("/admin/logins")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    words = text(body)
    assert "Failed logins" in words and "Accounts" in words and "Addresses" in words
    for name in ("anna", "carl", "dual"):
        assert f'href="/admin/users/{attacked[name].id}"' in body
    assert "nobody" in words and "and 3 more" in words  # names without an account, per address
    assert ATTACKER in words and SPRAYER in words
    anna = re.search(r'<tr id="login-account-%d">(.*?)</tr>' % attacked["anna"].id, body, re.S).group(1)
    assert ">12<" in anna and "waits until" in anna  # 12 failures: a delay of 4 minutes
    users = logged_in(app, "boss").get("/admin/users").get_data(as_text=True)
    assert 'href="/admin/logins"' in users


def test_core_01_region_admin_sees_only_the_accounts_of_her_units(app, attacked):
    body = logged_in(app, "rita").get("/admin/logins").get_data(as_text=True)
    words = text(body)
    assert f"/admin/users/{attacked['anna'].id}" in body
    assert f"/admin/users/{attacked['dual'].id}" in body
    assert f"/admin/users/{attacked['carl'].id}" not in body and "carl" not in words
    assert "Addresses" not in words and "nobody" not in words and SPRAYER not in words
    # dual also has a role in the club: rita may look, not clear (as for a password reset)
    assert f"/admin/logins/users/{attacked['anna'].id}/clear" in body
    assert f"/admin/logins/users/{attacked['dual'].id}/clear" not in body


def test_core_01_clearing_an_account_lifts_its_delays_and_is_audited(app, attacked):
    anna = attacked["anna"]
    attacker = at(app, ATTACKER)
    assert attacker.login("anna").status_code == 429
    rita = logged_in(app, "rita")
    response = rita.post_form(f"/admin/logins/users/{anna.id}/clear")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/logins"
    assert "Failed logins of anna cleared" in text(rita.get("/admin/logins").get_data(as_text=True))
    [entry] = audits("auth.throttle_cleared")
    assert entry.object_type == "user" and entry.object_id == str(anna.id)
    assert entry.actor_name == "rita"
    assert entry.before["failures"] == 12 and entry.before["until"]
    assert entry.after == {"username": "anna", "cleared": 12}
    db.session.expire_all()
    assert throttle.keys_for("anna", ATTACKER)["name+address"].failures == 0
    assert attacker.login("anna").status_code == 302  # (the failures are still on record)
    assert db.session.query(LoginAttempt).filter_by(username="anna", success=False).count() == 12


def test_core_01_clearing_by_htmx_answers_with_the_refreshed_lists(app, attacked):
    boss = logged_in(app, "boss")
    response = boss.post_form(f"/admin/logins/users/{attacked['anna'].id}/clear", htmx=True)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body and "Failed logins of anna cleared" in text(body)
    assert f'id="login-account-{attacked["anna"].id}"' not in body
    assert f'id="login-account-{attacked["dual"].id}"' in body


def test_core_01_clearing_an_address_is_for_the_top_admin_and_audited(app, attacked):
    rita = logged_in(app, "rita")
    assert rita.post_form("/admin/logins/addresses/clear", {"address": SPRAYER}).status_code == 403
    assert audits("auth.throttle_cleared") == []
    boss = logged_in(app, "boss")
    response = boss.post_form("/admin/logins/addresses/clear", {"address": SPRAYER})
    assert response.status_code == 302
    [entry] = audits("auth.throttle_cleared")
    assert entry.object_type == "address" and entry.object_id == SPRAYER
    assert entry.before["failures"] == 6 and entry.after == {"remote_addr": SPRAYER, "cleared": 6}
    db.session.expire_all()
    assert throttle.keys_for("nobody", SPRAYER)["address"].failures == 0
    assert throttle.keys_for("anna", ATTACKER)["name+address"].failures == 12  # other addresses stay
    assert boss.post_form("/admin/logins/addresses/clear", {"address": "x" * 65}).status_code == 400


def test_core_01_clearing_outside_the_scope_is_refused(app, attacked):
    rita = logged_in(app, "rita")
    assert rita.post_form(f"/admin/logins/users/{attacked['carl'].id}/clear").status_code == 404
    assert rita.post_form(f"/admin/logins/users/{attacked['dual'].id}/clear").status_code == 403
    assert audits("auth.throttle_cleared") == []
    db.session.expire_all()
    assert throttle.keys_for("dual", ATTACKER)["name+address"].failures == 10


def test_core_01_clearing_needs_the_csrf_token_and_post(app, attacked):
    boss = logged_in(app, "boss")
    anna = attacked["anna"]
    assert boss.post(f"/admin/logins/users/{anna.id}/clear").status_code == 400
    assert boss.get(f"/admin/logins/users/{anna.id}/clear").status_code == 405
    assert audits("auth.throttle_cleared") == []


def test_core_01_staff_cannot_see_failed_logins(app, attacked):
    carl = logged_in(app, "carl")
    assert carl.get("/admin/logins").status_code == 403
    assert carl.post_form(f"/admin/logins/users/{attacked['carl'].id}/clear").status_code == 403
    assert audits("auth.throttle_cleared") == []
