"""Benchmark: the monthly payroll export over N final penalties (not a test).

    .venv/bin/python bench/payroll_export.py                  # SQLite file in a temp folder, N = 1,000,000
    .venv/bin/python bench/payroll_export.py --n 100000
    .venv/bin/python bench/payroll_export.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_payroll --reset

The rows are bulk-inserted by a child process (``--insert-only``), so that the peak
memory printed for the export is the export's own.  Printed, in the same run:

* ``baseline``: the indexed ``SELECT count(*), sum(payroll_amount) … WHERE payroll_month = …``
  (the least a statement must read);
* ``csv``: ``portal.penalties.payroll.export(month, None, "csv")`` written to a file, and the
  same again (the two files' SHA-256 must match: byte-identical re-export);
* ``xlsx``: the same as XLSX (openpyxl write-only, into a spooled temporary file, then copied);
* the process's peak RSS (``ru_maxrss``) after each step.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, inspect, select, text  # noqa: E402

from portal import create_app  # noqa: E402
from portal.auth.models import User  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.penalties import payroll as P  # noqa: E402
from portal.penalties.models import PenaltyNotice  # noqa: E402
from portal.units.models import Unit  # noqa: E402

MONTH = "2026-11"
COLUMNS = ("unit_id", "user_id", "rule_id", "amount", "evidence", "occurred_at", "source", "status",
           "published_at", "published_by_id", "appeal_deadline", "deduction_mode", "final_at",
           "final_amount", "payroll_month", "payroll_amount", "created_at", "sealed_at")
CHUNK = 50_000


def _app(url: str):
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench",
                       "PORTAL_AUDIT_KEY": "bench-audit-key", "PORTAL_PLUGINS": []})


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def insert(url: str, n: int, units_n: int, users_n: int, reset: bool, seed: int) -> None:
    app = _app(url)
    rng = random.Random(seed)
    with app.app_context():
        if reset:
            db.drop_all()
        elif inspect(db.engine).get_table_names():
            sys.exit("the database is not empty: pass --reset (every table is dropped)")
        db.create_all()
        company = Unit(code="bench", name_zh="基准公司", name_en="Bench", kind="company")
        db.session.add(company)
        db.session.flush()
        units = [Unit(code=f"st{i:03d}", name_zh=f"站点{i}", name_en=f"Station {i}", kind="station",
                      parent_id=company.id) for i in range(units_n)]
        db.session.add_all(units)
        users = [User(username=f"u{i:05d}", display_name=f"员工{i}", password_hash="x")
                 for i in range(users_n)]
        auditor = User(username="auditor", display_name="监察", password_hash="x")
        db.session.add_all([*users, auditor])
        db.session.commit()
        unit_ids, user_ids = [u.id for u in units], [u.id for u in users]
        start = datetime(2026, 10, 25, tzinfo=timezone.utc)
        t = time.perf_counter()
        rows = []
        for i in range(n):
            published = start + timedelta(seconds=rng.randrange(30 * 86400))
            final = published + timedelta(days=2)
            amount = Decimal(rng.choice((50, 100, 200, 500)))
            rows.append((rng.choice(unit_ids), rng.choice(user_ids), "BEN-P01", amount,
                         f"ticket {i}", published - timedelta(hours=3), "assessment", "final",
                         published, auditor.id, final, "final", final, amount, MONTH, amount,
                         published, published))
            if len(rows) >= CHUNK:
                _flush(rows)
                rows = []
        _flush(rows)
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        print(f"inserted {n:,} final penalties in {time.perf_counter() - t:.1f} s")


def _flush(rows) -> None:
    if rows:
        db.session.execute(PenaltyNotice.__table__.insert(), [dict(zip(COLUMNS, r)) for r in rows])
        db.session.commit()


def _timed_export(fmt: str, path: Path) -> tuple[float, str, int]:
    t = time.perf_counter()
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as handle:
        for chunk in P.export(MONTH, None, fmt):
            handle.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    return time.perf_counter() - t, digest.hexdigest(), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--n", type=int, default=1_000_000, help="final penalties (default 1,000,000)")
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--reset", action="store_true", help="drop and recreate every table first")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--insert-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-xlsx", action="store_true", help="only the CSV export")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='bench-payroll-')}/bench.sqlite3"
    if args.insert_only:
        insert(url, args.n, args.units, args.users, args.reset, args.seed)
        return
    child = [sys.executable, __file__, "--insert-only", "--database-url", url, "--n", str(args.n),
             "--units", str(args.units), "--users", str(args.users), "--seed", str(args.seed)]
    subprocess.run(child + (["--reset"] if args.reset else []), check=True)

    app = _app(url)
    out = Path(tempfile.mkdtemp(prefix="bench-payroll-out-"))
    with app.app_context():
        print(f"database: {db.engine.dialect.name}; peak RSS before exporting {_rss_mb():.0f} MB")
        t = time.perf_counter()
        count, total = db.session.execute(
            select(func.count(), func.sum(PenaltyNotice.payroll_amount))
            .where(PenaltyNotice.payroll_month == MONTH)).one()
        baseline = time.perf_counter() - t
        print(f"baseline: count/sum of {count:,} lines ({total}) in {baseline:.2f} s")
        seconds, first, size = _timed_export("csv", out / "a.csv")
        print(f"csv: {size / 1e6:.0f} MB in {seconds:.1f} s ({count / seconds:,.0f} lines/s, "
              f"{seconds / baseline:.0f} × baseline); peak RSS {_rss_mb():.0f} MB")
        seconds, second, _ = _timed_export("csv", out / "b.csv")
        print(f"csv again: {seconds:.1f} s; byte-identical: {first == second}")
        if not args.skip_xlsx:
            seconds, first, size = _timed_export("xlsx", out / "a.xlsx")
            print(f"xlsx: {size / 1e6:.0f} MB in {seconds:.1f} s ({count / seconds:,.0f} lines/s); "
                  f"peak RSS {_rss_mb():.0f} MB")
    for path in out.iterdir():
        path.unlink()
    out.rmdir()


if __name__ == "__main__":
    main()
