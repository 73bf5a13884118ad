"""Late replies per person and per station, reply time per level (EXP-R13, EXP-P01).

November 2026, Shanghai time, built with explicit times (T0 = Mon 16 Nov 10:00):

* inquiry 1 at pudong (amy): passed to minhang at T0+2; bob takes it at T0+5 and
  replies at T0+40, **late** (due T0+32); amy reports progress at T0+15 (on time) and
  the result at T0+42 (the repeat clock, due T0+45: on time);
* inquiry 2 at pudong (amy, T0+60): the result at +35, **late** (due +30);
* inquiry 3 at pudong (amy, T0+120): minhang gets it at +2, bob replies at +10:30
  (on time), amy gives the result at +20 (on time).

By hand: amy 4 clocks closed, 1 late (customer), 75.0 % on time; bob 2 closed,
1 late (between levels), 50.0 %; in all 6 closed, 2 late, 4/6 = 66.7 % on time.
L2 reply times: 38 min and 8 min 30 s → average 23.25 → **23.3** minutes (half up).
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from plugins.express import service as svc
from plugins.express import stats as xstats
from plugins.express.tests.conftest import T0, minutes, new_inquiry
from portal.audit import AuditEntry
from portal.extensions import db
from portal.settings import models as settings


def november(net):
    """The three inquiries above, plus noise that must not count."""
    # inquiry 1: bob late on L2, amy on time twice
    one = new_inquiry(net, T0)
    hop = svc.forward(one, net.amy, net.minhang, at=T0 + minutes(2))
    svc.take(hop, net.bob, at=T0 + minutes(5))
    svc.tell_customer(one, net.amy, "progress", "Asked the destination station.", at=T0 + minutes(15))
    svc.reply(hop, net.bob, "not_found", "Not on our shelves.", at=T0 + minutes(40))
    svc.tell_customer(one, net.amy, "result", "Not found yet; a claim is opened.", at=T0 + minutes(42))
    db.session.commit()
    # inquiry 2: amy late to the customer
    t2 = T0 + minutes(60)
    two = new_inquiry(net, t2, waybill="600123456790")
    svc.tell_customer(two, net.amy, "result", "Delivered yesterday.", at=t2 + minutes(35))
    db.session.commit()
    # inquiry 3: everything on time
    t3 = T0 + minutes(120)
    three = new_inquiry(net, t3, waybill="600123456791")
    hop3 = svc.forward(three, net.amy, net.minhang, at=t3 + minutes(2))
    svc.take(hop3, net.bob, at=t3 + minutes(3))
    svc.reply(hop3, net.bob, "found", "On the courier's van.", at=t3 + minutes(10) + timedelta(seconds=30))
    svc.tell_customer(three, net.amy, "result", "Arrives this afternoon.", at=t3 + minutes(20))
    db.session.commit()
    # noise: October (another month) and tianhe (outside east), both late
    october = datetime(2026, 10, 20, 2, 0, tzinfo=timezone.utc)
    old = new_inquiry(net, october, waybill="600123456792")
    svc.tell_customer(old, net.amy, "result", "Late in October.", at=october + minutes(50))
    south = svc.take_inquiry(net.tianhe, net.tia, waybill="600123456793", inquirer_name="Ms Li",
                             inquirer_phone="13912345678", at=T0)
    svc.tell_customer(south, net.tia, "result", "Late in the south.", at=T0 + minutes(45))
    # an open clock is not counted either
    new_inquiry(net, T0 + minutes(300), waybill="600123456794")
    db.session.commit()


def cells(page: str, table_id: str, **attrs) -> list[str]:
    """The text of the cells of the first row of ``table_id`` carrying ``data-*`` ``attrs``."""
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page, re.S).group(0)
    for row in re.findall(r"<tr([^>]*)>(.*?)</tr>", table, re.S):
        if all(f'data-{k}="{v}"' in row[0] for k, v in attrs.items()):
            return [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                    for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row[1], re.S)]
    return []


def csv_rows(response) -> list[dict]:
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


# --- exact arithmetic -------------------------------------------------------------------------


def test_exp_r13_percentages_are_exact_and_round_half_up():
    assert xstats.percent(4, 6) == "66.7"
    assert xstats.percent(1, 8) == "12.5"
    assert xstats.percent(1, 16) == "6.3"  # 6.25 → 6.3 (half up, not to even)
    assert xstats.percent(0, 3) == "0.0"
    assert xstats.percent(3, 3) == "100.0"
    assert xstats.percent(0, 0) == ""
    assert xstats.average_minutes(2 * 60_000_000 + 15_000_000, 1) == "2.3"  # 2.25 min
    assert xstats.average_minutes(0, 0) == ""


# --- the month's figures ------------------------------------------------------------------------


def test_exp_r13_late_replies_per_person_and_station_match_the_hand_count(net, client):
    november(net)
    client.login("east_mgr")
    page = client.get("/express/stats?month=2026-11")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    # per person: month, unit, person, closed, late, late R09, late R10-R12, on time
    assert cells(text, "stats-people", unit="pudong", user="amy")[3:] == ["4", "1", "1", "0", "75.0 %"]
    assert cells(text, "stats-people", unit="minhang", user="bob")[3:] == ["2", "1", "0", "1", "50.0 %"]
    # per station
    assert cells(text, "stats-units", unit="pudong")[2:] == ["4", "1", "1", "0", "75.0 %"]
    assert cells(text, "stats-units", unit="minhang")[2:] == ["2", "1", "0", "1", "50.0 %"]
    assert re.search(r'id="total-closed">6<', text) and re.search(r'id="total-late">2<', text)
    assert 'id="total-on-time">66.7 %<' in text
    # reply time of L2: (38 min + 8.5 min) / 2 = 23.25 → 23.3
    assert cells(text, "stats-levels", level="2")[2:] == ["2", "23.3"]
    # October and tianhe are not counted; nor is the open clock
    assert "tianhe" not in text.lower() and "Tia" not in text
    assert cells(text, "stats-people", unit="tianhe") == []


def test_exp_p01_csv_export_matches_the_page_and_is_audited(net, client):
    november(net)
    client.login("east_mgr")
    response = client.get("/express/stats?month=2026-11&format=csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = csv_rows(response)
    people = {(r["unit_code"], r["username"]): r for r in rows if r["section"] == "person"}
    assert set(people) == {("pudong", "amy"), ("minhang", "bob")}
    amy, bob = people["pudong", "amy"], people["minhang", "bob"]
    assert (amy["month"], amy["closed"], amy["late"], amy["late_customer_r09"], amy["on_time_pct"]) == \
        ("2026-11", "4", "1", "1", "75.0")
    assert (bob["closed"], bob["late"], bob["late_ladder_r10_r12"], bob["on_time_pct"]) == ("2", "1", "1", "50.0")
    units = {r["unit_code"]: r for r in rows if r["section"] == "unit"}
    assert set(units) == {"pudong", "minhang"}
    levels = [r for r in rows if r["section"] == "level"]
    assert [(r["level"], r["replies"], r["avg_reply_minutes"]) for r in levels] == [("2", "2", "23.3")]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "express.stats_exported"))
    assert entry is not None and entry.after["format"] == "csv" and entry.after["from"] == "2026-11"


def test_exp_p01_xlsx_export_has_the_same_figures_as_numbers(net, client):
    from openpyxl import load_workbook

    november(net)
    client.login("east_mgr")
    response = client.get("/express/stats?month=2026-11&format=xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.get_data()), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    assert header == xstats.HEADER
    by = [dict(zip(header, r)) for r in rows[1:]]
    amy = next(r for r in by if r["section"] == "person" and r["username"] == "amy")
    assert amy["closed"] == 4 and amy["late"] == 1 and float(amy["on_time_pct"]) == 75.0
    level = next(r for r in by if r["section"] == "level")
    assert float(level["avg_reply_minutes"]) == 23.3


def test_exp_p01_export_cells_are_formula_safe(net, client):
    november(net)
    net.amy.display_name = "=HYPERLINK(\"http://evil\")"
    db.session.commit()
    client.login("east_mgr")
    rows = csv_rows(client.get("/express/stats?month=2026-11&format=csv"))
    amy = next(r for r in rows if r["username"] == "amy")
    assert amy["person"].startswith("'=")


def test_exp_r13_a_clock_counts_in_the_local_month_of_its_due_time(net, client):
    # taken 31 Oct 23:45 Shanghai, due 1 Nov 00:15, answered 00:20: a November breach
    at = datetime(2026, 10, 31, 15, 45, tzinfo=timezone.utc)
    inquiry = new_inquiry(net, at)
    hop = svc.forward(inquiry, net.amy, net.minhang, at=at + minutes(1))  # sent 23:46 local, October
    svc.reply(hop, net.bob, "found", "Here.", at=at + minutes(6))
    svc.tell_customer(inquiry, net.amy, "result", "Found.", at=at + minutes(35))
    db.session.commit()
    client.login("east_mgr")
    october = client.get("/express/stats?month=2026-10").get_data(as_text=True)
    nov = client.get("/express/stats?month=2026-11").get_data(as_text=True)
    assert cells(nov, "stats-people", unit="pudong", user="amy")[3:5] == ["1", "1"]
    assert cells(october, "stats-people", unit="pudong", user="amy") == []
    # the hop's clock (due 00:16 local, met 23:51) is November's; its reply time October's
    assert cells(nov, "stats-people", unit="minhang", user="bob")[3:5] == ["1", "0"]
    assert cells(october, "stats-levels", level="2")[2:] == ["1", "5.0"]
    assert cells(nov, "stats-levels", level="2") == []
    # a range shows both months
    both = client.get("/express/stats?from=2026-10&to=2026-11").get_data(as_text=True)
    assert cells(both, "stats-levels", level="2")[:1] == ["2026-10"]


def test_exp_r13_unit_outside_scope_is_not_counted_but_counts_for_the_company(net, client):
    november(net)
    client.login("ada")  # auditor at acme: the whole network
    text = client.get("/express/stats?month=2026-11").get_data(as_text=True)
    assert cells(text, "stats-people", unit="tianhe", user="tia")[3:5] == ["1", "1"]
    assert 'id="total-closed">7<' in text
    client.post_form("/logout")
    client.login("sue")  # supervisor at the center: nothing of the stations
    text = client.get("/express/stats?month=2026-11").get_data(as_text=True)
    assert cells(text, "stats-people", unit="pudong", user="amy") == []


def test_exp_r13_default_month_is_the_current_local_month(net, client):
    client.login("east_mgr")
    response = client.get("/express/stats")
    assert response.status_code == 200
    from portal.db_types import utcnow
    from portal.sla.stats import month_of

    this_month = month_of(settings.local_date(net.east, utcnow()))
    assert f'value="{this_month}"' in response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["from=2025-01&to=2026-01", "month=2026-13", "from=2026-11&to=2026-10"])
def test_exp_r13_bad_month_range_is_refused(net, client, query):
    client.login("east_mgr")
    page = client.get(f"/express/stats?{query}")
    assert page.status_code == 400
    assert "at most 12 months" in page.get_data(as_text=True)
    assert client.get(f"/express/stats?{query}&format=csv").status_code == 400
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "express.stats_exported")) is None


def test_exp_r13_twelve_months_are_allowed_and_unknown_format_refused(net, client):
    client.login("east_mgr")
    assert client.get("/express/stats?from=2026-01&to=2026-12").status_code == 200
    assert client.get("/express/stats?month=2026-11&format=pdf").status_code == 400


def test_exp_r13_statistics_need_the_permission(net, client):
    client.login("amy")  # station staff
    assert client.get("/express/stats").status_code == 403
    assert client.get("/express/stats?format=csv").status_code == 403
    assert "/express/stats" not in client.get("/express/").get_data(as_text=True)
