"""The plugin manager: built-in and installed plugins, validated at load time.

Plugins are found through the ``portal.plugins`` entry-point group (the built-in
ones are registered that way in ``pyproject.toml``, exactly like a third-party
package would be).  ``PORTAL_PLUGINS`` restricts which load; tests register
plugins explicitly through ``PORTAL_EXTRA_PLUGINS``.

Load-time rules, each failing with a ``PluginError`` that says what to fix:

* the plugin name is a lowercase identifier;
* its blueprints are named after it and mounted at ``/<plugin>``;
* its templates live under ``templates/<plugin>/``;
* its tables start with ``<plugin>_``;
* its permissions and settings are named ``<plugin>.<something>``;
* penalty-rule ids and role names are unique.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import pluggy
from flask import Blueprint, Flask

from portal import hookspecs
from portal.penalties.settings import rule_amount_settings
from portal.plugin_api import (
    BUILTIN_ROLES,
    PenaltyRule,
    Permission,
    Role,
    SettingError,
    SettingSpec,
    SlaPolicy,
)

ENTRY_POINT_GROUP = "portal.plugins"
CORE = "core"
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
# names the core's own blueprints and URL prefixes use
RESERVED = frozenset({"admin", "api", "audit", "auth", "core", "inbox", "panels", "penalties",
                      "sla", "static"})
_RULE_ID = re.compile(r"^[A-Z]+-[A-Z]?\d{2}(?:-[A-Z0-9]+)?$")  # EXP-P04, or a variant EXP-P04-M


class PluginError(RuntimeError):
    """A plugin breaks a load-time rule."""


@dataclass
class PluginRegistry:
    """What the plugins registered, validated; kept at ``app.extensions['portal']``."""

    pm: pluggy.PluginManager
    plugins: dict[str, ModuleType | object] = field(default_factory=dict)
    blueprint_plugin: dict[str, str] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    permissions: dict[str, Permission] = field(default_factory=dict)
    grants: dict[str, set[str]] = field(default_factory=dict)
    settings: dict[str, SettingSpec] = field(default_factory=dict)
    penalty_rules: dict[str, PenaltyRule] = field(default_factory=dict)
    rule_owner: dict[str, str] = field(default_factory=dict)  # rule id → plugin
    sla_policies: dict[str, SlaPolicy] = field(default_factory=dict)

    @property
    def hook(self):
        return self.pm.hook

    def title(self, name: str, lang: str = "zh") -> str:
        """A plugin's display name: its module's ``TITLE = ("快件查询", "Express inquiries")``."""
        title = getattr(self.plugins.get(name), "TITLE", None)
        if not title:
            return name
        return title[1] if lang == "en" else title[0]

    def feature_plugins(self) -> list[str]:
        """Plugins that can be switched on and off per unit (all but the core)."""
        return [name for name in self.plugins if name != CORE]

    def hook_for(self, hook_name: str, plugin_names: set[str]):
        """The hook called only on the core and the given plugins (per-unit enabling)."""
        skip = [p for name, p in self.plugins.items() if name != CORE and name not in plugin_names]
        return self.pm.subset_hook_caller(hook_name, remove_plugins=skip)


def build_registry(app: Flask) -> PluginRegistry:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = PluginRegistry(pm=pm)

    from portal import core_plugin

    _register(registry, CORE, core_plugin)
    allowed = app.config.get("PORTAL_PLUGINS")
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if allowed is not None and ep.name not in allowed:
            continue
        _register(registry, ep.name, ep.load())
    for name, module in (app.config.get("PORTAL_EXTRA_PLUGINS") or {}).items():
        _register(registry, name, module)
    if allowed is not None:
        missing = set(allowed) - set(registry.plugins)
        if missing:
            raise PluginError(
                f"PORTAL_PLUGINS names plugins that are not installed: {', '.join(sorted(missing))}"
            )
    try:
        pm.check_pending()  # a hookimpl whose name matches no hook spec (a misspelt hook)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {pm.get_name(exc.plugin)!r}: {exc}") from exc

    _collect_roles(registry)
    _collect_permissions(registry)
    _collect_settings(registry)
    _collect_penalty_rules(registry)
    _collect_sla_policies(registry)
    _register_blueprints(registry, app)
    return registry


def _register(registry: PluginRegistry, name: str, plugin: object) -> None:
    if name != CORE and (not _NAME.match(name) or name in RESERVED):
        raise PluginError(f"plugin name {name!r} must be a lowercase identifier, not reserved")
    if name in registry.plugins:
        raise PluginError(f"plugin {name!r} is registered twice")
    try:
        registry.pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # a hook with arguments its spec does not have
        raise PluginError(f"plugin {name!r}: {exc}") from exc
    registry.plugins[name] = plugin


def _results_by_plugin(registry: PluginRegistry, hook_name: str, **kwargs):
    """Call a hook plugin by plugin, so each result is checked against its owner."""
    for name, plugin in registry.plugins.items():
        impl = getattr(plugin, hook_name, None)
        if impl is None:
            continue
        for item in impl(**kwargs) or []:
            yield name, item


def _require_prefix(owner: str, key: str, what: str) -> None:
    if not key.startswith(owner + "."):
        raise PluginError(f"{what} {key!r} of plugin {owner!r} must be named '{owner}.<name>'")


def _collect_roles(registry: PluginRegistry) -> None:
    for owner, role in _results_by_plugin(registry, "portal_register_roles"):
        if role.name in registry.roles:
            raise PluginError(f"role {role.name!r} of plugin {owner!r} is already defined")
        registry.roles[role.name] = role
    missing = set(BUILTIN_ROLES) - set(registry.roles)
    if missing:
        raise PluginError(f"built-in roles missing: {sorted(missing)}")
    registry.grants = {name: set() for name in registry.roles}


def _collect_permissions(registry: PluginRegistry) -> None:
    for owner, perm in _results_by_plugin(registry, "portal_register_permissions"):
        _require_prefix(owner, perm.name, "permission")
        if perm.name in registry.permissions:
            raise PluginError(f"permission {perm.name!r} is defined twice")
        registry.permissions[perm.name] = perm
        for role in perm.roles:
            if role not in registry.roles:
                raise PluginError(f"permission {perm.name!r} grants unknown role {role!r}")
            registry.grants[role].add(perm.name)


def _collect_settings(registry: PluginRegistry) -> None:
    for owner, spec in _results_by_plugin(registry, "portal_register_settings"):
        _require_prefix(owner, spec.key, "setting")
        if spec.type not in SettingSpec.TYPES:
            raise PluginError(f"setting {spec.key!r} has unknown type {spec.type!r}")
        if spec.key in registry.settings:
            raise PluginError(f"setting {spec.key!r} is defined twice")
        try:
            spec.parse(spec.dump(spec.default))  # the default must pass its own validation
        except SettingError as exc:
            # the message may be a lazy translation, unusable before Babel is set up
            detail = exc.args[0] if exc.args and isinstance(exc.args[0], str) else (
                f"type {spec.type}, minimum {spec.minimum!r}, maximum {spec.maximum!r}")
            raise PluginError(
                f"setting {spec.key!r} of plugin {owner!r}: the default {spec.default!r} "
                f"fails its own validation ({detail})"
            ) from exc
        registry.settings[spec.key] = spec


def _collect_penalty_rules(registry: PluginRegistry) -> None:
    for owner, rule in _results_by_plugin(registry, "portal_register_penalty_rules"):
        if not _RULE_ID.match(rule.id):
            raise PluginError(f"penalty rule id {rule.id!r} of {owner!r} is not a regulation ID")
        if rule.id in registry.penalty_rules:
            raise PluginError(f"penalty rule {rule.id!r} is defined twice")
        registry.penalty_rules[rule.id] = rule
        registry.rule_owner[rule.id] = owner
        for spec in rule_amount_settings(owner, rule):
            if spec.key in registry.settings:
                raise PluginError(f"setting {spec.key!r} is defined twice")
            registry.settings[spec.key] = spec


def _collect_sla_policies(registry: PluginRegistry) -> None:
    for owner, policy in _results_by_plugin(registry, "portal_sla_policies"):
        _require_prefix(owner, policy.id, "deadline policy")
        if policy.setting_key not in registry.settings:
            raise PluginError(f"deadline policy {policy.id!r} names unknown setting")
        if policy.calendar not in ("wall", "working"):
            raise PluginError(f"deadline policy {policy.id!r}: calendar is 'wall' or 'working'")
        registry.sla_policies[policy.id] = policy


def _register_blueprints(registry: PluginRegistry, app: Flask) -> None:
    for owner, bp in _results_by_plugin(registry, "portal_register_blueprints", app=app):
        if not isinstance(bp, Blueprint):
            raise PluginError(f"plugin {owner!r} returned {bp!r}, not a Blueprint")
        if owner == CORE:
            app.register_blueprint(bp)
            continue
        if bp.name != owner:
            raise PluginError(f"blueprint {bp.name!r} of plugin {owner!r} must be named {owner!r}")
        if bp.url_prefix != f"/{owner}":
            raise PluginError(
                f"blueprint of plugin {owner!r} must have url_prefix='/{owner}', "
                f"not {bp.url_prefix!r}"
            )
        _check_templates(owner, bp)
        app.register_blueprint(bp)
        registry.blueprint_plugin[bp.name] = owner


def _check_templates(owner: str, bp: Blueprint) -> None:
    if not bp.template_folder:
        return
    folder = Path(bp.root_path) / bp.template_folder
    if not folder.is_dir():
        return
    stray = [p.name for p in folder.iterdir() if p.name != owner and not p.name.startswith(".")]
    if stray:
        raise PluginError(
            f"templates of plugin {owner!r} must live under templates/{owner}/; found {stray}"
        )


def check_tables(registry: PluginRegistry, metadata_registry) -> None:
    """Every table mapped by a plugin's models starts with ``<plugin>_``."""
    modules = {
        name: getattr(plugin, "__name__", type(plugin).__module__)
        for name, plugin in registry.plugins.items()
        if name != CORE
    }
    for mapper in metadata_registry.mappers:
        module = mapper.class_.__module__
        for name, package in modules.items():
            if module == package or module.startswith(package + "."):
                for table in mapper.tables:
                    if not table.name.startswith(name + "_"):
                        raise PluginError(
                            f"table {table.name!r} of plugin {name!r} must be named "
                            f"'{name}_<table>'"
                        )


def migration_locations(registry: PluginRegistry) -> list[str]:
    """The ``migrations/`` folder of every installed plugin that has one."""
    out = []
    for name, plugin in registry.plugins.items():
        if name == CORE:
            continue
        path = getattr(plugin, "__file__", None)
        if path:
            folder = Path(path).parent / "migrations"
            if folder.is_dir():
                out.append(str(folder))
    return out
