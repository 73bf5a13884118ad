"""One Alembic history for the core and every plugin: an empty database upgrades to the heads
and then matches the models exactly (no pending autogenerate diff), on SQLite and PostgreSQL.

On PostgreSQL the test creates a fresh database of its own next to the test database
(``PORTAL_TEST_DATABASE_URL``) and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, make_url, text

from portal.audit.sealed import SealedRecordError
from portal.audit.verify import verify_stored_chain
from portal.extensions import db
from portal.testing import make_app

pytestmark = pytest.mark.migrations

PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
SEALED_TABLES = ("penalty_notices", "penalty_appeals", "penalty_decisions")


def migration_app(url: str) -> Flask:
    # the test plugin has no tables and no migrations: leave it out
    return make_app(url, PORTAL_EXTRA_PLUGINS={})


def script_directory(app: Flask) -> ScriptDirectory:
    return ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())


def pending_diff(app: Flask) -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, db.metadata)


def current_heads(app: Flask) -> set[str]:
    with db.engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def at_every_head(script: ScriptDirectory, current: set[str]) -> bool:
    """The database stands at every branch head (a head the others depend on is implied)."""
    applied = {r.revision for r in script.iterate_revisions(tuple(current), "base")}
    return bool(current) and set(script.get_heads()) <= applied


def table_names() -> set[str]:
    with db.engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def upgrade_empty_database_and_compare(app: Flask) -> None:
    with app.app_context():
        assert table_names() == set(), "the database must start empty"
        upgrade(revision="heads")
        script = script_directory(app)
        assert at_every_head(script, current_heads(app))
        diff = pending_diff(app)
        assert diff == [], "models and migrations disagree:\n" + "\n".join(map(repr, diff))
        # every model's table exists (plus Alembic's own)
        assert table_names() == set(db.metadata.tables) | {"alembic_version"}
        assert_guarded_by_triggers()


def assert_guarded_by_triggers() -> None:
    """The migrations create the append-only and sealed-record triggers, not only create_all."""
    with db.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO audit_entries (at, object_type, action, seq, prev_hash, hash) "
            "VALUES (CURRENT_TIMESTAMP, 'probe', 'probe', 999999, :h, :h)"), {"h": "0" * 64})
    for statement in ("UPDATE audit_entries SET action = 'edited'", "DELETE FROM audit_entries",
                      "DELETE FROM audit_head"):
        with pytest.raises(SealedRecordError), db.engine.begin() as connection:
            connection.execute(text(statement))
    with db.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            names = set(connection.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars())
            expected = {f"{t}_sealed_{op}" for t in SEALED_TABLES for op in ("update", "delete")}
        else:
            names = set(connection.execute(text(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars())
            expected = {f"{t}_sealed_guard" for t in SEALED_TABLES}
        assert expected <= names


def test_core_0002_chains_the_audit_entries_written_before_it(tmp_path):
    """CORE-08: entries from before the chain existed are chained in id order and verify."""
    app = migration_app(f"sqlite:///{tmp_path / 'backfill.sqlite3'}")
    with app.app_context():
        upgrade(revision="core_0001")
        with db.engine.begin() as connection:
            for n in range(3):
                connection.execute(text(
                    "INSERT INTO audit_entries (at, object_type, object_id, action, after) "
                    "VALUES (:at, 'user', :id, 'create', :after)"),
                    {"at": f"2026-11-0{n + 1} 08:00:00.000000", "id": str(n), "after": '{"n": %d}' % n})
        upgrade(revision="heads")
        result = verify_stored_chain()
        assert result.ok, result.describe()
        assert result.count == 3
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT seq FROM audit_head")).scalar() == 3
        db.engine.dispose()


def test_history_has_exactly_one_head_per_branch_core_and_each_plugin(tmp_path):
    app = migration_app(f"sqlite:///{tmp_path / 'heads.sqlite3'}")
    plugins = ("express", "notices")
    with app.app_context():
        script = script_directory(app)
        heads = script.get_heads()
        labels = sorted(tuple(sorted(script.get_revision(h).branch_labels)) for h in heads)
        assert labels == [("core",), *((p,) for p in plugins)]
        assert len(heads) == 1 + len(plugins)
        # each plugin branch starts from nothing and depends on the core, never the reverse
        core_head = script.get_revision("core@head")
        for plugin in plugins:
            assert not any(plugin in r.branch_labels
                           for r in script.iterate_revisions(core_head.revision, "base"))
            base = [r for r in script.walk_revisions()
                    if plugin in r.branch_labels and r.down_revision is None]
            assert len(base) == 1 and base[0].dependencies


def test_upgrade_empty_sqlite_database_matches_the_models_and_downgrades(tmp_path):
    app = migration_app(f"sqlite:///{tmp_path / 'migrations.sqlite3'}")
    upgrade_empty_database_and_compare(app)
    with app.app_context():
        downgrade(revision="base")
        assert table_names() <= {"alembic_version"}
        assert current_heads(app) == set()
        # and up again: the history is repeatable
        upgrade(revision="heads")
        assert pending_diff(app) == []
        db.engine.dispose()


@contextmanager
def fresh_postgres_database(url: str) -> Iterator[str]:
    base = make_url(url)
    name = f"portal_migrations_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    server = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.mark.skipif(not PG_URL.startswith("postgresql"),
                    reason="PORTAL_TEST_DATABASE_URL is not a PostgreSQL database")
def test_upgrade_empty_postgres_database_matches_the_models():
    with fresh_postgres_database(PG_URL) as url:
        app = migration_app(url)
        try:
            upgrade_empty_database_and_compare(app)
            with app.app_context():
                downgrade(revision="base")
                assert table_names() <= {"alembic_version"}
        finally:
            with app.app_context():
                db.engine.dispose()
