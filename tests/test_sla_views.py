"""Deadline pages: overdue now (scoped, supervisors), breach statistics + CSV, working calendar."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from portal.audit import AuditEntry
from portal.db_types import utcnow
from portal.extensions import db
from portal.sla import service
from portal.sla.models import CalendarDay
from portal.sla.stats import safe_cell
from portal.sla.sweep import sweep
from portal.testing import make_user
from tests.sla_support import person

SH = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def audits(action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action))


# --- overdue now -------------------------------------------------------------------------------


def test_overdue_page_lists_the_subtree_only_and_needs_a_supervisor(client, tree):
    make_user("sup.east", (tree["region"], "supervisor"))
    make_user("staff.north", (tree["north"], "staff"))
    owner = person("owner.north", (tree["north"], "staff"), display_name="Li Lei")
    club_owner = person("owner.club", (tree["club"], "staff"), display_name="Han Meimei")
    long_ago = utcnow() - timedelta(hours=3)
    service.start("testplug.reply", tree["north"], ("ticket", "N-1"), owner, at=long_ago)
    service.start("testplug.reply", tree["north"], ("ticket", "N-2"), owner, at=utcnow())  # not due yet
    service.start("testplug.reply", tree["club"], ("ticket", "C-1"), club_owner, at=long_ago)
    db.session.commit()

    client.login("sup.east")
    page = client.get("/sla/").get_data(as_text=True)
    assert "#N-1" in page and "Li Lei" in page
    assert "#N-2" not in page.split("Due soon")[0]  # not overdue
    assert "#C-1" not in page and "Han Meimei" not in page  # the club is outside east
    # still listed after the sweep marked it breached, until it is met
    sweep()
    assert "#N-1" in client.get("/sla/").get_data(as_text=True)
    panel = client.get("/sla/panel", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in panel and "Li Lei" in panel

    client.post_form("/logout")
    client.login("staff.north")
    assert client.get("/sla/").status_code == 403
    assert client.get("/sla/stats").status_code == 403


def test_overdue_htmx_filter_returns_the_rows_only(client, tree):
    make_user("sup.north", (tree["north"], "supervisor"))
    service.start("testplug.reply", tree["north"], ("ticket", "A"), None, at=utcnow() - timedelta(hours=2))
    db.session.commit()
    client.login("sup.north")
    response = client.get("/sla/?policy=testplug.work", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body and "#A" not in body
    assert "#A" in client.get("/sla/?policy=testplug.reply", headers={"HX-Request": "true"}).get_data(as_text=True)


# --- statistics --------------------------------------------------------------------------------


def _closed(unit, owner, due_local: datetime, breached: bool, policy="testplug.reply"):
    """A deadline due at ``due_local`` (30 min wall), then met on time or swept as breached."""
    d = service.start(policy, unit, ("ticket", f"{due_local:%m%d%H%M}-{owner.id}-{breached}"), owner,
                      at=due_local - timedelta(minutes=30))
    if breached:
        db.session.commit()
        sweep(now=d.due_at + timedelta(seconds=1))
    else:
        service.meet(d, by=owner, at=d.due_at - timedelta(minutes=1))
        db.session.commit()


def _stats_setup(tree):
    make_user("boss", (tree["company"], "manager"))
    north, south = tree["north"], tree["south"]
    a = person("agent.a", (north, "staff"), display_name="=HYPERLINK(\"http://x\")")
    b = person("agent.b", (south, "staff"), display_name="Bob")
    # 2026-11-01 01:00 in Shanghai is still 2026-10-31 in UTC: it counts in November
    _closed(north, a, local(2026, 11, 1, 1, 0), breached=True)
    _closed(north, a, local(2026, 11, 5, 10, 0), breached=False)
    _closed(north, a, local(2026, 10, 31, 23, 0), breached=True)
    _closed(south, b, local(2026, 11, 20, 10, 0), breached=True)
    _closed(tree["club"], b, local(2026, 11, 20, 10, 0), breached=True)
    return a, b


def test_breach_stats_per_person_unit_and_local_month(client, tree):
    a, b = _stats_setup(tree)
    make_user("eastman", (tree["region"], "manager"))
    client.login("eastman")  # sees east (north + south), not the club
    response = client.get("/sla/stats?from=2026-10&to=2026-11&group=person",
                          headers={"HX-Request": "true"})
    assert response.status_code == 200
    rows = _table_rows(response.get_data(as_text=True))
    assert rows == [
        ["2026-10", "north（中文）", "=HYPERLINK(&#34;http://x&#34;)", "1", "1", "100.0 %"],
        ["2026-11", "north（中文）", "=HYPERLINK(&#34;http://x&#34;)", "2", "1", "50.0 %"],
        ["2026-11", "south（中文）", "Bob", "1", "1", "100.0 %"],
    ]
    by_unit = _table_rows(client.get("/sla/stats?from=2026-11&to=2026-11&group=unit",
                                     headers={"HX-Request": "true"}).get_data(as_text=True))
    assert by_unit == [["2026-11", "north（中文）", "2", "1", "50.0 %"], ["2026-11", "south（中文）", "1", "1", "100.0 %"]]


def test_breach_stats_csv_is_formula_safe_and_audited(client, tree):
    _stats_setup(tree)
    client.login("boss")
    response = client.get("/sla/stats.csv?from=2026-11&to=2026-11&group=person")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["month", "unit_code", "unit", "username", "person", "closed", "breached", "breach_rate"]
    north = [r for r in rows[1:] if r[1] == "north"]
    assert north == [["2026-11", "north", "north（中文）", "agent.a", "'=HYPERLINK(\"http://x\")", "2", "1", "0.5000"]]
    assert {r[1] for r in rows[1:]} == {"north", "south", "club"}
    assert audits("sla.stats.exported") == 1
    assert client.get("/sla/stats.csv?from=2026-13&to=2026-11").status_code == 400


def test_safe_cell_escapes_every_formula_start():
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(text) == "'" + text
    assert safe_cell("a=1") == "a=1" and safe_cell(5) == 5 and safe_cell("") == ""


def test_bad_month_range_is_explained(client, tree):
    make_user("boss", (tree["company"], "manager"))
    client.login("boss")
    response = client.get("/sla/stats?from=2026-12&to=2026-01")
    assert response.status_code == 400
    assert client.get("/sla/stats?from=nonsense&to=2026-01&group=unit").status_code == 400
    assert client.get("/sla/stats?from=2026-01&to=2026-01").status_code == 200


def _table_rows(html: str) -> list[list[str]]:
    import re

    body = html.split("<tbody>")[1].split("</tbody>")[0]
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        rows.append(cells)
    return rows


# --- working calendar --------------------------------------------------------------------------


def test_calendar_page_adds_and_removes_a_unit_day(client, tree):
    make_user("root", (tree["company"], "admin"))
    make_user("mgr", (tree["company"], "manager"))
    client.login("mgr")
    assert client.get("/sla/calendar").status_code == 403
    client.post_form("/logout")
    client.login("root")
    page = client.get("/sla/calendar").get_data(as_text=True)
    assert "Mon-Fri 09:00-12:00,13:00-18:00" in page
    response = client.post_form("/sla/calendar", {"day": "2026-11-25", "kind": "holiday", "note": "company day"})
    assert response.status_code == 302
    row = db.session.scalar(select(CalendarDay))
    assert (row.unit_id, row.day, row.kind) == (tree["company"].id, date(2026, 11, 25), "holiday")
    assert audits("sla.calendar_day.added") == 1
    # the day applies to deadlines started afterwards in units below
    d = service.start("testplug.work", tree["north"], ("job", 1), None, at=local(2026, 11, 24, 17, 0))
    assert d.due_at == local(2026, 11, 26, 10, 0).astimezone(timezone.utc)
    db.session.rollback()
    again = client.post_form("/sla/calendar", {"day": "2026-11-25", "kind": "workday"})
    assert again.status_code == 400
    assert client.post_form("/sla/calendar", {"day": "", "kind": "holiday"}).status_code == 400
    assert client.post_form(f"/sla/calendar/{row.id}/delete").status_code == 302
    assert db.session.scalar(select(func.count()).select_from(CalendarDay)) == 0
    assert audits("sla.calendar_day.removed") == 1


def test_dashboard_shows_the_overdue_panel_to_supervisors(client, tree):
    """The core's portal_dashboard_panels adds the overdue panel where core.sla.view is held."""
    make_user("sup.north", (tree["north"], "supervisor"))
    make_user("staff.north", (tree["north"], "staff"))
    client.login("sup.north")
    assert "/sla/panel" in client.get("/").get_data(as_text=True)
    client.post_form("/logout")
    client.login("staff.north")
    assert "/sla/panel" not in client.get("/").get_data(as_text=True)


def test_nav_links_follow_the_sla_permissions(client, tree):
    """The core's portal_nav_items: overdue for supervisors, statistics for managers."""
    make_user("sup.north", (tree["north"], "supervisor"))
    make_user("mgr.north", (tree["north"], "manager"))
    client.login("sup.north")
    page = client.get("/").get_data(as_text=True)
    assert 'href="/sla/"' in page and 'href="/sla/stats"' not in page
    client.post_form("/logout")
    client.login("mgr.north")
    page = client.get("/").get_data(as_text=True)
    assert 'href="/sla/"' in page and 'href="/sla/stats"' in page and 'href="/sla/calendar"' not in page


def test_my_deadlines_page_lists_only_mine(client, tree):
    me = make_user("me", (tree["north"], "staff"))
    other = person("someone", (tree["north"], "staff"))
    service.start("testplug.reply", tree["north"], ("ticket", "MINE"), me, at=utcnow())
    service.start("testplug.reply", tree["north"], ("ticket", "LATE"), me, at=utcnow() - timedelta(hours=1))
    done = service.start("testplug.reply", tree["north"], ("ticket", "DONE"), me, at=utcnow())
    service.meet(done, by=me)
    service.start("testplug.reply", tree["north"], ("ticket", "THEIRS"), other, at=utcnow())
    db.session.commit()
    sweep()
    client.login("me")
    page = client.get("/sla/mine").get_data(as_text=True)
    assert "#MINE" in page and "#LATE" in page
    assert "#DONE" not in page and "#THEIRS" not in page
