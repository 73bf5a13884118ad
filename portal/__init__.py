"""The portal core: app factory, extensions, plugins, users and units.

No regulation lives here; each one is a plugin (see ``plugins/``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, g, has_request_context, session
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.routing import IntegerConverter

from portal import config as config_module
from portal.extensions import babel, csrf, db, login_manager, migrate

# not ``htmx``: importing the submodule portal.htmx would rebind that package attribute
from portal.extensions import htmx as htmx_ext

ROOT = Path(__file__).resolve().parent.parent
MAX_ID = 2**31 - 1  # the largest value of an INTEGER column (PostgreSQL, and what SQLite ids reach)


class IdConverter(IntegerConverter):
    """``<int:…>`` limited to ids a database integer column can hold; a larger number in a
    URL matches no route (404) instead of overflowing the query (500)."""

    def __init__(self, map, *args, **kwargs):  # noqa: A002
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def create_app(config: dict | None = None) -> Flask:
    """Build the application.  ``config`` overrides settings read from the environment."""
    app = Flask(
        __name__,
        static_folder=str(ROOT / "static"),
        static_url_path="/static",
        instance_relative_config=True,
    )
    # every <int:…> in a route is a database id: one no integer column holds is no record (404)
    app.url_map.converters["int"] = IdConverter
    app.config.update(config_module.DEFAULTS)
    app.config.update({k: v for k, v in config_module.from_environment().items() if v is not None})
    if config:
        app.config.update(config)
    config_module.finalise(app.config, Path(app.instance_path))
    logging.getLogger("portal").setLevel(logging.INFO)

    db.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx_ext.init_app(app)
    from portal.plugins import build_registry, check_tables

    with app.app_context():
        registry = build_registry(app)
        app.extensions["portal"] = registry
        # import the core models so metadata is complete before checks and migrations
        from portal import models  # noqa: F401

        check_tables(registry, db.Model.registry)

    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(
        [str(Path(__file__).parent / "translations")] + _plugin_translation_dirs(registry)
    )
    babel.init_app(app, locale_selector=_select_locale, timezone_selector=_select_timezone)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)

    # ``migrate`` is shared by every app in the process: register the callback once and let it
    # read the plugins of the app in context (a closure over this app's registry would make the
    # most recently created app's plugins win for all of them)
    if _alembic_locations not in migrate.configure_callbacks:
        migrate.configure(_alembic_locations)

    _wire_requests(app)

    from portal.cli import register_cli

    register_cli(app, registry)

    from portal.auth.access import check_every_view_declares_access

    check_every_view_declares_access(app)
    return app


def _alembic_locations(alembic_config):
    """Alembic's version locations: the core's revisions and every loaded plugin's branch."""
    from flask import current_app

    from portal.plugins import migration_locations

    registry = current_app.extensions["portal"]
    locations = [str(ROOT / "migrations" / "versions"), *migration_locations(registry)]
    alembic_config.set_main_option("version_locations", " ".join(locations))
    alembic_config.set_main_option("path_separator", "space")
    return alembic_config


def _plugin_translation_dirs(registry) -> list[str]:
    out = []
    for name, plugin in registry.plugins.items():
        path = getattr(plugin, "__file__", None)
        if name != "core" and path and (Path(path).parent / "translations").is_dir():
            out.append(str(Path(path).parent / "translations"))
    return out


def _select_locale() -> str:
    from flask import current_app

    languages = current_app.config["PORTAL_LANGUAGES"]
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    if has_request_context() and session.get("locale") in languages:  # commands have no session
        return session["locale"]
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def _select_timezone() -> str:
    from flask import current_app

    from portal.auth.access import current_unit

    unit = current_unit() if current_user and current_user.is_authenticated else None
    default = current_app.config["PORTAL_TIMEZONE"]
    return unit.effective_timezone(default) if unit else default


def _wire_requests(app: Flask) -> None:
    from portal.auth.access import guard_request
    from portal.errors import register_error_handlers
    from portal.htmx import add_vary, unauthorized
    from portal.inputs import refuse_unexpected_files
    from portal.security import add_security_headers, refuse_nul_bytes
    from portal.submissions import claim, release_on_error, settle
    from portal.templating import register_template_globals

    login_manager.unauthorized_handler(unauthorized)
    login_manager.session_protection = None  # the server-side session already binds the login
    app.before_request(refuse_nul_bytes)
    app.before_request(refuse_unexpected_files)
    app.before_request(guard_request)
    app.before_request(claim)  # a repeated submission of one rendered form answers as the first
    app.after_request(settle)
    app.teardown_request(release_on_error)
    app.after_request(add_vary)
    app.after_request(add_security_headers)
    register_error_handlers(app)
    register_template_globals(app)

    @app.teardown_request
    def _forget(exc):  # noqa: ARG001
        g.pop("unit", None)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):  # noqa: ARG001
    """WAL, foreign keys and a busy timeout for the embedded SQLite database."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
