"""pytest fixtures for the core's and every plugin's tests (loaded by the root conftest).

``PORTAL_TEST_DATABASE_URL`` selects the database (default: a SQLite file in a
temporary folder); the suite runs unchanged on PostgreSQL.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from portal import create_app
from portal.auth.models import Membership, User
from portal.auth.passwords import hash_password
from portal.extensions import db
from portal.units.models import Unit, UnitPlugin

PASSWORD = "correct-horse-42"
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def test_database_url(tmp_path_factory) -> str:
    url = os.environ.get("PORTAL_TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


def is_postgres(app: Flask) -> bool:
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


class PortalClient(FlaskClient):
    """A test client that logs in like a person and sends the CSRF token like a form.

    Each request runs in an app context of its own (fresh ``g``, its own database
    session), as it does in production, even while the test holds one open.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)

    def csrf(self, path: str = "/login") -> str:
        html = self.get(path).get_data(as_text=True)
        match = _CSRF.search(html)
        if match is None:  # logged in: /login redirects; any page carries the token
            html = self.get("/account/password").get_data(as_text=True)
            match = _CSRF.search(html)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def login(self, username: str, password: str = PASSWORD):
        token = self.csrf("/login")
        return self.post("/login", data={"username": username, "password": password,
                                         "csrf_token": token})

    def post_form(self, path: str, data: dict | None = None, htmx: bool = False, **kwargs):
        data = dict(data or {})
        headers = kwargs.pop("headers", {})
        token = self.csrf()
        if htmx:
            headers = {"HX-Request": "true", "X-CSRFToken": token, **headers}
        else:
            data.setdefault("csrf_token", token)
        return self.post(path, data=data, headers=headers, **kwargs)


def make_app(url: str, **overrides) -> Flask:
    from tests import testplug

    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "test-secret",
        "PORTAL_AUDIT_KEY": "test-audit-key",
        "PORTAL_EXTRA_PLUGINS": {"testplug": testplug},
        "PORTAL_DEMO_PASSWORD": PASSWORD,
    }
    config.update(overrides)
    app = create_app(config)
    app.test_client_class = PortalClient
    return app


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return test_database_url(tmp_path_factory)


@pytest.fixture(scope="session")
def _schema_app(database_url) -> Iterator[Flask]:
    app = make_app(database_url)
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def _empty_tables(app: Flask) -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if is_postgres(app):
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        # append-only and sealed tables refuse DELETE: lift their triggers while emptying
        triggers = db.session.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        ).all()
        for name, _sql in triggers:
            db.session.execute(text(f'DROP TRIGGER "{name}"'))
        for name in tables:
            db.session.execute(text(f"DELETE FROM {name}"))
        for _name, sql in triggers:
            db.session.execute(text(sql))
    db.session.commit()


@pytest.fixture
def app(_schema_app) -> Iterator[Flask]:
    with _schema_app.app_context():
        yield _schema_app
        db.session.remove()
        _empty_tables(_schema_app)


@pytest.fixture
def client(app) -> PortalClient:
    return app.test_client()


def make_unit(code: str, parent: Unit | None = None, kind: str = "station",
              plugins: dict[str, bool] | None = None, **fields) -> Unit:
    unit = Unit(code=code, name_zh=fields.pop("name_zh", f"{code}（中文）"),
                name_en=fields.pop("name_en", code.title()), kind=kind,
                parent_id=parent.id if parent else None, **fields)
    db.session.add(unit)
    db.session.flush()
    for name, enabled in (plugins or {}).items():
        db.session.add(UnitPlugin(unit_id=unit.id, plugin=name, enabled=enabled))
    db.session.commit()
    return unit


_HASHES: dict[str, str] = {}


def _hash(password: str) -> str:
    """argon2id at full strength costs ~0.1 s: hash each test password once per run."""
    if password not in _HASHES:
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


def make_user(username: str, *roles: tuple[Unit, str], password: str = PASSWORD, **fields) -> User:
    user = User(username=username, display_name=fields.pop("display_name", username.title()),
                password_hash=_hash(password), **fields)
    db.session.add(user)
    db.session.flush()
    for unit, role in roles:
        db.session.add(Membership(user_id=user.id, unit_id=unit.id, role=role))
    db.session.commit()
    return user


@pytest.fixture
def tree(app):
    """A small company: a region with two stations, plus a separate club."""
    company = make_unit("acme", kind="company", plugins={"notices": True, "testplug": True})
    region = make_unit("east", company, kind="region")
    north = make_unit("north", region)
    south = make_unit("south", region, plugins={"notices": False})
    club = make_unit("club", company, kind="club")
    return {"company": company, "region": region, "north": north, "south": south, "club": club}


# --- concurrency ------------------------------------------------------------------------------

RACE_SECONDS = float(os.environ.get("PORTAL_TEST_RACE_SECONDS", "2"))


class Tab:
    """A tablet for a race: its own logged-in test client and CSRF token; ``post`` gives the
    request to hand to ``concurrently``."""

    def __init__(self, app: Flask, username: str, password: str = PASSWORD):
        self.client = app.test_client()
        assert self.client.login(username, password).status_code == 302, f"{username} cannot log in"
        self.token = self.client.csrf()

    def post(self, path: str, data: dict | None = None, **kwargs) -> Callable[[], object]:
        return lambda: self.client.post(path, data={**(data or {}), "csrf_token": self.token}, **kwargs)


def concurrently(app: Flask, *actions: Callable[[], object], timeout: float = 30) -> list:
    """Run each action in a thread of its own, released together by a barrier, each in its own
    app context (its own database session).  Returns what each returned, or the exception it
    raised, in the order given."""
    barrier = threading.Barrier(len(actions))
    results: list = [None] * len(actions)

    def run(index: int, action: Callable[[], object]) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout)
                results[index] = action()
            except BaseException as exc:  # noqa: BLE001 - handed back to the test
                db.session.rollback()
                results[index] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, a), daemon=True) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results


def race_rounds(minimum: int = 3, seconds: float | None = None) -> Iterator[int]:
    """Round numbers for a race repeated as often as fits in ``seconds`` (at least ``minimum``;
    ``PORTAL_TEST_RACE_SECONDS`` sets the default, 2 s)."""
    seconds = RACE_SECONDS if seconds is None else seconds
    end = time.monotonic() + seconds
    n = 0
    while n < minimum or time.monotonic() < end:
        yield n
        n += 1
