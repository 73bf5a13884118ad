"""The hash-chained, append-only audit trail (CORE-08)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from portal.audit import AppendOnlyError, AuditEntry, record
from portal.audit.chain import (
    DELETED,
    EDITED,
    GENESIS,
    HEAD,
    INSERTED,
    REORDERED,
    Checkpoint,
    entry_hash,
    verify_chain,
)
from portal.audit.models import AuditHead
from portal.audit.verify import verify_stored_chain
from portal.config import ConfigError, finalise
from portal.extensions import db
from portal.testing import is_postgres, make_user

KEY = "k" * 32
T0 = datetime(2026, 3, 5, 1, 2, 3, 4, tzinfo=timezone.utc)


# ---- the pure chain ----------------------------------------------------------------------


def _chain(n: int, key: str = KEY) -> list[dict]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        row = {"seq": seq, "at": T0 + timedelta(seconds=seq), "actor_id": 7, "actor_name": "anna",
               "unit_id": 3, "object_type": "user", "object_id": str(seq), "action": "user.updated",
               "before": {"name": "旧"}, "after": {"name": f"新{seq}", "n": seq}, "remote_addr": "10.0.0.1",
               "id": seq}
        row["prev_hash"] = prev
        row["hash"] = prev = entry_hash(key, prev, row)
        rows.append(row)
    return rows


def _head(rows):
    return (rows[-1]["seq"], rows[-1]["hash"]) if rows else (0, GENESIS)


def test_core_08_pure_chain_verifies_and_hash_depends_on_key_and_every_field():
    rows = _chain(20)
    result = verify_chain(rows, KEY, head=_head(rows))
    assert result.ok and result.count == 20 and result.describe() == "audit chain OK: 20 entries"
    assert not verify_chain(rows, "another key", head=_head(rows)).ok
    base = rows[0]
    for field in ("seq", "at", "actor_id", "actor_name", "unit_id", "object_type", "object_id", "action",
                  "before", "after", "remote_addr"):
        changed = dict(base)
        changed[field] = (T0 + timedelta(microseconds=1)) if field == "at" else {"x": 1}
        assert entry_hash(KEY, GENESIS, changed) != base["hash"], field
    assert entry_hash(KEY, "1" * 64, base) != base["hash"]


def test_core_08_pure_chain_pinpoints_edit_delete_insert_swap():
    rows = _chain(30)
    head = _head(rows)

    edited = [dict(r) for r in rows]
    edited[11]["after"] = {"name": "forged"}
    problem = verify_chain(edited, KEY, head=head).problem
    assert (problem.kind, problem.seq) == (EDITED, 12)

    deleted = rows[:9] + rows[10:]
    problem = verify_chain(deleted, KEY, head=head).problem
    assert (problem.kind, problem.seq) == (DELETED, 10)

    problem = verify_chain(rows[:-1], KEY, head=head).problem
    assert (problem.kind, problem.seq) == (DELETED, 30)

    forged = dict(rows[14], action="user.created", prev_hash=rows[13]["hash"], hash="f" * 64)
    renumbered = rows[:14] + [forged] + [dict(r, seq=r["seq"] + 1) for r in rows[14:]]
    problem = verify_chain(renumbered, KEY, head=(31, rows[-1]["hash"])).problem
    assert (problem.kind, problem.seq) == (INSERTED, 15)

    extra = dict(rows[-1], seq=31, hash="e" * 64, prev_hash=rows[-1]["hash"])
    problem = verify_chain([*rows, extra], KEY, head=head).problem
    assert (problem.kind, problem.seq) == (INSERTED, 31)

    swapped = [dict(r) for r in rows]
    for field in ("at", "object_id", "after", "prev_hash", "hash"):
        swapped[4][field], swapped[20][field] = rows[20][field], rows[4][field]
    problem = verify_chain(swapped, KEY, head=head, find_hash=_finder(swapped)).problem
    assert (problem.kind, problem.seq) == (REORDERED, 5)

    problem = verify_chain(rows, KEY, head=(30, "0" * 64)).problem
    assert problem.kind == HEAD


def _finder(rows):
    index = {r["hash"]: r["seq"] for r in rows}
    return index.get


def test_core_08_pure_chain_starts_after_a_checkpoint():
    rows = _chain(10)
    start = Checkpoint(4, rows[3]["hash"])
    assert verify_chain(rows[4:], KEY, start=start, head=_head(rows)).ok
    problem = verify_chain(rows[5:], KEY, start=start, head=_head(rows)).problem
    assert (problem.kind, problem.seq) == (DELETED, 5)


# ---- the stored chain --------------------------------------------------------------------


def _verify(app):
    result = app.test_cli_runner().invoke(args=["portal", "audit-verify"])
    return result.exit_code, result.output


def _write(n: int, per_transaction: int = 2000, **fields) -> None:
    for start in range(0, n, per_transaction):
        for i in range(start, min(n, start + per_transaction)):
            record("test.changed", "thing", i, before={"v": i}, after={"v": i + 1, "名": "值"}, **fields)
        db.session.commit()


@contextmanager
def triggers_lifted(app):
    """Tamper like an intruder with database access: switch the append-only triggers off."""
    if is_postgres(app):
        db.session.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
        db.session.execute(text("ALTER TABLE audit_head DISABLE TRIGGER USER"))
        db.session.commit()
        try:
            yield
        finally:
            db.session.rollback()
            db.session.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
            db.session.execute(text("ALTER TABLE audit_head ENABLE TRIGGER USER"))
            db.session.commit()
    else:
        saved = db.session.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('audit_entries', 'audit_head')"
        )).all()
        db.session.commit()
        for name, _sql in saved:
            db.session.execute(text(f'DROP TRIGGER "{name}"'))
        db.session.commit()
        try:
            yield
        finally:
            db.session.rollback()
            _refresh_sqlite_schema()
            for _name, sql in saved:
                db.session.execute(text(sql))
            db.session.commit()


def _refresh_sqlite_schema() -> None:
    """A pooled SQLite connection idle since another one changed the schema still has the old
    schema cached, and a CREATE parsed against it may claim the trigger "already exists".
    Reading sqlite_master first makes the connection notice the change."""
    db.session.execute(text("SELECT count(*) FROM sqlite_master"))


def _rows_by_seq():
    return {e.seq: e for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.seq))}


def test_core_08_record_assigns_gapless_seq_and_links_hashes(app):
    record("a.one", "thing", 1)
    record("a.two", "thing", 2)
    db.session.commit()
    record("a.three", "thing", 3)
    db.session.commit()
    entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert [e.action for e in entries] == ["a.one", "a.two", "a.three"]
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert all(len(e.hash) == 64 for e in entries)
    head = db.session.get(AuditHead, 1)
    assert (head.seq, head.hash) == (3, entries[-1].hash)
    # a rolled-back entry leaves no gap
    record("a.lost", "thing", 4)
    db.session.flush()
    db.session.rollback()
    record("a.four", "thing", 4)
    db.session.commit()
    assert db.session.scalar(select(AuditEntry.seq).where(AuditEntry.action == "a.four")) == 4
    assert verify_stored_chain().ok


def test_core_08_ten_thousand_changes_verify_ok(app):
    _write(10_000)
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 10_000
    assert db.session.scalar(select(func.max(AuditEntry.seq))) == 10_000
    code, output = _verify(app)
    assert code == 0, output
    assert "audit chain OK: 10000 entries" in output
    # and one edited entry deep inside is found, with small batches
    with triggers_lifted(app):
        db.session.execute(text("UPDATE audit_entries SET object_id = '0' WHERE seq = 7777"))
        db.session.commit()
    result = verify_stored_chain(batch=500)
    assert (result.problem.kind, result.problem.seq, result.count) == (EDITED, 7777, 7776)


@pytest.fixture
def chain(app):
    _write(40, per_transaction=15)
    return _rows_by_seq()


def _damage(app):
    code, output = _verify(app)
    assert code != 0
    return output


def test_core_08_edited_entry_pinpointed(app, chain):
    assert _verify(app)[0] == 0
    with triggers_lifted(app):
        db.session.execute(text("UPDATE audit_entries SET action = 'test.innocent' WHERE seq = 17"))
        db.session.commit()
    output = _damage(app)
    assert "seq 17 (edited)" in output


def test_core_08_deleted_entry_pinpointed(app, chain):
    with triggers_lifted(app):
        db.session.execute(text("DELETE FROM audit_entries WHERE seq = 23"))
        db.session.commit()
    assert "seq 23 (deleted)" in _damage(app)


def test_core_08_deleted_last_entry_pinpointed(app, chain):
    with triggers_lifted(app):
        db.session.execute(text("DELETE FROM audit_entries WHERE seq = 40"))
        db.session.commit()
    assert "seq 40 (deleted)" in _damage(app)


def test_core_08_deleted_and_renumbered_entry_pinpointed(app, chain):
    with triggers_lifted(app):
        db.session.execute(text("DELETE FROM audit_entries WHERE seq = 12"))
        _shift(13, -1)
        db.session.execute(text("UPDATE audit_head SET seq = 39"))
        db.session.commit()
    assert "seq 12 (deleted)" in _damage(app)


def _shift(from_seq: int, by: int) -> None:
    """Renumber entries from ``from_seq`` on by ``by`` (in two steps: seq is unique)."""
    db.session.execute(text("UPDATE audit_entries SET seq = seq + 1000000 WHERE seq >= :s"), {"s": from_seq})
    db.session.execute(text("UPDATE audit_entries SET seq = seq - 1000000 + :by WHERE seq >= 1000000"),
                       {"by": by})


def _forge(seq: int, prev_hash: str) -> None:
    db.session.execute(
        text("INSERT INTO audit_entries (seq, at, actor_name, object_type, object_id, action, prev_hash, hash) "
             "VALUES (:seq, :at, 'intruder', 'thing', 'x', 'test.changed', :prev, :hash)"),
        {"seq": seq, "at": datetime(2026, 1, 1, tzinfo=timezone.utc).replace(tzinfo=None)
         if db.engine.dialect.name == "sqlite" else datetime(2026, 1, 1, tzinfo=timezone.utc),
         "prev": prev_hash, "hash": "f" * 64},
    )


def test_core_08_inserted_entry_pinpointed(app, chain):
    with triggers_lifted(app):
        _shift(20, 1)
        _forge(20, chain[19].hash)
        db.session.execute(text("UPDATE audit_head SET seq = 41"))
        db.session.commit()
    assert "seq 20 (inserted)" in _damage(app)


def test_core_08_entry_appended_past_the_head_pinpointed(app, chain):
    with triggers_lifted(app):
        _forge(41, chain[40].hash)
        db.session.commit()
    assert "seq 41 (inserted)" in _damage(app)


def test_core_08_swapped_entries_pinpointed(app, chain):
    a, b = chain[9], chain[30]
    columns = ("at", "actor_id", "actor_name", "unit_id", "object_type", "object_id", "action", "before",
               "after", "remote_addr", "prev_hash", "hash")
    values_a = {c: getattr(a, c) for c in columns}
    values_b = {c: getattr(b, c) for c in columns}
    with triggers_lifted(app):
        db.session.execute(update(AuditEntry).where(AuditEntry.seq == 10).values(**values_b))
        db.session.execute(update(AuditEntry).where(AuditEntry.seq == 31).values(**values_a))
        db.session.commit()
    assert "seq 10 (reordered)" in _damage(app)


def test_core_08_trail_refuses_update_and_delete(app, chain):
    entry = chain[5]
    entry.action = "test.rewritten"
    with pytest.raises(AppendOnlyError):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEntry, chain[6].id))
    with pytest.raises(AppendOnlyError):
        db.session.commit()
    db.session.rollback()
    for statement in ("UPDATE audit_entries SET action = 'x' WHERE seq = 5",
                      "DELETE FROM audit_entries WHERE seq = 5",
                      "DELETE FROM audit_head",
                      "UPDATE audit_head SET seq = 3"):
        with pytest.raises(AppendOnlyError):
            db.session.execute(text(statement))
        db.session.rollback()
    assert _verify(app)[0] == 0


def test_core_08_concurrent_writers_keep_the_chain_gapless(app):
    errors = []

    def writer(name: str) -> None:
        try:
            with app.app_context():
                for i in range(15):
                    record("test.concurrent", "thing", f"{name}-{i}")
                    db.session.commit()
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    seqs = db.session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)).all()
    assert seqs == list(range(1, 46))
    assert verify_stored_chain().ok


def test_core_08_login_logout_failure_and_denial_are_chained(app, client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna", password="wrong-password")
    client.login("anna")
    client.get("/admin/users")  # staff: access denied
    client.post_form("/logout")
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions[-4:] == ["auth.login_failed", "auth.login", "access.denied", "auth.logout"]
    units = db.session.scalars(select(AuditEntry.unit_id).order_by(AuditEntry.seq)).all()
    assert units[-4:] == [tree["north"].id] * 4  # so the unit's auditor sees them
    assert _verify(app)[0] == 0


# ---- the auditor's page ------------------------------------------------------------------


def test_core_08_auditor_page_scoped_filtered_and_paged(app, client, tree):
    auditor = make_user("ida", (tree["region"], "auditor"))
    record("test.north", "thing", 1, unit_id=tree["north"].id, actor=auditor)
    record("test.south", "thing", 2, unit_id=tree["south"].id)
    record("test.club", "thing", 3, unit_id=tree["club"].id)  # outside the region
    db.session.commit()
    for i in range(60):
        record("test.bulk", "thing", i, unit_id=tree["south"].id)
    db.session.commit()
    client.login("ida")
    page = client.get("/audit/").get_data(as_text=True)
    assert "test.bulk" in page and "test.club" not in page
    assert "before=" in page  # a link to older entries

    def rows(query: str) -> str:
        return client.get(f"/audit/?{query}", headers={"HX-Request": "true"}).get_data(as_text=True)

    older = rows("before=10")
    assert "<html" not in older and "test.north" in older and "test.south" in older
    assert "test.bulk" not in rows(f"unit={tree['north'].id}")
    assert "test.north" in rows(f"unit={tree['north'].id}&before=10")
    assert "test.north" in rows("actor=IDA&before=10")
    assert "test.south" not in rows("actor=IDA&before=10")
    assert "test.south" not in rows("action=test.s")  # exact action unless it ends with a dot
    assert "test.south" in rows("action=test.south")
    assert "test.south" in rows("action=test.&before=10")
    assert "test.club" not in rows(f"unit={tree['club'].id}") + rows("action=test.club")
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=2)).date().isoformat()
    assert "test.north" not in rows(f"since={tomorrow}&before=10")
    assert "test.north" in rows(f"until={tomorrow}&before=10")


def test_core_08_verify_button_runs_and_is_audited(app, client, tree):
    make_user("ida", (tree["company"], "auditor"))
    make_user("sam", (tree["company"], "staff"))
    _write(5)
    client.login("sam")
    assert client.get("/audit/").status_code == 403
    assert client.post_form("/audit/verify").status_code == 403
    client.post_form("/logout")
    client.login("ida")
    response = client.post_form("/audit/verify", htmx=True)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "flash-success" in body
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "audit.verified")).one()
    assert entry.after["ok"] is True and entry.actor_name == "ida"
    with triggers_lifted(app):
        db.session.execute(text("UPDATE audit_entries SET action = 'x' WHERE seq = 3"))
        db.session.commit()
    response = client.post_form("/audit/verify", htmx=True)
    assert "flash-error" in response.get_data(as_text=True)
    assert client.post_form("/audit/verify").status_code == 302  # without htmx: flash and back


# ---- the key -----------------------------------------------------------------------------


def test_core_08_audit_key_required_in_production_and_kept_in_development(tmp_path: Path):
    config = {"PORTAL_ENV": "production", "SECRET_KEY": "s", "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    with pytest.raises(ConfigError, match="PORTAL_AUDIT_KEY"):
        finalise(config, tmp_path)
    first = {"SECRET_KEY": "s"}
    finalise(first, tmp_path)
    second = {"SECRET_KEY": "s"}
    finalise(second, tmp_path)
    assert first["PORTAL_AUDIT_KEY"] == second["PORTAL_AUDIT_KEY"] == (tmp_path / "audit_key").read_text()
    given = {"SECRET_KEY": "s", "PORTAL_AUDIT_KEY": "from-env", "PORTAL_ENV": "production"}
    finalise(given, tmp_path)
    assert given["PORTAL_AUDIT_KEY"] == "from-env"


def test_core_08_backfill_chains_entries_written_before_the_chain(app):
    """The migration helper gives old, unchained entries the same hashes the live path gives."""
    from portal.audit.triggers import backfill_chain

    _write(7, per_transaction=3)
    originals = db.session.execute(text("SELECT id, seq, prev_hash, hash FROM audit_entries ORDER BY id")).all()
    for name in ("testplug_audit_copy", "testplug_head_copy"):
        db.session.execute(text(f"DROP TABLE IF EXISTS {name}"))
    db.session.execute(text("CREATE TABLE testplug_audit_copy AS SELECT * FROM audit_entries"))
    db.session.execute(text("UPDATE testplug_audit_copy SET seq = NULL, prev_hash = NULL, hash = NULL"))
    db.session.execute(text("CREATE TABLE testplug_head_copy (id INTEGER PRIMARY KEY, seq BIGINT, hash VARCHAR(64))"))
    try:
        count = backfill_chain(db.session.connection(), app.config["PORTAL_AUDIT_KEY"],
                               table="testplug_audit_copy", head="testplug_head_copy")
        assert count == 7
        copied = db.session.execute(
            text("SELECT id, seq, prev_hash, hash FROM testplug_audit_copy ORDER BY id")).all()
        assert [tuple(r) for r in copied] == [tuple(r) for r in originals]
        head = db.session.execute(text("SELECT seq, hash FROM testplug_head_copy")).one()
        assert tuple(head) == (7, originals[-1].hash)
        assert backfill_chain(db.session.connection(), app.config["PORTAL_AUDIT_KEY"],
                              table="testplug_audit_copy", head="testplug_head_copy") == 0
    finally:
        db.session.rollback()
        for name in ("testplug_audit_copy", "testplug_head_copy"):
            db.session.execute(text(f"DROP TABLE IF EXISTS {name}"))
        db.session.commit()
