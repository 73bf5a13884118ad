"""Error pages in the user's language, never with a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, flash, make_response, render_template
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, InternalServerError

from portal.extensions import db
from portal.htmx import is_htmx
from portal.inputs import InputError
from portal.transitions import DEFAULT_MESSAGE, StaleState

log = logging.getLogger("portal")

MESSAGES = {
    400: (_l("Bad request"), _l("The request could not be understood. Go back and try again.")),
    403: (_l("Not allowed"), _l("Your role in this unit does not allow this.")),
    404: (_l("Not found"), _l("There is nothing here, or it belongs to another unit.")),
    405: (_l("Not allowed"), _l("This address does not accept that kind of request.")),
    413: (_l("Too large"), _l("What you sent is too large.")),
    409: (_l("Changed meanwhile"), DEFAULT_MESSAGE),
    429: (_l("Too many requests"), _l("Please wait a moment and try again.")),
    500: (_l("Something went wrong"), _l("The error has been logged. Nothing you entered was saved half-way; please try again.")),
    503: (_l("Unavailable"), _l("The portal cannot reach its database right now.")),
}


# Served when the error page itself cannot be rendered (e.g. the database is down and the
# layout cannot load the user): still bilingual, still no stack trace.
FALLBACK = (
    '<!doctype html><html lang="zh-Hans"><head><meta charset="utf-8"><title>{code}</title></head>'
    '<body><main><p class="error-code">{code}</p><h1>暂时无法处理您的请求</h1>'
    '<p>请稍后再试。</p><p lang="en">The portal cannot handle this request right now. '
    'Please try again shortly.</p></main></body></html>'
)


def _page(code: int, detail: str | None = None):
    title, text = MESSAGES.get(code, MESSAGES[500] if code >= 500 else MESSAGES[400])
    try:
        html = render_template("errors/error.html", code=code, title=title, text=detail or text)
        return html, code
    except Exception:  # noqa: BLE001 - the error page must not fail in its turn
        log.exception("error page %s could not be rendered", code)
        return FALLBACK.format(code=code), code


def _conflict(message: str):
    """409: a page with the message; an htmx request reloads its page, which shows it flashed."""
    if is_htmx():
        flash(message, "error")
        response = make_response("", 409)
        response.headers["HX-Refresh"] = "true"
        return response
    return _page(409, message)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        log.warning("CSRF refused: %s", exc.description)
        return _page(400, str(_l("The form expired or did not come from this portal. Reload the page and try again.")))

    @app.errorhandler(StaleState)
    def stale_state(exc: StaleState):
        """Someone else was first (``portal.transitions``): 409 with the step's message."""
        db.session.rollback()
        return _conflict(str(exc.message))

    @app.errorhandler(IntegrityError)
    @app.errorhandler(StaleDataError)
    def conflict(exc: IntegrityError | StaleDataError):
        """A constraint refused a second row that a concurrent step stored first, or the row a
        step changes or deletes was deleted meanwhile: 409, not 500."""
        log.warning("a concurrent change refused a write: %s", getattr(exc, "orig", exc))
        db.session.rollback()
        return _conflict(str(DEFAULT_MESSAGE))

    @app.errorhandler(InputError)
    def input_error(exc: InputError):
        """A typed value a parser refused and the view did not show next to its field (a query
        string, a file where text is expected): 400 with the parser's message, nothing written."""
        db.session.rollback()
        return _page(400, str(exc.message))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        return _page(exc.code)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.exception("unhandled error")
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection may be gone
            log.exception("rollback failed")
        # a database that cannot be reached is "unavailable", not a bug in the portal
        return _page(503 if isinstance(exc, OperationalError) else InternalServerError.code)
