"""``flask --app wsgi portal …``: upgrade, db-grant, create-user, plugins, seed-demo (+ plugin commands)."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select, text

from portal.extensions import db


def register_cli(app: Flask, registry) -> None:
    portal = AppGroup("portal", help="Portal administration.")

    @portal.command("upgrade")
    def upgrade_cmd():
        """Apply every migration of the core and of all installed plugins (upgrade heads)."""
        from flask_migrate import upgrade

        from portal.audit.purge import sync_retention_floors

        upgrade(revision="heads")
        sync_retention_floors()
        db.session.commit()
        click.echo("database is up to date")
        role = current_app.config.get("PORTAL_DB_APP_ROLE")
        if role:
            _grant(role)

    @portal.command("db-grant")
    @click.argument("role")
    def db_grant_cmd(role):
        """PostgreSQL, as the owner role: give the application ROLE only the rights it needs."""
        _grant(role)

    def _grant(role: str) -> None:
        from portal.audit.triggers import grant_statements

        if db.engine.dialect.name != "postgresql":
            raise click.ClickException("db-grant is for PostgreSQL (SQLite has no roles)")
        try:
            statements = grant_statements(role)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="ROLE") from exc
        for statement in statements:
            db.session.execute(text(statement))
        db.session.commit()
        click.echo(f"granted the application's rights to role {role}")

    @portal.command("create-user")
    @click.option("--username", required=True)
    @click.option("--name", "display_name", help="full name (default: the username)")
    @click.option("--unit", "unit_code", help="unit code (default: the root unit)")
    @click.option("--role", default="admin", show_default=True)
    @click.option("--password-stdin", is_flag=True, help="read the password from standard input")
    def create_user_cmd(username, display_name, unit_code, role, password_stdin):
        """Create a user with a role on a unit (the first admin, typically)."""
        from portal.accounts import AccountError, create_user

        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            user, unit = create_user(username, display_name or username, password, unit_code, role)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"created {user.username} ({role} on {unit.code})")

    @portal.command("plugins")
    def plugins_cmd():
        """List installed plugins and the units each one is switched on for."""
        from portal.units.models import Unit, plugin_enabled

        units = db.session.scalars(select(Unit).order_by(Unit.code)).all()
        for name in registry.feature_plugins():
            plugin = registry.plugins[name]
            doc = ((getattr(plugin, "__doc__", "") or "").strip().splitlines() or [""])[0]
            on = [u.code for u in units if plugin_enabled(u, name)]
            click.echo(f"{name}: {doc}")
            click.echo(f"  enabled for: {', '.join(on) if on else '(no unit)'}")

    @portal.command("seed-demo")
    def seed_demo_cmd():
        """Create (or complete) the demo company, its units and demo users.  Idempotent."""
        from portal.demo import print_logins, seed_demo

        password, generated = seed_demo()
        print_logins(password, generated)

    registry.hook.portal_register_commands(cli=portal)
    app.cli.add_command(portal)

