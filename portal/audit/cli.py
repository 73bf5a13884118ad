"""``flask --app wsgi portal audit-verify`` and ``… portal purge``."""

from __future__ import annotations

import getpass
from datetime import date

import click


def register_commands(cli: click.Group) -> None:
    @cli.command("audit-verify")
    @click.option("--batch", default=2000, show_default=True, help="entries read per query")
    def audit_verify_cmd(batch):
        """Check the audit chain, every sealed record and the database's guards; exit 1 on damage.

        Names the first edited, deleted, inserted or reordered entry, every sealed row edited or
        deleted (table and id), and every missing, disabled or altered trigger or guard function.
        """
        from portal.audit.verify import verify_all

        report = verify_all(batch=batch)
        if report.ok:
            click.echo(report.chain.describe())
            click.echo("sealed records and database guards OK")
            return
        for line in report.lines():
            click.echo(line, err=True)
        if not report.chain.ok:
            click.echo(f"entries before it verified: {report.chain.count} (up to seq {report.chain.last_seq})",
                       err=True)
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
