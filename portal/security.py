"""Security headers on every response; ``no-store`` on authenticated pages; no NUL bytes in input."""

from __future__ import annotations

from flask import Response, abort, request
from flask_login import current_user

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    try:
        authenticated = current_user.is_authenticated
    except Exception:  # noqa: BLE001 - user not loadable (database down): keep it private
        authenticated = True
    if request.endpoint != "static" and (authenticated or request.endpoint in ("auth.login",)):
        headers["Cache-Control"] = "no-store"
    return response


def refuse_nul_bytes() -> None:
    """``before_request``: a NUL byte in a query or form value is nothing a person types, and
    PostgreSQL text cannot hold it — refuse the request (400) before any view writes."""
    values = [*request.args.values(), *(request.form.values() if request.method != "GET" else ())]
    if any("\x00" in value for value in values):
        abort(400)
