"""Benchmark: the deadline sweep over N open deadlines with 1 % due (not a test).

    .venv/bin/python bench/sla_sweep.py                       # SQLite file in a temp folder, N = 1,000,000
    .venv/bin/python bench/sla_sweep.py --n 100000
    .venv/bin/python bench/sla_sweep.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_sla --reset

The database must be empty (or pass ``--reset``: every table in it is dropped and created
again — give it a database of its own).  Rows are bulk-inserted (``executemany`` on SQLite,
``COPY`` on PostgreSQL), then ANALYZEd.  Printed, all in the same run and on the same table:

* ``baseline``: the indexed ``SELECT count(*) … WHERE status = 'open' AND due_at < now``
  (the least any sweep must do to find its work);
* ``naive scan``: reading every open deadline's (id, due_at) into Python and filtering there
  (what "overdue is a query, never a scan in Python" avoids);
* ``sweep``: ``portal.sla.sweep.sweep(now)`` — claim, audit entry, notifications and penalty
  event for every due deadline, in batches — and its ratio to the baseline;
* ``idle sweep``: the sweep run again at once (nothing left to do): the cost of each
  minute's run when nothing is due.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, inspect, select, text  # noqa: E402

from portal import create_app  # noqa: E402
from portal.auth.models import Membership, User  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.sla.models import OPEN, Deadline  # noqa: E402
from portal.units.models import Unit  # noqa: E402

COLUMNS = ("policy_id", "unit_id", "object_type", "object_id", "owner_id", "calendar",
           "duration_minutes", "started_at", "due_at", "warn_at", "status", "paused_seconds",
           "created_at")
CHUNK = 50_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--n", type=int, default=1_000_000, help="open deadlines (default 1,000,000)")
    parser.add_argument("--due-percent", type=float, default=1.0, help="share already due (default 1)")
    parser.add_argument("--batch-size", type=int, default=500, help="sweep batch size (default 500)")
    parser.add_argument("--users", type=int, default=2_000, help="owners to spread deadlines over")
    parser.add_argument("--units", type=int, default=50, help="stations to spread deadlines over")
    parser.add_argument("--reset", action="store_true", help="drop and recreate every table first")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='bench-sla-')}/bench.sqlite3"
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "PORTAL_AUDIT_KEY": "bench-audit-key",
        "PORTAL_PLUGINS": [],
    })
    rng = random.Random(args.seed)
    with app.app_context():
        dialect = db.engine.dialect.name
        print(f"database: {dialect} {db.engine.url.render_as_string(hide_password=True)}")
        _schema(args.reset)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        units, users = _people(args.units, args.users)
        due_n = round(args.n * args.due_percent / 100)

        t = time.perf_counter()
        _insert(dialect, _rows(args.n, due_n, now, units, users, rng))
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        print(f"inserted {args.n:,} open deadlines ({due_n:,} due) in {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        counted = db.session.scalar(select(func.count()).select_from(Deadline).where(
            Deadline.status == OPEN, Deadline.due_at < now))
        baseline = time.perf_counter() - t
        db.session.rollback()
        print(f"baseline   indexed count of due deadlines: {counted:,} in {baseline * 1000:.1f} ms")

        t = time.perf_counter()
        scanned = sum(1 for _id, due_at in db.session.execute(
            select(Deadline.id, Deadline.due_at).where(Deadline.status == OPEN)) if due_at < now)
        naive = time.perf_counter() - t
        db.session.rollback()
        print(f"naive scan in Python of all open deadlines: {scanned:,} due in {naive:.2f} s")

        from portal.sla.sweep import sweep

        t = time.perf_counter()
        result = sweep(now=now, batch_size=args.batch_size)
        swept = time.perf_counter() - t
        print(f"sweep      breached {result.breached:,} (failed {len(result.failed)}) in {swept:.2f} s "
              f"= {result.breached / swept:,.0f} breaches/s")
        db.session.remove()

        t = time.perf_counter()
        idle = sweep(now=now, batch_size=args.batch_size)
        idle_s = time.perf_counter() - t
        print(f"idle sweep (nothing due) in {idle_s * 1000:.1f} ms, breached {idle.breached}")

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"ratio      sweep / indexed count baseline = {swept / baseline:,.0f}x; "
              f"naive scan / indexed count = {naive / baseline:,.0f}x; "
              f"idle sweep / baseline = {idle_s / baseline:,.1f}x")
        print(f"peak RSS   {peak_mb:,.0f} MB")
        assert result.breached == due_n == counted == scanned, "every due deadline is breached once"


def _schema(reset: bool) -> None:
    existing = inspect(db.engine).get_table_names()
    if existing and not reset:
        sys.exit(f"the database has tables ({', '.join(existing[:5])}…): use an empty one or --reset")
    db.session.remove()
    if existing:
        db.drop_all()
    db.create_all()


def _people(n_units: int, n_users: int) -> tuple[list[int], list[int]]:
    company = Unit(code="bench", name_zh="基准公司", name_en="Bench", kind="company")
    db.session.add(company)
    db.session.flush()
    stations = [Unit(code=f"st{i}", name_zh=f"站点{i}", name_en=f"Station {i}", kind="station",
                     parent_id=company.id) for i in range(n_units)]
    db.session.add_all(stations)
    db.session.flush()
    users = [User(username=f"u{i}", display_name=f"User {i}", password_hash="!") for i in range(n_users)]
    db.session.add_all(users)
    db.session.flush()
    db.session.add_all(Membership(user_id=u.id, unit_id=stations[i % n_units].id,
                                  role="supervisor" if i < n_units else "staff")
                       for i, u in enumerate(users))
    db.session.commit()
    return [s.id for s in stations], [u.id for u in users]


def _rows(n, due_n, now, units, users, rng):
    due_ids = set(rng.sample(range(n), due_n))
    for i in range(n):
        if i in due_ids:
            due = now - timedelta(seconds=rng.randint(1, 3 * 3600))
        else:
            due = now + timedelta(seconds=rng.randint(3600, 30 * 86400))
        start = due - timedelta(minutes=30)
        yield ("bench.reply", units[i % len(units)], "ticket", str(i), users[rng.randrange(len(users))],
               "wall", 30, start, due, due - timedelta(minutes=6), OPEN, 0, start)


def _insert(dialect: str, rows) -> None:
    if dialect == "postgresql":
        connection = db.session.connection().connection.driver_connection
        with connection.cursor() as cursor, cursor.copy(
                f"COPY sla_deadlines ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        db.session.commit()
        return
    table = Deadline.__table__
    raw = db.session.connection().connection.driver_connection
    sql = f"INSERT INTO {table.name} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    chunk = []
    for row in rows:
        chunk.append(tuple(_sqlite_value(v) for v in row))
        if len(chunk) == CHUNK:
            raw.executemany(sql, chunk)
            chunk.clear()
    if chunk:
        raw.executemany(sql, chunk)
    db.session.commit()


def _sqlite_value(value):
    # what portal.db_types.UTCDateTime stores on SQLite: naive UTC, ISO text
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


if __name__ == "__main__":
    main()
