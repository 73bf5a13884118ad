"""``flask --app wsgi portal penalties-finalise`` and ``… payroll-export``."""

from __future__ import annotations

import sys

import click


def register(cli: click.Group) -> None:
    @cli.command("penalties-finalise")
    def finalise_cmd():
        """Make final every penalty whose appeal period ran out without an appeal (CORE-04)."""
        from portal.extensions import db
        from portal.penalties.service import finalise_due

        count = finalise_due()
        db.session.commit()
        click.echo(f"{count} penalties became final")

    @cli.command("payroll-export")
    @click.option("--month", required=True, help="the payroll month, YYYY-MM")
    @click.option("--unit", "unit_code", help="only this unit and its sub-units (unit code)")
    @click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv",
                  show_default=True)
    @click.option("--output", type=click.Path(dir_okay=False, writable=True),
                  help="file to write (default: standard output)")
    def payroll_export_cmd(month, unit_code, fmt, output):
        """Export the month's penalty statement (CORE-05); the same month gives the same bytes."""
        from sqlalchemy import select

        from portal.audit import record
        from portal.extensions import db
        from portal.penalties import payroll
        from portal.penalties.rules import parse_month
        from portal.units.models import Unit, descendant_ids

        try:
            parse_month(month)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--month") from exc
        unit_ids = None
        unit_id = None
        if unit_code:
            unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
            if unit is None:
                raise click.BadParameter(f"no unit with code {unit_code!r}", param_hint="--unit")
            unit_ids = descendant_ids({unit.id})
            unit_id = unit.id
        if output:
            with open(output, "wb") as handle:
                for chunk in payroll.export(month, unit_ids, fmt):
                    handle.write(chunk)
        else:
            stream = sys.stdout.buffer
            for chunk in payroll.export(month, unit_ids, fmt):
                stream.write(chunk)
            stream.flush()
        record("payroll.exported", "payroll", month, unit_id=unit_id,
               after={"month": month, "unit": unit_code, "format": fmt, "via": "cli"})
        db.session.commit()
        if output:
            click.echo(f"wrote {output}", err=True)
