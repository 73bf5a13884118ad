"""Plugin discovery and the load-time rules a plugin must follow.

Each rule is checked with a small fake plugin handed to ``create_app`` through
``PORTAL_EXTRA_PLUGINS``; a broken plugin stops the start with a ``PluginError``
that names the plugin and says what to fix.
"""

from __future__ import annotations

import re
import types
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path

import pluggy
import pytest
from flask import Blueprint
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import plugins.notices
from portal.auth.access import permission_required
from portal.extensions import db
from portal.hookspecs import hookimpl
from portal.plugin_api import PenaltyRule, Permission, Role, SettingSpec, SlaPolicy
from portal.plugins import ENTRY_POINT_GROUP, PluginError, PluginRegistry, check_tables
from portal.testing import make_app, make_user
from tests import testplug


def fake(name: str = "fakeplug", **hooks) -> types.ModuleType:
    """A plugin module whose hooks are the given functions."""
    module = types.ModuleType(name)
    module.__doc__ = f"{name}: a fake plugin for a load-time rule."
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))
    return module


def good_blueprint(name: str = "fakeplug", **kwargs) -> Blueprint:
    bp = Blueprint(name, name, url_prefix=kwargs.pop("url_prefix", f"/{name}"), **kwargs)

    @bp.route("/")
    @permission_required(f"{name}.view")
    def index():
        return "fake index"

    return bp


def view_permission(name: str = "fakeplug"):
    return [Permission(f"{name}.view", "看", "View", ("staff",))]


def load(url: str, plugin: types.ModuleType, name: str = "fakeplug", **config):
    return make_app(url, PORTAL_EXTRA_PLUGINS={"testplug": testplug, name: plugin}, **config)


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'plugins.sqlite3'}"


def refused(url: str, plugin, *patterns: str, name: str = "fakeplug", **config) -> str:
    with pytest.raises(PluginError) as caught:
        load(url, plugin, name=name, **config)
    message = str(caught.value)
    for pattern in patterns:
        assert re.search(pattern, message), message
    return message


# ---- discovery -----------------------------------------------------------------------------


def test_notices_is_found_through_the_entry_point_group(app):
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert "notices" in found
    assert found["notices"].value == "plugins.notices"
    assert found["notices"].load() is plugins.notices
    registry = app.extensions["portal"]
    assert registry.plugins["notices"] is plugins.notices
    assert list(registry.plugins)[:3] == ["core", "express", "notices"]  # core, then entry points
    assert registry.plugins["testplug"] is testplug  # registered explicitly by the fixtures
    assert registry.feature_plugins() == ["express", "notices", "testplug"]
    assert registry.blueprint_plugin == {"express": "express", "notices": "notices", "testplug": "testplug"}


def test_a_well_formed_plugin_loads_and_its_routes_work(url):
    plugin = fake(portal_register_blueprints=lambda app: [good_blueprint()],
                  portal_register_permissions=lambda: view_permission(),
                  portal_register_settings=lambda: [
                      SettingSpec("fakeplug.limit", "int", 3, "上限", "Limit", minimum=1)])
    app = load(url, plugin)
    registry = app.extensions["portal"]
    assert registry.plugins["fakeplug"] is plugin
    assert registry.blueprint_plugin["fakeplug"] == "fakeplug"
    assert "fakeplug.view" in registry.grants["staff"]
    assert registry.settings["fakeplug.limit"].default == 3
    assert app.url_map.bind("localhost").match("/fakeplug/")[0] == "fakeplug.index"


# ---- the allow-list -----------------------------------------------------------------------------


def test_portal_plugins_allow_list_restricts_what_loads(database_url, tree):
    make_user("nina", (tree["north"], "staff"), locale="en")
    app = make_app(database_url, PORTAL_PLUGINS=["testplug"])
    try:
        registry = app.extensions["portal"]
        assert list(registry.plugins) == ["core", "testplug"]
        assert "notices.visible_days" not in registry.settings
        assert "notices.read" not in registry.permissions
        client = app.test_client()
        assert client.login("nina").status_code == 302
        # switched on for acme in the database, but not loaded: its URLs do not exist
        assert client.get("/notices/").status_code == 404
        assert client.get("/testplug/").status_code == 200
        assert 'href="/notices/"' not in client.get("/").get_data(as_text=True)
    finally:
        with app.app_context():
            db.engine.dispose()


def test_portal_plugins_naming_an_uninstalled_plugin_is_an_error(url):
    with pytest.raises(PluginError, match="not installed: nosuch"):
        make_app(url, PORTAL_PLUGINS=["notices", "nosuch"])


def test_portal_plugins_empty_list_loads_only_the_core(url):
    app = make_app(url, PORTAL_PLUGINS=[], PORTAL_EXTRA_PLUGINS={})
    assert list(app.extensions["portal"].plugins) == ["core"]
    assert app.extensions["portal"].feature_plugins() == []


def test_each_app_keeps_its_own_migration_locations(app, url):
    """Apps with different plugins in one process must not share Alembic locations."""
    other = make_app(url, PORTAL_PLUGINS=[], PORTAL_EXTRA_PLUGINS={})
    notices_dir = str(Path(plugins.notices.__file__).parent / "migrations")
    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config()
        assert notices_dir in config.get_main_option("version_locations").split()
    with other.app_context():
        config = other.extensions["migrate"].migrate.get_config()
        assert notices_dir not in config.get_main_option("version_locations").split()


# ---- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "auth", "static", "Fake", "x", "fake-plug", "9lives"])
def test_plugin_name_must_be_a_lowercase_identifier_and_not_reserved(url, name):
    refused(url, fake(name), "lowercase identifier", name=name)


# ---- blueprints and templates -------------------------------------------------------------------


def test_blueprint_must_be_named_after_its_plugin(url):
    plugin = fake(portal_register_blueprints=lambda app: [good_blueprint("board")],
                  portal_register_permissions=lambda: view_permission())
    refused(url, plugin, r"blueprint 'board' of plugin 'fakeplug' must be named 'fakeplug'")


@pytest.mark.parametrize("prefix", [None, "/fake", "/fakeplug/x", "fakeplug"])
def test_blueprint_url_prefix_must_be_the_plugin_name(url, prefix):
    plugin = fake(portal_register_blueprints=lambda app: [good_blueprint(url_prefix=prefix)],
                  portal_register_permissions=lambda: view_permission())
    refused(url, plugin, r"plugin 'fakeplug' must have url_prefix='/fakeplug'")


def test_hook_must_return_blueprints(url):
    plugin = fake(portal_register_blueprints=lambda app: ["not a blueprint"])
    refused(url, plugin, "not a Blueprint")


def test_templates_must_live_under_templates_plugin(url, tmp_path):
    root = tmp_path / "fakeplug"
    (root / "templates" / "fakeplug").mkdir(parents=True)
    (root / "templates" / "fakeplug" / "index.html").write_text("ok")
    (root / "templates" / "index.html").write_text("would shadow the core's templates")
    (root / "templates" / "admin").mkdir()

    def blueprints(app):
        return [good_blueprint(root_path=str(root), template_folder="templates")]

    plugin = fake(portal_register_blueprints=blueprints,
                  portal_register_permissions=lambda: view_permission())
    message = refused(url, plugin, r"templates of plugin 'fakeplug' must live under "
                                   r"templates/fakeplug/")
    assert "index.html" in message and "admin" in message

    (root / "templates" / "index.html").unlink()
    (root / "templates" / "admin").rmdir()
    app = load(url, plugin)  # only templates/fakeplug/ left: accepted
    assert "fakeplug" in app.extensions["portal"].blueprint_plugin


# ---- tables ------------------------------------------------------------------------------------


class _Base(DeclarativeBase):
    """A registry of its own, so these test models never reach the portal's metadata."""


class _BadThing(_Base):
    __tablename__ = "things"
    id: Mapped[int] = mapped_column(primary_key=True)


class _OtherBase(DeclarativeBase):
    pass


class _Unrelated(_OtherBase):
    __tablename__ = "loose"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(10))


class _GoodBase(DeclarativeBase):
    pass


class _GoodThing(_GoodBase):
    __tablename__ = "fakeplug_things"
    id: Mapped[int] = mapped_column(primary_key=True)


# as if defined in a plugin's package (set afterwards: the annotations resolve in this module)
_BadThing.__module__ = "fakepkg.models"
_GoodThing.__module__ = "fakepkg.models"
_Unrelated.__module__ = "fakepkgextra.models"  # another package that only shares the start


def _registry(**plugins) -> PluginRegistry:
    return PluginRegistry(pm=pluggy.PluginManager("portal"),
                          plugins={"core": object(), **plugins})


def test_tables_must_be_prefixed_with_the_plugin_name():
    with pytest.raises(PluginError, match=r"table 'things' of plugin 'fakeplug' must be named "
                                          r"'fakeplug_<table>'"):
        check_tables(_registry(fakeplug=types.ModuleType("fakepkg")), _Base.registry)
    check_tables(_registry(fakeplug=types.ModuleType("fakepkg")), _GoodBase.registry)
    # a plugin object that is not a module is judged by its class's module
    holder = type("Holder", (), {"__module__": "fakepkg"})()
    with pytest.raises(PluginError, match="'things'"):
        check_tables(_registry(fakeplug=holder), _Base.registry)


def test_table_check_only_looks_at_the_plugins_own_package():
    # "fakepkgextra" is not inside "fakepkg": its table is none of fakeplug's business ...
    check_tables(_registry(fakeplug=types.ModuleType("fakepkg")), _OtherBase.registry)
    # ... but it is the business of the plugin living there
    with pytest.raises(PluginError, match="'loose' of plugin 'extra'"):
        check_tables(_registry(extra=types.ModuleType("fakepkgextra")), _OtherBase.registry)


def test_table_prefix_is_checked_against_the_real_models(url):
    # the notice board's tables are notices_*: accepted under its own name ...
    check_tables(_registry(notices=plugins.notices), db.Model.registry)
    # ... and refused when the same package is installed under another name
    impostor = types.ModuleType("plugins.notices")
    refused(url, impostor, r"table 'notices_\w+' of plugin 'board' must be named 'board_<table>'",
            name="board", PORTAL_PLUGINS=["testplug", "board"])


# ---- permissions, roles, settings ----------------------------------------------------------------


def test_permission_must_be_prefixed_with_the_plugin_name(url):
    plugin = fake(portal_register_permissions=lambda: [Permission("notices.delete", "删", "Delete")])
    refused(url, plugin, r"permission 'notices.delete' of plugin 'fakeplug' must be named "
                         r"'fakeplug.<name>'")


def test_permission_defined_twice_or_granting_an_unknown_role(url):
    twice = fake(portal_register_permissions=lambda: view_permission() * 2)
    refused(url, twice, "'fakeplug.view' is defined twice")
    unknown = fake(portal_register_permissions=lambda: [
        Permission("fakeplug.view", "看", "View", ("wizard",))])
    refused(url, unknown, "grants unknown role 'wizard'")


def test_role_names_are_unique(url):
    plugin = fake(portal_register_roles=lambda: [Role("supervisor", "主管", "Supervisor")])
    refused(url, plugin, "role 'supervisor' of plugin 'fakeplug' is already defined")
    plugin = fake(portal_register_roles=lambda: [Role("inspector", "巡检", "Inspector")])
    refused(url, plugin, "role 'inspector' of plugin 'fakeplug' is already defined")  # testplug's


def test_setting_rules(url):
    cases = [
        (SettingSpec("express.limit", "int", 3, "上限", "Limit"),
         r"setting 'express.limit' of plugin 'fakeplug' must be named 'fakeplug.<name>'"),
        (SettingSpec("fakeplug.limit", "float", 3, "上限", "Limit"), "unknown type 'float'"),
        (SettingSpec("fakeplug.limit", "int", 0, "上限", "Limit", minimum=1),
         r"setting 'fakeplug.limit' of plugin 'fakeplug': the default 0 fails its own "
         r"validation \(type int, minimum 1, maximum None\)"),
    ]
    for spec, pattern in cases:
        refused(url, fake(portal_register_settings=lambda spec=spec: [spec]), pattern)
    twice = SettingSpec("fakeplug.limit", "int", 3, "上限", "Limit")
    refused(url, fake(portal_register_settings=lambda: [twice, twice]), "defined twice")


# ---- penalty rules and deadline policies ---------------------------------------------------------


def rule(rule_id: str) -> PenaltyRule:
    return PenaltyRule(rule_id, "罚", "Fine", "clause", Decimal("50"), Decimal("50"))


def test_duplicate_penalty_rule_id_is_refused(url):
    plugin = fake(portal_register_penalty_rules=lambda: [rule("TST-P01")])  # testplug has it
    refused(url, plugin, "penalty rule 'TST-P01' is defined twice")


@pytest.mark.parametrize("rule_id", ["tst-p01", "TST-P1", "TSTP01", "TST-P001", "", "TST P01"])
def test_penalty_rule_id_must_look_like_a_regulation_id(url, rule_id):
    plugin = fake(portal_register_penalty_rules=lambda: [rule(rule_id)])
    refused(url, plugin, f"penalty rule id {re.escape(repr(rule_id))} of 'fakeplug' is not a "
                         "regulation ID")


@pytest.mark.parametrize("rule_id", ["FAK-P01", "FAK-01", "EXPR-R12"])
def test_well_formed_penalty_rule_ids_are_accepted(url, rule_id):
    app = load(url, fake(portal_register_penalty_rules=lambda: [rule(rule_id)]))
    assert rule_id in app.extensions["portal"].penalty_rules


def test_deadline_policy_rules(url):
    setting = SettingSpec("fakeplug.reply_minutes", "minutes", 30, "时限", "Limit")
    cases = [
        (SlaPolicy("testplug.other", "fakeplug.reply_minutes"),
         r"deadline policy 'testplug.other' of plugin 'fakeplug' must be named"),
        (SlaPolicy("fakeplug.reply", "fakeplug.nosuch"), "names unknown setting"),
        (SlaPolicy("fakeplug.reply", "fakeplug.reply_minutes", calendar="lunar"),
         "calendar is 'wall' or 'working'"),
    ]
    for policy, pattern in cases:
        plugin = fake(portal_register_settings=lambda: [setting],
                      portal_sla_policies=lambda policy=policy: [policy])
        refused(url, plugin, pattern)


# ---- hooks -------------------------------------------------------------------------------------


def test_misspelt_hook_name_fails_at_check_pending(url):
    plugin = fake(portal_regster_blueprints=lambda app: [good_blueprint()])
    refused(url, plugin, "fakeplug", "portal_regster_blueprints", "unknown hook")


def test_hook_with_wrong_arguments_is_refused(url):
    plugin = fake(portal_register_blueprints=lambda application: [good_blueprint()])
    refused(url, plugin, "fakeplug", "portal_register_blueprints", "application")


def test_view_without_access_declaration_is_refused(url):
    def blueprints(app):
        bp = Blueprint("fakeplug", "fakeplug", url_prefix="/fakeplug")
        bp.add_url_rule("/open", "open", lambda: "everyone")
        return [bp]

    with pytest.raises(RuntimeError, match=r"declare no access.*fakeplug\.open"):
        load(url, fake(portal_register_blueprints=blueprints))


def test_view_needing_an_unregistered_permission_is_refused(url):
    with pytest.raises(RuntimeError, match="permissions nobody registered: fakeplug.view"):
        load(url, fake(portal_register_blueprints=lambda app: [good_blueprint()]))


# ---- the `portal plugins` command ----------------------------------------------------------------


def test_portal_plugins_command_lists_plugins_and_their_units(app, tree):
    result = app.test_cli_runner().invoke(args=["portal", "plugins"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    notices = lines.index(next(line for line in lines if line.startswith("notices:")))
    assert "Notice board" in lines[notices]
    assert lines[notices + 1].strip() == "enabled for: acme, club, east, north"  # south is off
    testplug_line = lines.index(next(line for line in lines if line.startswith("testplug:")))
    assert lines[testplug_line + 1].strip() == "enabled for: acme, club, east, north, south"
    assert not any(line.startswith("core:") for line in lines)


def test_portal_plugins_command_on_an_empty_database(app):
    result = app.test_cli_runner().invoke(args=["portal", "plugins"])
    assert result.exit_code == 0
    assert result.output.count("enabled for: (no unit)") == 3
