"""E-mail copies of inbox messages, sent only when SMTP is configured (``PORTAL_SMTP_HOST``).

A copy is queued on the database session when the inbox message is written and
sent after that session commits, so a refused or rolled-back action mails
nothing.  Delivery problems are logged, never raised: the inbox message is the
record; the e-mail is a courtesy.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from flask import current_app, has_request_context, request
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_QUEUE = "portal_mail"


def configured() -> bool:
    return bool(current_app.config.get("PORTAL_SMTP_HOST"))


def queue(session: Session, to: str | None, subject: str, body: str, link: str | None) -> None:
    """Send ``subject``/``body`` to ``to`` once ``session`` commits (nothing without SMTP or address)."""
    if not to or not configured():
        return
    config = current_app.config
    base = config.get("PORTAL_BASE_URL") or (request.host_url if has_request_context() else "")
    message = EmailMessage()
    message["From"] = config.get("PORTAL_MAIL_FROM") or f"portal@{config['PORTAL_SMTP_HOST']}"
    message["To"] = to
    message["Subject"] = subject
    text = body
    if link:
        text = f"{body}\n\n{base.rstrip('/')}{link}" if base else f"{body}\n\n{link}"
    message.set_content(text)
    smtp = {key: config.get(key) for key in ("PORTAL_SMTP_HOST", "PORTAL_SMTP_PORT", "PORTAL_SMTP_USER",
                                             "PORTAL_SMTP_PASSWORD", "PORTAL_SMTP_STARTTLS")}
    session.info.setdefault(_QUEUE, []).append((smtp, message))


def deliver(smtp: dict, message: EmailMessage) -> bool:
    try:
        with smtplib.SMTP(smtp["PORTAL_SMTP_HOST"], int(smtp["PORTAL_SMTP_PORT"] or 25), timeout=10) as server:
            if smtp["PORTAL_SMTP_STARTTLS"]:
                server.starttls()
            if smtp["PORTAL_SMTP_USER"]:
                server.login(smtp["PORTAL_SMTP_USER"], smtp["PORTAL_SMTP_PASSWORD"] or "")
            server.send_message(message)
        return True
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("e-mail to %s not sent: %s", message["To"], exc)
        return False


@event.listens_for(Session, "after_commit")
def _send_queued(session: Session) -> None:
    for smtp, message in session.info.pop(_QUEUE, []):
        deliver(smtp, message)


@event.listens_for(Session, "after_rollback")
def _drop_queued(session: Session) -> None:
    session.info.pop(_QUEUE, None)
