"""``flask --app wsgi portal audit-verify`` and ``… portal purge``."""

from __future__ import annotations

import getpass
from datetime import date

import click


def register_commands(cli: click.Group) -> None:
    @cli.command("audit-verify")
    @click.option("--batch", default=2000, show_default=True, help="entries read per query")
    def audit_verify_cmd(batch):
        """Walk the audit hash chain; exit 1 at the first edited, deleted, inserted or reordered entry."""
        from portal.audit.verify import verify_stored_chain

        result = verify_stored_chain(batch=batch)
        if result.ok:
            click.echo(result.describe())
            return
        click.echo(result.describe(), err=True)
        click.echo(f"entries before it verified: {result.count} (up to seq {result.last_seq})", err=True)
        raise SystemExit(1)

    @cli.command("purge")
    @click.option("--type", "type_", required=True, help="record type, e.g. duty or audit")
    @click.option("--before", required=True, help="delete records dated before this local date (YYYY-MM-DD)")
    @click.option("--dry-run", is_flag=True, help="count what would be deleted; delete nothing")
    def purge_cmd(type_, before, dry_run):
        """Delete records whose retention has passed (CORE-09); refuses anything younger."""
        from portal.audit.purge import PurgeRefused, purge

        try:
            day = date.fromisoformat(before)
        except ValueError as exc:
            raise click.BadParameter("use YYYY-MM-DD", param_hint="--before") from exc
        try:
            outcome = purge(type_, day, dry_run=dry_run, by=f"cli:{_who()}")
        except PurgeRefused as exc:
            click.echo(str(exc), err=True)
            raise SystemExit(1) from exc
        click.echo(outcome.describe())


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container): still purge
        return "unknown"
