"""EXP-R02: a tracking status is stored once, even when two imports race (unique constraint)."""

from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from plugins.express import tracking
from plugins.express.models import TrackingEvent
from plugins.express.rules import DEFAULT_WAYBILL_PATTERN
from plugins.express.tests.conftest import T0
from portal.extensions import db

CSV = "waybill,time,status,place,signer\n600123456789,2026-11-15 09:00,arrived,Minhang,\n".encode()


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(TrackingEvent))


def test_exp_r02_tracking_import_racing_another_is_refused_without_duplicates(net, monkeypatch):
    zone = ZoneInfo("Asia/Shanghai")
    first = tracking.import_csv(CSV, "a.csv", net.pudong, net.amy, pattern=DEFAULT_WAYBILL_PATTERN,
                                zone=zone, now=T0)
    db.session.commit()
    assert first.imported == 1 and _count() == 1
    # the second import looked before the first committed: it does not see the row
    monkeypatch.setattr(tracking, "_recorded", lambda waybills: set())
    second = tracking.import_csv(CSV, "a.csv", net.pudong, net.amy, pattern=DEFAULT_WAYBILL_PATTERN,
                                 zone=zone, now=T0)
    db.session.commit()
    assert second.imported == 0 and [line for line, _message in second.errors] == [0]
    assert _count() == 1
