"""Every hook is specified properly, documented in the README and exercised by a test.

In the manner of datasette's ``tests/test_docs.py`` and ``tests/test_plugins.py``:
meta-tests walk ``portal.hookspecs`` so a new hook cannot be added without its
docstring, types, README section and tests; then one ``test_hook_<hook name>_…``
test per hook calls it through the real core code path, using the test plugin
``tests/testplug`` (registered explicitly in every test app by ``portal.testing``).
"""

from __future__ import annotations

import inspect
import re
import typing
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import hookspecs
from portal.auth.access import can
from portal.auth.models import User
from portal.db_types import utcnow
from portal.extensions import db
from portal.penalties import PenaltyDraftError, announce_issued, assess
from portal.plugin_api import DomainEvent, PenaltyDraft, SettingError, SlaPolicy
from portal.settings import models as settings
from portal.testing import make_unit, make_user
from tests import testplug

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

SPECS = {
    name: function
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, f"{hookspecs.PROJECT}_spec")
}


def _registry(app):
    return app.extensions["portal"]


# ---- the specs themselves ------------------------------------------------------------------


def test_hookspecs_are_found():
    """Guards the meta-tests below against silently checking nothing."""
    assert len(SPECS) >= 12
    assert "portal_register_blueprints" in SPECS


def test_every_portal_function_in_hookspecs_is_a_spec():
    """A ``portal_*`` function without ``@hookspec`` would never be called."""
    functions = {name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)}
    assert {n for n in functions if n.startswith("portal_")} == set(SPECS)


def test_the_plugin_manager_knows_exactly_these_hooks(app):
    hooks = {name for name in dir(_registry(app).pm.hook) if not name.startswith("_")}
    assert hooks == set(SPECS)


def _type_namespace() -> dict:
    """What the ``TYPE_CHECKING`` imports of ``portal.hookspecs`` name, imported for real."""
    import click
    from flask import Blueprint, Flask
    from sqlalchemy.orm import Session

    from portal import plugin_api
    from portal.units.models import Unit

    namespace = dict(vars(hookspecs))
    namespace.update(vars(plugin_api))
    namespace.update(click=click, Blueprint=Blueprint, Flask=Flask, Session=Session, User=User,
                     Unit=Unit)
    return namespace


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hookspec_is_prefixed_documented_and_typed(name):
    spec = SPECS[name]
    assert name.startswith("portal_")
    doc = inspect.getdoc(spec)
    assert doc and len(doc.splitlines()[0]) > 10, f"{name} needs a docstring with a summary line"
    signature = inspect.signature(spec)
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: return type"
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, (
            f"{name}: type of {parameter.name}")
        assert f":param {parameter.name}:" in doc, f"{name}: document parameter {parameter.name}"
    # the annotations name real types (resolved with the TYPE_CHECKING imports made real)
    hints = typing.get_type_hints(spec, globalns=_type_namespace())
    assert set(hints) == {*signature.parameters, "return"}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_test_plugin_implements_every_hook(name):
    """``tests/testplug`` is how every hook gets exercised; it must keep up with new hooks."""
    impl = getattr(testplug, name, None)
    assert impl is not None and hasattr(impl, f"{hookspecs.PROJECT}_impl"), (
        f"tests/testplug/__init__.py has no @hookimpl for {name}"
    )


# ---- documented in the README ----------------------------------------------------------------


def _readme_section(title: str) -> str:
    """The text of the ``## <title>…`` section of the README, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def _hook_sections() -> dict[str, str]:
    reference = _readme_section("Hook reference")
    parts = re.split(r"^### ", reference, flags=re.M)[1:]
    sections = {}
    for part in parts:
        heading, _, body = part.partition("\n")
        sections[heading.strip().strip("`")] = body
    return sections


def _documented_signature(name: str) -> str:
    """``portal_nav_items(user: User, unit: Unit) -> list[NavItem]``, as the README shows it."""
    signature = inspect.signature(SPECS[name])
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"{name}({params}) -> {signature.return_annotation}"


def test_readme_documents_no_hook_that_does_not_exist():
    assert set(_hook_sections()) <= set(SPECS), "the README's hook reference has stale headings"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_is_documented_in_readme(name):
    sections = _hook_sections()
    assert name in sections, f"README.md: add '### {name}' under '## Hook reference'"
    body = sections[name]
    assert _documented_signature(name) in body, (
        f"README.md: the section of {name} must show its signature {_documented_signature(name)!r}"
    )
    firstresult = getattr(SPECS[name], f"{hookspecs.PROJECT}_spec")["firstresult"]
    assert ("first result only" in body) == firstresult, (
        f"README.md: say whether {name} is first-result ('first result only') or not"
    )


def test_config_environment_variables_are_documented():
    source = (ROOT / "portal" / "config.py").read_text(encoding="utf-8")
    names = set(re.findall(r"env\.get\(\s*\"(PORTAL_[A-Z0-9_]+)\"", source))
    assert len(names) >= 10
    reference = _readme_section("Configuration reference")
    missing = sorted(n for n in names if f"`{n}`" not in reference)
    assert not missing, f"README.md configuration reference lacks {missing}"


def test_core_cli_commands_are_documented(app):
    group = app.cli.commands["portal"]
    core = [n for n, c in group.commands.items()
            if c.callback.__module__.split(".")[0] == "portal"]  # not the plugins' commands
    assert {"upgrade", "create-user", "plugins", "seed-demo"} <= set(core)
    reference = _readme_section("CLI reference")
    missing = sorted(n for n in core if f"portal {n}" not in reference)
    assert not missing, f"README.md CLI reference lacks {missing}"


# ---- exercised by a test ------------------------------------------------------------------


def _other_test_sources() -> dict[Path, str]:
    files = [*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("plugins/*/tests/**/test_*.py")]
    return {
        path: path.read_text(encoding="utf-8")
        for path in files
        if path.resolve() != Path(__file__).resolve()
    }


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_is_named_in_another_test_file(name):
    """Besides the checks below, some feature test names the hook it relies on."""
    users = [str(p.relative_to(ROOT)) for p, text in _other_test_sources().items() if name in text]
    assert users, (
        f"no test file under tests/ or plugins/*/tests/ (but tests/test_hooks.py) names {name}"
    )


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_has_a_test_in_this_module(name):
    """datasette's rule: each hook has a ``test_hook_<hook name>…`` test right here."""
    tests = [t for t in globals() if t.startswith(f"test_hook_{name}")]
    assert tests, f"add test_hook_{name}_… to tests/test_hooks.py"


# ---- each hook, through the core's own code paths ----------------------------------------


def test_hook_portal_register_blueprints_mounts_the_plugin(app, client, tree):
    registry = _registry(app)
    assert app.blueprints["testplug"].url_prefix == "/testplug"
    assert registry.blueprint_plugin["testplug"] == "testplug"
    make_user("sam", (tree["company"], "staff"))
    client.login("sam")
    response = client.get("/testplug/")
    assert response.status_code == 200
    assert "Testplug page" in response.get_data(as_text=True)


def test_hook_portal_register_blueprints_routes_answer_404_where_switched_off(app, client, tree):
    west = make_unit("west", tree["company"], plugins={"testplug": False})
    make_user("wes", (west, "staff"))
    client.login("wes")
    assert client.get("/testplug/").status_code == 404
    assert client.get("/").status_code == 200  # the core still answers there


def test_hook_portal_register_roles_adds_a_role_that_grants(app, client, tree):
    registry = _registry(app)
    assert "inspector" in registry.roles
    assert registry.roles["inspector"].label_zh == "巡检员"
    assert {"staff", "supervisor", "manager", "auditor", "admin"} <= set(registry.roles)
    make_user("ines", (tree["company"], "inspector"))
    make_user("sam", (tree["company"], "staff"))
    client.login("ines")
    assert client.get("/testplug/inspect").status_code == 200
    client.post_form("/logout")
    client.login("sam")
    assert client.get("/testplug/inspect").status_code == 403


def test_hook_portal_register_permissions_with_default_grants(app, tree):
    registry = _registry(app)
    view = registry.permissions["testplug.view"]
    assert set(view.roles) == {"staff", "supervisor", "inspector"}
    assert "testplug.view" in registry.grants["staff"]
    assert "testplug.view" not in registry.grants["manager"]
    assert registry.grants["inspector"] >= {"testplug.view", "testplug.inspect"}
    staff = make_user("sam", (tree["region"], "staff"))
    manager = make_user("max", (tree["region"], "manager"))
    admin = make_user("ada", (tree["company"], "admin"))
    assert can(staff, "testplug.view", tree["north"])  # granted on the region, holds below it
    assert not can(staff, "testplug.view", tree["club"])  # not outside it
    assert not can(manager, "testplug.view", tree["north"])
    assert can(admin, "testplug.inspect", tree["north"])  # admin holds every permission


def test_hook_portal_register_settings_defaults_and_core_10_effective_date(app, tree):
    registry = _registry(app)
    spec = registry.settings["testplug.reply_minutes"]
    assert (spec.type, spec.default, spec.rule) == ("minutes", 30, "TST-R01")
    north = tree["north"]
    assert settings.value(north, "testplug.reply_minutes") == 30
    with pytest.raises(SettingError):
        spec.parse("0")  # below the declared minimum
    effective = settings.default_effective_date(tree["company"])
    settings.change(tree["company"], "testplug.reply_minutes", "45", effective, approver=None)
    db.session.commit()
    zone = settings.unit_zone(north)
    assert settings.value(north, "testplug.reply_minutes") == 30  # not before the effective date
    on_the_day = datetime.combine(effective, time(12, 0), tzinfo=zone)
    assert settings.value(north, "testplug.reply_minutes", at=on_the_day) == 45
    assert settings.value(north, "testplug.reply_minutes", at=on_the_day - timedelta(days=1)) == 30


def _nav(html: str) -> str:
    match = re.search(r'<nav class="site-nav".*?</nav>', html, re.S)
    return match.group(0) if match else ""


def test_hook_portal_nav_items_shown_only_with_the_permission(app, client, tree):
    make_user("sam", (tree["company"], "staff"))
    make_user("max", (tree["company"], "manager"))
    client.login("sam")
    assert 'href="/testplug/"' in _nav(client.get("/").get_data(as_text=True))
    client.post_form("/logout")
    client.login("max")
    nav = _nav(client.get("/").get_data(as_text=True))
    assert nav and 'href="/testplug/"' not in nav  # the nav is there, the link is not


def test_hook_portal_nav_items_hidden_where_the_plugin_is_off(app, client, tree):
    west = make_unit("west", tree["company"], plugins={"testplug": False})
    make_user("wes", (west, "staff"))
    client.login("wes")
    nav = _nav(client.get("/").get_data(as_text=True))
    assert nav and 'href="/testplug/"' not in nav


def test_hook_portal_dashboard_panels_loaded_lazily(app, client, tree):
    make_user("sam", (tree["company"], "staff"))
    make_user("max", (tree["company"], "manager"))
    client.login("sam")
    page = client.get("/").get_data(as_text=True)
    assert 'hx-get="/testplug/panel"' in page
    assert "testplug panel" in client.get("/testplug/panel").get_data(as_text=True)
    client.post_form("/logout")
    client.login("max")
    page = client.get("/").get_data(as_text=True)
    assert 'hx-get="/panels/units"' in page and 'hx-get="/testplug/panel"' not in page


def test_hook_portal_register_commands_adds_a_cli_command(app):
    result = app.test_cli_runner().invoke(args=["portal", "testplug-hello", "x"])
    assert result.exit_code == 0, result.output
    assert "hello x from testplug" in result.output


def test_hook_portal_seed_demo_gets_the_demo_units_and_users(app):
    from portal import demo

    testplug.SEEDED.clear()
    demo.seed_demo()
    codes = sorted(code for code, *_ in demo.UNITS)
    usernames = sorted(username for username, *_ in demo.USERS)
    assert testplug.SEEDED == [(codes, usernames)]
    users_before = db.session.scalar(select(func.count()).select_from(User))
    demo.seed_demo()  # idempotent: called again with the same units and users, nothing added
    assert testplug.SEEDED == [(codes, usernames), (codes, usernames)]
    assert db.session.scalar(select(func.count()).select_from(User)) == users_before


def test_hook_portal_register_penalty_rules_by_regulation_id(app):
    rules = _registry(app).penalty_rules
    assert rules["TST-P02"].is_range
    assert (rules["TST-P02"].amount_min, rules["TST-P02"].amount_max) == (Decimal("500"),
                                                                        Decimal("1000"))
    assert not rules["TST-P01"].is_range
    assert rules["TST-P01"].escalation == {3: "dismissal required"}


def _event(name: str, unit_id: int, user_id: int, **data) -> DomainEvent:
    return DomainEvent(name, unit_id=unit_id, occurred_at=utcnow(), subject_user_id=user_id,
                       data=data)


def test_hook_portal_assess_penalties_proposes_a_draft(app, tree):
    sam = make_user("sam", (tree["north"], "staff"))
    drafts = assess(_event("testplug.reply_late", tree["north"].id, sam.id, evidence="ticket 7"))
    assert len(drafts) == 1
    draft = drafts[0]
    # a fixed fine is left to the core (the unit's amount in force at the offence)
    assert (draft.rule_id, draft.amount, draft.user_id, draft.unit_id, draft.evidence) == (
        "TST-P01", None, sam.id, tree["north"].id, "ticket 7")
    assert assess(_event("testplug.something_else", tree["north"].id, sam.id)) == []


def test_hook_portal_assess_penalties_refuses_an_amount_outside_the_rule(app, tree):
    sam = make_user("sam", (tree["north"], "staff"))
    inside = assess(_event("testplug.second_complaint", tree["north"].id, sam.id, amount="800"))
    assert [(d.rule_id, d.amount) for d in inside] == [("TST-P02", Decimal("800"))]
    for amount in ("1500", "499.99"):
        with pytest.raises(PenaltyDraftError, match="TST-P02"):
            assess(_event("testplug.second_complaint", tree["north"].id, sam.id, amount=amount))


def test_hook_portal_penalty_issued_is_told(app, tree):
    testplug.ISSUED.clear()
    draft = PenaltyDraft("TST-P01", tree["north"].id, 1, utcnow(), evidence="ticket 7",
                         amount=Decimal("200"))
    announce_issued(draft)
    assert testplug.ISSUED == [draft]


def test_hook_portal_sla_policies_tied_to_a_setting(app):
    registry = _registry(app)
    policy = registry.sla_policies["testplug.reply"]
    assert policy == SlaPolicy("testplug.reply", "testplug.reply_minutes", calendar="wall",
                               rule="TST-R01")
    assert policy.setting_key in registry.settings
