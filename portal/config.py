"""Settings read from environment variables.

Every setting has a ``PORTAL_`` environment variable; ``create_app(config)``
may override any of them (tests do).  See the README's configuration reference.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str | None) -> list[str] | None:
    if value is None or value.strip() == "":
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


# Removed settings and what replaced them: one still set stops the start instead of being ignored.
RENAMED = {
    "PORTAL_LOGIN_LOCKOUT_MINUTES": (
        "accounts are no longer locked after failed logins; the delays grow instead "
        "(PORTAL_LOGIN_DELAY_SECONDS, PORTAL_LOGIN_MAX_DELAY_MINUTES, "
        "PORTAL_LOGIN_ACCOUNT_MAX_DELAY_MINUTES)."),
    "PORTAL_LOGIN_WINDOW_MINUTES": "failures are remembered for PORTAL_LOGIN_WINDOW_HOURS (default 24).",
}


def from_environment(env: dict[str, str] | None = None) -> dict:
    """The settings as Flask config keys, read from ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    for gone, instead in RENAMED.items():
        if env.get(gone):
            raise ConfigError(f"{gone} is no longer read: {instead} "
                              "See the README's configuration reference.")
    return {
        "PORTAL_ENV": env.get("PORTAL_ENV", "development"),
        "SQLALCHEMY_DATABASE_URI": env.get("PORTAL_DATABASE_URL") or None,
        "SECRET_KEY": env.get("PORTAL_SECRET_KEY") or None,
        "PORTAL_AUDIT_KEY": env.get("PORTAL_AUDIT_KEY") or None,
        # PostgreSQL two-role deployment: `portal upgrade` (run as the owner) grants this role
        # the application's rights (portal.audit.triggers.grant_statements)
        "PORTAL_DB_APP_ROLE": env.get("PORTAL_DB_APP_ROLE") or None,
        "PORTAL_TIMEZONE": env.get("PORTAL_TIMEZONE", "Asia/Shanghai"),
        "PORTAL_PLUGINS": _list(env.get("PORTAL_PLUGINS")),
        "PORTAL_DEFAULT_LOCALE": env.get("PORTAL_DEFAULT_LOCALE", "zh_Hans"),
        "PORTAL_IDLE_TIMEOUT": timedelta(minutes=int(env.get("PORTAL_IDLE_TIMEOUT_MINUTES", "30"))),
        "PORTAL_ABSOLUTE_TIMEOUT": timedelta(hours=int(env.get("PORTAL_ABSOLUTE_TIMEOUT_HOURS", "12"))),
        # login throttling (portal/auth/throttle.py): growing delays, never an account lock
        "PORTAL_LOGIN_MAX_FAILURES": int(env.get("PORTAL_LOGIN_MAX_FAILURES", "10")),
        "PORTAL_LOGIN_ADDRESS_MAX_FAILURES": int(
            env.get("PORTAL_LOGIN_ADDRESS_MAX_FAILURES", "30")),
        "PORTAL_LOGIN_DELAY": timedelta(seconds=int(env.get("PORTAL_LOGIN_DELAY_SECONDS", "60"))),
        "PORTAL_LOGIN_MAX_DELAY": timedelta(
            minutes=int(env.get("PORTAL_LOGIN_MAX_DELAY_MINUTES", "60"))),
        "PORTAL_LOGIN_ACCOUNT_MAX_DELAY": timedelta(
            minutes=int(env.get("PORTAL_LOGIN_ACCOUNT_MAX_DELAY_MINUTES", "5"))),
        "PORTAL_LOGIN_WINDOW": timedelta(hours=int(env.get("PORTAL_LOGIN_WINDOW_HOURS", "24"))),
        "PORTAL_LOGIN_KNOWN_ADDRESS": timedelta(
            days=int(env.get("PORTAL_LOGIN_KNOWN_ADDRESS_DAYS", "90"))),
        "SESSION_COOKIE_SECURE": _bool(env.get("PORTAL_SECURE_COOKIES")),
        "PORTAL_DEMO_PASSWORD": env.get("PORTAL_DEMO_PASSWORD") or None,
        "PORTAL_SMTP_HOST": env.get("PORTAL_SMTP_HOST") or None,
        "PORTAL_SMTP_PORT": int(env.get("PORTAL_SMTP_PORT") or "25"),
        "PORTAL_SMTP_USER": env.get("PORTAL_SMTP_USER") or None,
        "PORTAL_SMTP_PASSWORD": env.get("PORTAL_SMTP_PASSWORD") or None,
        "PORTAL_SMTP_STARTTLS": _bool(env.get("PORTAL_SMTP_STARTTLS")),
        "PORTAL_MAIL_FROM": env.get("PORTAL_MAIL_FROM") or None,
        "PORTAL_BASE_URL": env.get("PORTAL_BASE_URL") or None,
    }


DEFAULTS = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "portal_session",
    "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
    "WTF_CSRF_SSL_STRICT": True,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "BABEL_DEFAULT_LOCALE": "zh_Hans",
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    "PORTAL_LANGUAGES": ("zh_Hans", "en"),
    "PORTAL_EXTRA_PLUGINS": {},
}


def finalise(config: dict, instance_path: Path) -> None:
    """Fill in what depends on the instance folder and check production rules."""
    instance_path.mkdir(parents=True, exist_ok=True)
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance_path / 'portal.sqlite3'}"
    if not config.get("SECRET_KEY"):
        if config.get("PORTAL_ENV") == "production":
            raise ConfigError(
                "PORTAL_SECRET_KEY is not set. In production the secret key must come from the "
                "environment, e.g. PORTAL_SECRET_KEY=$(python -c 'import secrets; "
                "print(secrets.token_hex(32))')."
            )
        config["SECRET_KEY"] = _instance_secret(instance_path)
    if not config.get("PORTAL_AUDIT_KEY"):
        if config.get("PORTAL_ENV") == "production":
            raise ConfigError(
                "PORTAL_AUDIT_KEY is not set. In production the key that seals the audit trail "
                "(HMAC-SHA256 hash chain) must come from the environment and be kept outside the "
                "database, e.g. PORTAL_AUDIT_KEY=$(python -c 'import secrets; "
                "print(secrets.token_hex(32))'). Keep it safe: audit-verify needs the same key."
            )
        config["PORTAL_AUDIT_KEY"] = _instance_secret(instance_path, "audit_key")
    config["BABEL_DEFAULT_LOCALE"] = config.get("PORTAL_DEFAULT_LOCALE", "zh_Hans")


def _instance_secret(instance_path: Path, name: str = "secret_key") -> str:
    """A development secret, generated once and kept in the instance folder file ``name``."""
    path = instance_path / name
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
