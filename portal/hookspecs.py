"""Every hook the core calls.  Plugins implement them with ``@hookimpl``.

Each hook is prefixed ``portal_``.  ``register_*`` hooks return lists that the
core validates at start-up (names, prefixes, duplicates) and wires in.
The README's plugin guide documents every hook; ``tests/test_hooks.py`` checks
that it does and that each hook is exercised by a test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click
    from flask import Blueprint, Flask
    from sqlalchemy.orm import Session

    from portal.auth.models import User
    from portal.plugin_api import (
        DomainEvent,
        NavItem,
        Panel,
        PenaltyDraft,
        PenaltyRule,
        Permission,
        Role,
        SettingSpec,
        SlaPolicy,
    )
    from portal.units.models import Unit

PROJECT = "portal"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def portal_register_blueprints(app: Flask) -> list[Blueprint]:
    """Blueprints of the plugin.

    :param app: the application being built.
    :return: blueprints; each must be named after the plugin and mounted at ``/<plugin>``.
    """


@hookspec
def portal_register_roles() -> list[Role]:
    """Roles the plugin adds to the built-in staff/supervisor/manager/auditor/admin.

    :return: roles with unique names.
    """


@hookspec
def portal_register_permissions() -> list[Permission]:
    """Named permissions (``<plugin>.<action>``) with the roles granted them by default.

    :return: permissions; names must start with the plugin name and a dot.
    """


@hookspec
def portal_register_settings() -> list[SettingSpec]:
    """Per-unit, effective-dated settings with the regulation's values as defaults.

    :return: setting specs; keys must start with the plugin name and a dot.
    """


@hookspec
def portal_nav_items(user: User, unit: Unit) -> list[NavItem]:
    """Links for the main navigation of ``user`` in ``unit``.

    Only called for plugins switched on for ``unit``; items whose permission the
    user lacks there are dropped by the core.
    :param user: the logged-in user.
    :param unit: the current business unit.
    """


@hookspec
def portal_dashboard_panels(user: User, unit: Unit) -> list[Panel]:
    """Dashboard panels, loaded lazily with htmx from each panel's endpoint.

    Only called for plugins switched on for ``unit``.
    :param user: the logged-in user.
    :param unit: the current business unit.
    """


@hookspec
def portal_register_commands(cli: click.Group) -> None:
    """Add commands to ``flask --app wsgi portal …``.

    :param cli: the ``portal`` command group; call ``cli.command()`` / ``cli.add_command()``.
    """


@hookspec
def portal_seed_demo(session: Session, units: dict[str, Unit], users: dict[str, User]) -> None:
    """Add demo data; must be idempotent (``seed-demo`` runs on every ``make run``).

    :param session: the database session; the core commits.
    :param units: the demo units by code (``demo`` is the company; ``express-sh``, ``ktv`` …).
    :param users: the demo users by username.
    """


@hookspec
def portal_register_penalty_rules() -> list[PenaltyRule]:
    """Penalty rules of the plugin's regulation, each keyed by its regulation ID.

    :return: rules; ids are unique across all plugins (``EXP-P03``).
    """


@hookspec
def portal_assess_penalties(event: DomainEvent) -> list[PenaltyDraft]:
    """Propose penalties for a domain event (a deadline breached, a complaint verified).

    Every plugin sees every event and answers for its own rules; a draft is only a
    proposal until an auditor publishes it (CORE-03).
    :param event: what happened.
    :return: drafts, possibly empty.
    """


@hookspec
def portal_penalty_issued(notice: PenaltyDraft) -> None:
    """Told when a penalty notice is published, for notifications and statistics.

    :param notice: the published penalty.
    """


@hookspec
def portal_sla_policies() -> list[SlaPolicy]:
    """Deadlines (timers) the plugin owns, each tied to the setting holding its duration.

    :return: policies with ids ``<plugin>.<timer>``.
    """
