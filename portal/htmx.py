"""htmx glue: partial-or-page rendering, redirects that htmx follows, ``Vary``.

A page template includes its partial (``notices/index.html`` includes
``notices/_list.html``); ``render_page`` returns only the partial when htmx asks
for it, from the same context.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, make_response, redirect, render_template, request, url_for
from flask_htmx import make_response as htmx_response

from portal.extensions import htmx


def is_htmx() -> bool:
    return bool(htmx) and not htmx.boosted


def render_page(page: str, partial: str, status: int = 200, **context) -> Response:
    """The whole page, or only ``partial`` for an htmx request."""
    template = partial if is_htmx() else page
    return make_response(render_template(template, **context), status)


def redirect_to(location: str) -> Response:
    """A redirect that works for plain requests (302) and htmx requests (HX-Redirect)."""
    if is_htmx():
        return htmx_response("", redirect=location)
    return redirect(location)


def unauthorized() -> Response:
    """Not logged in (or the session expired): htmx gets HX-Redirect, a browser a 302."""
    login = url_for("auth.login", next=request.full_path.rstrip("?") if request.method == "GET" else None)
    if htmx:
        # come back to the page the browser shows, not to the fragment htmx asked for
        login = url_for("auth.login", next=_current_page())
        response = make_response("", 401)
        response.headers["HX-Redirect"] = login
        return response
    return redirect(login)


def _current_page() -> str | None:
    """Path and query of ``HX-Current-URL`` when it is a page of this site."""
    parts = urlsplit(htmx.current_url or "")
    if parts.scheme not in ("http", "https") or parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def add_vary(response: Response) -> Response:
    response.vary.add("HX-Request")
    return response
