"""``flask --app wsgi portal sla-sweep [--every SECONDS]``."""

from __future__ import annotations

import logging
import signal
import threading

import click
from flask import current_app

from portal.extensions import db

log = logging.getLogger("portal.sla")


def register(cli: click.Group) -> None:
    @cli.command("sla-sweep")
    @click.option("--every", type=click.IntRange(min=1), default=None,
                  help="repeat every SECONDS until stopped (SIGINT/SIGTERM); default: sweep once")
    @click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True)
    def sla_sweep_cmd(every, batch_size):
        """Mark overdue deadlines as breached (once each), send warnings, emit breach events,
        and make final the penalties whose appeal window ran out.

        Safe to run from cron or a systemd timer on several hosts at once.
        """
        if every is None:
            _once(batch_size)
            return
        stop = threading.Event()

        def _stop(signum, frame):  # noqa: ARG001
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        click.echo(f"sweeping deadlines every {every} s (stop with Ctrl-C or SIGTERM)")
        while not stop.is_set():
            try:
                _once(batch_size)
            except Exception:  # the database restarting must not end the loop
                log.exception("sla sweep failed; trying again in %s s", every)
            stop.wait(every)
        click.echo("deadline sweep stopped")


def _once(batch_size: int) -> None:
    from portal.sla.sweep import sweep

    from portal.penalties.service import finalise_due

    app = current_app._get_current_object()
    with app.app_context():  # fresh session and caches for every run
        try:
            result = sweep(batch_size=batch_size)
            finalised = finalise_due()  # appeal windows that ran out (CORE-04)
            db.session.commit()
        finally:
            db.session.remove()
    if result.breached or result.warned or result.failed or finalised:
        click.echo(f"breached {result.breached}, warned {result.warned}, "
                   f"failed {len(result.failed)}, penalties final {finalised}")
