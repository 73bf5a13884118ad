"""Issue 24: approving a setting's new value is safe against double taps and two admins at
once — one history row and one audit entry per approval; the repeat is told it is approved."""

from __future__ import annotations

import html
from datetime import date

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.extensions import db
from portal.settings import models as settings
from portal.settings.models import SettingValue
from portal.testing import Tab, concurrently, make_user, race_rounds
from portal.transitions import StaleState

KEY = "testplug.reply_minutes"  # minutes, default 30, 1..1440 (declared by tests/testplug)


def rows(*where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(SettingValue).where(*where))


def changes() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "setting.changed"))


def test_core_10_the_same_value_from_the_same_day_is_approved_once(tree):
    boss = make_user("boss", (tree["company"], "admin"))
    settings.change(tree["company"], KEY, "45", date(2030, 1, 1), boss)
    db.session.commit()
    with pytest.raises(StaleState) as refused:
        settings.change(tree["company"], KEY, "45", date(2030, 1, 1), boss)
    with force_locale("en"):
        assert str(refused.value) == "This value is already approved from 2030-01-01."
    db.session.rollback()
    # another value, then the first again: a real change, recorded
    settings.change(tree["company"], KEY, "50", date(2030, 1, 1), boss)
    settings.change(tree["company"], KEY, "45", date(2030, 1, 1), boss)
    db.session.commit()
    assert rows(SettingValue.key == KEY) == 3


def test_core_10_two_admins_approving_one_value_at_once_record_it_once(app, tree):
    for name in ("boss", "rita"):
        make_user(name, (tree["company"], "admin"), locale="en")
    tabs = [Tab(app, "boss"), Tab(app, "rita")]
    for n in race_rounds():
        day = date(2030, 1, 1 + n % 28).replace(year=2030 + n // 28)
        data = {"value": "45", "effective_from": day.isoformat(), "note": "批文"}
        audits_before = changes()
        results = concurrently(app, *(t.post(f"/admin/settings/{KEY}", data) for t in tabs))
        statuses = sorted(getattr(r, "status_code", 500) for r in results)
        assert statuses == [302, 409], results
        [refused] = [r for r in results if r.status_code == 409]
        assert f"This value is already approved from {day.isoformat()}." in html.unescape(
            refused.get_data(as_text=True))
        assert rows(SettingValue.key == KEY, SettingValue.effective_from == day) == 1
        assert changes() == audits_before + 1
