"""``flask --app wsgi portal …``: create-user, seed-demo and a plugin's own command."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from plugins.express import demo as express_demo
from portal.audit import AuditEntry
from portal.auth.models import Membership, User
from portal.auth.passwords import verify_password
from portal.demo import UNITS, USERS
from portal.extensions import db
from portal.testing import PASSWORD, make_user
from portal.units.models import Unit, UnitPlugin, plugin_enabled
from tests import testplug


def run(app, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(args=["portal", *args], input=input)


def counts() -> dict[str, int]:
    db.session.expire_all()
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Unit, User, Membership, UnitPlugin)}


# ---- create-user -----------------------------------------------------------------------------


def test_core_01_create_user_reads_the_password_from_stdin(app, tree):
    result = run(app, "create-user", "--username", "Boss", "--name", "老板", "--unit", "east",
                 "--role", "manager", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "created boss (manager on east)" in result.output
    assert PASSWORD not in result.output
    boss = db.session.scalar(select(User).where(User.username == "boss"))
    assert boss.display_name == "老板" and verify_password(boss, PASSWORD)
    assert [(m.unit_id, m.role) for m in boss.memberships] == [(tree["region"].id, "manager")]
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "user.created"))
    assert entry.object_id == str(boss.id) and entry.after["role"] == "manager"
    client = app.test_client()
    assert client.login("boss").status_code == 302


def test_core_01_create_user_defaults_to_admin_on_a_new_root_unit(app):
    result = run(app, "create-user", "--username", "root", "--password-stdin",
                 input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    unit = db.session.scalar(select(Unit))
    assert unit.parent_id is None and unit.kind == "company"
    user = db.session.scalar(select(User).where(User.username == "root"))
    assert user.display_name == "root"
    assert [(m.unit_id, m.role) for m in user.memberships] == [(unit.id, "admin")]
    assert app.test_client().login("root").status_code == 302


def test_core_01_create_user_prompts_twice_without_stdin_flag(app, tree):
    result = run(app, "create-user", "--username", "boss", "--unit", "acme",
                 input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input
    assert db.session.scalar(select(User.id).where(User.username == "boss"))


@pytest.mark.parametrize("args, stdin, message", [
    (["--username", "anna"], PASSWORD, "username 'anna' is taken"),
    (["--username", "ANNA"], PASSWORD, "username 'anna' is taken"),
    (["--username", "boss", "--unit", "nowhere"], PASSWORD, "no unit with code 'nowhere'"),
    (["--username", "boss", "--role", "emperor"], PASSWORD, "unknown role 'emperor'"),
    (["--username", "b"], PASSWORD, "username: 2–63"),
    (["--username", "boss"], "short", "password: at least 10 characters"),
])
def test_core_01_create_user_errors_exit_non_zero_and_write_nothing(app, tree, args, stdin,
                                                                     message):
    make_user("anna", (tree["north"], "staff"))
    before = counts()
    result = run(app, "create-user", *args, "--password-stdin", input=stdin + "\n")
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert counts() == before


# ---- seed-demo --------------------------------------------------------------------------------


def test_seed_demo_is_idempotent_and_the_admin_can_log_in(app):
    testplug.SEEDED.clear()
    first = run(app, "seed-demo")
    assert first.exit_code == 0, first.output
    after_first = counts()
    # the core's demo units and users, and those the installed plugins add (express's network)
    assert after_first["Unit"] == len(UNITS) + len(express_demo.UNITS)
    assert after_first["User"] == len(USERS) + len(express_demo.USERS)
    assert after_first["Membership"] == len(USERS) + len(express_demo.USERS)
    assert "admin" in first.output and "PORTAL_DEMO_PASSWORD" in first.output
    assert "express.center" in first.output  # every demo login is printed, the plugins' too
    assert PASSWORD not in first.output  # a configured password is not echoed

    second = run(app, "seed-demo")
    assert second.exit_code == 0, second.output
    assert counts() == after_first

    # the plugins' portal_seed_demo hooks ran each time, with the demo units and users
    assert len(testplug.SEEDED) == 2
    units, users = testplug.SEEDED[0]
    assert "demo" in units and "ktv" in units and "admin" in users

    client = app.test_client()
    assert client.login("admin", PASSWORD).status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "演示集团" in page or "Demo Group" in page


def test_seed_demo_switches_the_notice_board_on_except_at_the_ktv(app):
    assert run(app, "seed-demo").exit_code == 0
    by_code = {u.code: u for u in db.session.scalars(select(Unit))}
    assert plugin_enabled(by_code["express-sh"], "notices") is True
    assert plugin_enabled(by_code["ktv"], "notices") is False
    client = app.test_client()
    client.login("ktv.manager", PASSWORD)
    assert client.get("/notices/").status_code == 404
    other = app.test_client()
    other.login("express.staff", PASSWORD)
    assert other.get("/notices/").status_code == 200


def test_seed_demo_completes_a_partly_seeded_database_and_restores_the_password(app):
    from portal.auth.passwords import hash_password

    assert run(app, "seed-demo").exit_code == 0
    full = counts()
    admin = db.session.scalar(select(User).where(User.username == "admin"))
    admin.password_hash = hash_password("something-else-9")
    db.session.delete(db.session.scalar(select(User).where(User.username == "store.staff")))
    db.session.commit()
    assert counts()["User"] == full["User"] - 1
    assert run(app, "seed-demo").exit_code == 0
    assert counts() == full
    db.session.expire_all()
    assert verify_password(db.session.get(User, admin.id), PASSWORD)


# ---- a plugin's command ------------------------------------------------------------------------


def test_plugin_commands_are_registered_under_portal(app):
    result = run(app, "testplug-hello", "ming")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "hello ming from testplug"
    listing = run(app, "--help")
    for command in ("upgrade", "create-user", "plugins", "seed-demo", "testplug-hello"):
        assert command in listing.output
