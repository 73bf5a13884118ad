"""The in-app inbox: messages to one person, shown with an unread badge in the header.

Any core service may send (the deadline sweep's warnings use it too)::

    from portal.penalties.inbox import send
    send(user_id=7, subject=_l("A deadline is near"), body="…", link="/sla/", unit_id=3)

Subject and body may be lazy strings: they are rendered in the recipient's
language when the message is written.  The caller commits.  With SMTP configured
(``PORTAL_SMTP_HOST``) a person with an e-mail address also gets a copy, sent
after the commit (``portal.penalties.mail``).
"""

from __future__ import annotations

from flask import current_app
from flask_babel import force_locale
from sqlalchemy import func, select

from portal.extensions import db
from portal.penalties import mail
from portal.penalties.models import InboxMessage


def send(user_id: int, subject, body="", link: str | None = None, unit_id: int | None = None,
         kind: str = "notice") -> InboxMessage:
    from portal.auth.models import User

    user = db.session.get(User, user_id)
    locale = (user.locale if user is not None else None) or current_app.config["BABEL_DEFAULT_LOCALE"]
    with force_locale(locale):
        message = InboxMessage(user_id=user_id, unit_id=unit_id, kind=kind[:32],
                               title=str(subject)[:200], body=str(body or ""), link=link)
    db.session.add(message)
    mail.queue(db.session(), user.email if user is not None else None, message.title, message.body, link)
    return message


def unread_count(user_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(InboxMessage).where(
        InboxMessage.user_id == user_id, InboxMessage.read_at.is_(None))) or 0
