"""Benchmark: the express inquiry inbox (/express/) with many open inquiries (not a test).

    .venv/bin/python bench/express_inbox.py                 # SQLite file in a temp folder
    .venv/bin/python bench/express_inbox.py --n 5000
    .venv/bin/python bench/express_inbox.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_express

Seeds a region with 6 stations and a center, then N open inquiries, each forwarded to a
destination station (so every inquiry has a running customer clock and a waiting request).
Printed, in the same run, for a station agent and for the region's manager:

* ``baseline``: GET /account/password — a page with the same layout, session and unit
  lookups but no inquiry data;
* ``inbox``: GET /express/ (both lists, at most 200 rows each) and its SQL statement count;
* ``ratio``: inbox time / baseline time (median of the runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from plugins.express import service as svc  # noqa: E402
from portal.db_types import utcnow  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.testing import PASSWORD, PortalClient, make_app, make_unit, make_user  # noqa: E402


def seed(n: int) -> None:
    company = make_unit("acme", kind="company", plugins={"express": True})
    region = make_unit("east", company, kind="region")
    stations = [make_unit(f"st{i}", region) for i in range(6)]
    make_unit("center", region, kind="center")
    agent = make_user("agent", (stations[0], "staff"))
    make_user("boss", (region, "manager"))
    start = utcnow() - timedelta(minutes=5)
    for i in range(n):
        inquiry = svc.take_inquiry(stations[0], agent, waybill=f"6{i:011d}", inquirer_name="Bench",
                                   inquirer_phone="13812345678", at=start)
        svc.forward(inquiry, agent, stations[1 + i % 5], at=start)
        if i % 500 == 499:
            db.session.commit()
    db.session.commit()


def timed(client: PortalClient, path: str, runs: int) -> tuple[float, int]:
    statements = []

    def count(*_args):
        statements.append(1)

    client.get(path)  # warm-up
    times = []
    for _ in range(runs):
        statements.clear()
        event.listen(db.engine, "before_cursor_execute", count)
        began = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - began)
        event.remove(db.engine, "before_cursor_execute", count)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times), len(statements)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-express-")
    url = args.database_url or f"sqlite:///{folder}/bench.sqlite3"
    app = make_app(url, TESTING=False, PORTAL_EXTRA_PLUGINS={})
    app.test_client_class = PortalClient
    with app.app_context():
        db.drop_all()
        db.create_all()
        began = time.perf_counter()
        seed(args.n)
        print(f"seeded {args.n} open inquiries in {time.perf_counter() - began:.1f} s ({url.split(':')[0]})")
        for user in ("agent", "boss"):
            client = app.test_client()
            client.login(user, PASSWORD)
            base, base_sql = timed(client, "/account/password", args.runs)
            inbox, inbox_sql = timed(client, "/express/", args.runs)
            print(f"{user:<6} baseline {base * 1000:7.1f} ms ({base_sql} SQL)   inbox {inbox * 1000:7.1f} ms "
                  f"({inbox_sql} SQL)   ratio {inbox / base:5.1f}")
        db.session.remove()
        db.drop_all()


if __name__ == "__main__":
    main()
