"""One-time submission keys: a rendered form is sent once, however often it is posted.

``static/js/portal.js`` gives every POST form a hidden ``_submission`` field with a random
key when the form appears on the page (and an htmx request from it the same key in the
``X-Submission-Key`` header).  A double tap, a slow network's retry or a second tab posting
the same rendered form sends the same key again:

* ``claim`` (before the view): the first POST of a key stores it (``form_submissions``,
  committed at once on a connection of its own); a second POST of it waits until the first
  has answered, then
* gets **the first one's redirect** (``Location`` / ``HX-Redirect``), and its view never runs —
  nothing is created twice;
* or, when the first did not redirect (a form shown again with its messages), runs normally:
  ``settle`` (after the view) forgets a key whose answer was not a redirect, so a corrected
  form can be sent again.

Keys belong to the user who sent them and expire after ``KEEP``.  A POST without a key
(a script, a test) is handled as before; the state changes stay safe by themselves
(``portal.transitions``).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta

from flask import Response, g, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import ForeignKey, String, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db
from portal.htmx import redirect_to
from portal.transitions import StaleState

log = logging.getLogger("portal")

FIELD = "_submission"
HEADER = "X-Submission-Key"
KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
KEEP = timedelta(hours=12)  # as long as a session lives
WAIT = 15.0  # seconds a repeat waits for the first submission's answer
POLL = 0.05


class FormSubmission(db.Model):
    """A submission key seen, and where its first POST redirected (None while it runs)."""

    __tablename__ = "form_submissions"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(255))
    location: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def _key() -> str | None:
    if request.method != "POST":
        return None
    key = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    return key if KEY.match(key) else None


def claim() -> Response | None:
    """Before the view: the first POST of a key goes on; a repeat answers as the first did."""
    key = _key()
    if key is None or not current_user or not current_user.is_authenticated:
        return None
    table = FormSubmission.__table__
    deadline = time.monotonic() + WAIT
    while True:
        now = utcnow()
        try:
            with db.engine.begin() as connection:
                connection.execute(delete(table).where(table.c.expires_at < now))
                connection.execute(insert(table).values(
                    key=key, user_id=current_user.id, path=request.path[:255], created_at=now,
                    expires_at=now + KEEP))
        except IntegrityError:
            pass  # sent before: what became of it?
        else:
            g.submission_key = key
            return None
        with db.engine.connect() as connection:
            row = connection.execute(select(table.c.user_id, table.c.location)
                                     .where(table.c.key == key)).first()
        if row is not None and row.user_id != current_user.id:
            return None  # not this user's key: no memory of it for them
        if row is not None and row.location is not None:
            log.info("repeated submission %s… of %s answered with the first one's redirect", key[:8],
                     request.path)
            return redirect_to(row.location)
        if time.monotonic() > deadline:
            raise StaleState(_l("This form is still being sent. Wait a moment, then reload the page."))
        time.sleep(POLL)  # the first is still running (or has just let the key go: claim again)


def _location(response: Response) -> str | None:
    if response.headers.get("HX-Redirect"):
        return response.headers["HX-Redirect"]
    if 300 <= response.status_code < 400 and response.location:
        return response.location
    return None


def settle(response: Response) -> Response:
    """After the view: keep where a redirecting submission went; forget any other answer's key."""
    key = g.pop("submission_key", None)
    if key is not None:
        _finish(key, _location(response))
    return response


def release_on_error(exc) -> None:  # noqa: ARG001
    """Teardown: a request that failed before ``settle`` lets its key go."""
    key = g.pop("submission_key", None)
    if key is not None:
        _finish(key, None)


def _finish(key: str, location: str | None) -> None:
    table = FormSubmission.__table__
    try:
        with db.engine.begin() as connection:
            if location is None:
                connection.execute(delete(table).where(table.c.key == key))
            else:
                connection.execute(update(table).where(table.c.key == key).values(location=location[:2000]))
    except Exception:  # noqa: BLE001 - the answer stands; the key expires by itself
        log.exception("submission key %s… could not be settled", key[:8])
