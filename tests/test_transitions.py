"""Race-safe state changes (``portal.transitions``): a conditional write changes a row only in
the state the step expects; ``lock`` serialises steps that check and change several rows;
the loser of a race gets a 409 with a message, never a 500."""

from __future__ import annotations

import pytest
from flask import Blueprint
from sqlalchemy import select

from portal.auth.access import public
from portal.auth.models import User
from portal.extensions import db
from portal.plugin_api import StaleState, lock, transition
from portal.testing import concurrently, make_app, make_user, race_rounds


def _name(user_id: int) -> str:
    db.session.expire_all()
    return db.session.get(User, user_id).display_name


def test_transition_changes_the_row_in_the_expected_state(app):
    user = make_user("sam", display_name="draft")
    transition(User, user.id, expected={"display_name": "draft"}, values={"display_name": "published"})
    db.session.commit()
    assert user.display_name == "published"  # the instance the session holds is refreshed
    assert _name(user.id) == "published"


def test_transition_from_a_state_the_row_left_raises_and_writes_nothing(app):
    user = make_user("sam", display_name="published")
    with pytest.raises(StaleState) as refused:
        transition(User, user.id, expected={"display_name": "draft"}, values={"display_name": "discarded"},
                   message="Only a draft can be discarded.", field="reason")
    assert (str(refused.value), refused.value.field) == ("Only a draft can be discarded.", "reason")
    db.session.rollback()
    assert _name(user.id) == "published"


def test_transition_expecting_null_matches_only_null(app):
    user = make_user("sam", email=None)
    transition(User, user.id, expected={"email": None}, values={"email": "a@example.com"})
    with pytest.raises(StaleState):
        transition(User, user.id, expected={"email": None}, values={"email": "b@example.com"})
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(User, user.id).email is None  # the rollback undid the first too


def test_two_concurrent_transitions_from_one_state_one_wins(app):
    user = make_user("sam", display_name="draft")
    user_id = user.id

    def move(to: str):
        def step():
            db.session.get(User, user_id)  # the step has read the state before it writes
            transition(User, user_id, expected={"display_name": "draft"}, values={"display_name": to})
            db.session.commit()
            return to
        return step

    for _ in race_rounds():
        db.session.execute(User.__table__.update().values(display_name="draft"))
        db.session.commit()
        results = concurrently(app, move("published"), move("discarded"))
        winners = [r for r in results if isinstance(r, str)]
        assert len(winners) == 1, results
        assert [type(r) for r in results if not isinstance(r, str)] == [StaleState]
        assert _name(user_id) == winners[0]


def test_lock_makes_a_concurrent_read_then_write_wait_and_see_the_change(app):
    """Without the lock both steps read 0 and write 1 (a lost update); with it they serialise."""
    user = make_user("sam", display_name="0")
    user_id = user.id

    def increment():
        db.session.get(User, user_id).display_name  # loaded before the lock, as a view does
        row = lock(User, user_id)
        row.display_name = str(int(row.display_name) + 1)
        db.session.commit()

    rounds = 0
    for rounds in race_rounds(seconds=1):
        concurrently(app, increment, increment)
    assert _name(user_id) == str(2 * (rounds + 1))


def test_lock_of_a_missing_row_is_none(app):
    assert lock(User, 123456) is None
    db.session.rollback()


conflict_bp = Blueprint("conflict_probe", __name__)


@conflict_bp.route("/conflict-probe/<kind>", methods=["POST"])
@public
def _probe(kind: str):
    if kind == "stale":
        raise StaleState("Already published by Ann.")
    db.session.add(User(username="root", display_name="x", password_hash="x"))
    db.session.flush()  # a second "root": the unique constraint refuses it
    return "", 204


@pytest.fixture
def probe_client(app, database_url):
    """An app of its own (a blueprint is added before its first request) on the test database."""
    probe = make_app(database_url)
    probe.register_blueprint(conflict_bp)
    return probe.test_client()


def test_a_stale_step_or_a_refused_second_row_answers_409_with_a_message(app, probe_client):
    make_user("root")
    client = probe_client
    stale = client.post_form("/conflict-probe/stale")
    assert stale.status_code == 409
    assert "Already published by Ann." in stale.get_data(as_text=True)
    duplicate = client.post_form("/conflict-probe/duplicate")
    assert duplicate.status_code == 409
    htmx = client.post_form("/conflict-probe/stale", htmx=True)
    assert (htmx.status_code, htmx.headers.get("HX-Refresh")) == (409, "true")
    assert len(db.session.scalars(select(User).where(User.username == "root")).all()) == 1
