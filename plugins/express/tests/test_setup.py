"""Setup of the express network: levels and stranded-parcel contacts (EXP-R18), agent-delivery
partners (EXP-R16), re-labels (EXP-R17), and the tracking adapters and imports (EXP-R02)."""

from __future__ import annotations

import html
import io
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from plugins.express import service as svc
from plugins.express import tracking as trk
from plugins.express.models import Partner, Relabel, TrackingEvent, UnitLevel
from plugins.express.tests.conftest import T0, new_inquiry
from portal.audit import AuditEntry
from portal.extensions import db


def field_error(page: str, field_id: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field_id}-error">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1).strip()) if match else None


def input_value(page: str, name: str) -> str | None:
    tag = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', page)
    if tag is None:
        return None
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else ""


def post(client, path: str, data: dict, prefix: str | None = None, **kwargs):
    """A form post; a prefixed form carries its own CSRF field too."""
    data = dict(data)
    if prefix:
        data[f"{prefix}-csrf_token"] = client.csrf()
        data = {(k if k.endswith("csrf_token") else f"{prefix}-{k}"): v for k, v in data.items()}
    return client.post_form(path, data, **kwargs)


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def audited(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


# --- permissions and scope ----------------------------------------------------------------------


def test_exp_r18_setup_is_refused_to_station_staff(net, client):
    client.login("amy")
    assert client.get("/express/setup").status_code == 403
    assert client.get(f"/express/setup/units/{net.pudong.id}").status_code == 403
    assert post(client, "/express/setup/partners", {"name": "X", "phone": "13812345678"},
                "partner").status_code == 403
    assert post(client, "/express/setup/relabels", {"old_waybill": "600123456789",
                                                    "new_waybill": "600123456790",
                                                    "unit_id": net.pudong.id}, "relabel").status_code == 403
    assert count(Partner) == 0 and count(Relabel) == 0


def test_exp_r18_setup_lists_the_units_in_scope_with_their_levels(net, client):
    client.login("east_mgr")
    page = client.get("/express/setup")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-unit="pudong"' in text and 'data-unit="eastnet"' in text
    assert 'data-unit="tianhe"' not in text and 'data-unit="hq"' not in text
    row = re.search(r'<tr data-unit="eastnet">(.*?)</tr>', text, re.S).group(1)
    assert "Regional network manager" in row and "default" not in row  # set by the admin
    row = re.search(r'<tr data-unit="pudong">(.*?)</tr>', text, re.S).group(1)
    assert "Station CS" in row and "default" in row and ">Station<" in row
    row = re.search(r'<tr data-unit="center">(.*?)</tr>', text, re.S).group(1)
    assert "not named" in row


def test_exp_r18_units_outside_scope_answer_404(net, client):
    client.login("east_mgr")
    assert client.get(f"/express/setup/units/{net.tianhe.id}").status_code == 404
    response = client.post_form(f"/express/setup/units/{net.tianhe.id}", {"level": "center"})
    assert response.status_code == 404
    assert svc.level_of(net.tianhe) == "station"


# --- levels and stranded-parcel contacts (EXP-R18) ---------------------------------------------


def test_exp_r18_center_names_its_stranded_parcel_contact_shown_to_hq(net, client):
    client.login("east_mgr")
    response = client.post_form(f"/express/setup/units/{net.center.id}", {
        "level": "default", "stranded_contact": "Qian Liang", "stranded_phone": "021-5555 0101"})
    assert response.status_code == 302
    row = db.session.scalar(select(UnitLevel).where(UnitLevel.unit_id == net.center.id))
    assert (row.level, row.stranded_contact, row.stranded_phone) == ("center", "Qian Liang", "021-55550101")
    assert audited("express.level_set")[-1].after["stranded_contact"] == "Qian Liang"
    client.post_form("/logout")
    client.login("hq_cs")  # HQ customer service
    page = client.get("/express/stranded")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Qian Liang" in text and "021-55550101" in text
    assert "not named" not in re.search(r'<tr data-unit="center">(.*?)</tr>', text, re.S).group(1)


def test_exp_r18_stranded_list_only_for_hq_level_units(net, client):
    client.login("amy")
    assert client.get("/express/stranded").status_code == 403
    client.post_form("/logout")
    client.login("cal")  # center CS: not HQ
    assert client.get("/express/stranded").status_code == 403
    client.post_form("/logout")
    client.login("ada")  # at the company
    text = client.get("/express/stranded").get_data(as_text=True)
    assert 'data-unit="center"' in text and 'data-unit="pudong"' not in text


def test_exp_r18_contact_refused_for_a_station_nothing_written(net, client):
    client.login("east_mgr")
    response = client.post_form(f"/express/setup/units/{net.pudong.id}", {
        "level": "station", "stranded_contact": "Somebody", "stranded_phone": "13812345678"})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Only a center" in field_error(text, "stranded_contact")
    assert input_value(text, "stranded_contact") == "Somebody"
    assert count(UnitLevel, UnitLevel.unit_id == net.pudong.id) == 0


@pytest.mark.parametrize("data, field", [
    ({"stranded_contact": "Qian Liang", "stranded_phone": "12345"}, "stranded_phone"),
    ({"stranded_contact": "Qian Liang", "stranded_phone": ""}, "stranded_phone"),
    ({"stranded_contact": "", "stranded_phone": "13812345678"}, "stranded_contact"),
])
def test_exp_r18_bad_contact_is_refused_next_to_the_field(net, client, data, field):
    client.login("east_mgr")
    response = client.post_form(f"/express/setup/units/{net.center.id}", {"level": "center", **data})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), field)
    assert count(UnitLevel, UnitLevel.unit_id == net.center.id) == 0


def test_exp_r18_level_set_and_back_to_the_default(net, client):
    client.login("east_mgr")
    assert client.post_form(f"/express/setup/units/{net.minhang.id}", {"level": "center"}).status_code == 302
    db.session.expire_all()
    assert svc.level_of(net.minhang) == "center"
    assert client.post_form(f"/express/setup/units/{net.minhang.id}", {"level": "default"}).status_code == 302
    assert count(UnitLevel, UnitLevel.unit_id == net.minhang.id) == 0
    assert svc.level_of(net.minhang) == "station"
    entries = audited("express.level_set")
    assert entries[-1].before["level"] == "center" and entries[-1].after["level"] == "default"
    bad = client.post_form(f"/express/setup/units/{net.minhang.id}", {"level": "president"})
    assert bad.status_code == 400 and field_error(bad.get_data(as_text=True), "level")


# --- partners (EXP-R16) --------------------------------------------------------------------------


def test_exp_r16_partner_added_with_its_published_phone(net, client):
    client.login("east_mgr")
    response = post(client, "/express/setup/partners", {"name": "Shunfeng Agents", "area": "Chongming",
                                                         "phone": "021-6666 7777"}, "partner")
    assert response.status_code == 302
    partner = db.session.scalar(select(Partner))
    assert (partner.unit_id, partner.phone, partner.active) == (net.east.id, "021-66667777", True)
    assert audited("express.partner_added")[0].after["phone"] == "021-66667777"
    # offered at intake in the stations below
    client.post_form("/logout")
    client.login("amy")
    assert "Shunfeng Agents" in client.get("/express/new").get_data(as_text=True)


def test_exp_r16_bad_phone_refused_next_to_the_field_typed_values_kept(net, client):
    client.login("east_mgr")
    response = post(client, "/express/setup/partners", {"name": "Shunfeng Agents", "area": "Chongming",
                                                         "phone": "call me"}, "partner")
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "mobile number" in field_error(text, "partner-phone")
    assert input_value(text, "partner-name") == "Shunfeng Agents"
    assert input_value(text, "partner-phone") == "call me"
    assert count(Partner) == 0


def test_exp_r16_partner_deactivated_and_scoped(net, client):
    ours = Partner(unit_id=net.pudong.id, name="Ours", phone="13812345678")
    theirs = Partner(unit_id=net.tianhe.id, name="Theirs", phone="13812345679")
    db.session.add_all([ours, theirs])
    db.session.commit()
    client.login("east_mgr")
    text = client.get("/express/setup").get_data(as_text=True)
    assert "Ours" in text and "Theirs" not in text
    assert client.post_form(f"/express/setup/partners/{theirs.id}/deactivate").status_code == 404
    assert client.post_form(f"/express/setup/partners/{ours.id}/deactivate").status_code == 302
    db.session.expire_all()
    assert db.session.get(Partner, ours.id).active is False
    assert db.session.get(Partner, theirs.id).active is True
    assert audited("express.partner_deactivated")[0].after["active"] is False


# --- re-labels (EXP-R17) -------------------------------------------------------------------------


def relabel(client, old="600123456789", new="600987654321", unit=None, **more):
    return post(client, "/express/setup/relabels",
                {"old_waybill": old, "new_waybill": new, "unit_id": unit, "reason": "label torn", **more},
                "relabel")


def test_exp_r17_relabel_recorded_and_found_by_either_number(net, client):
    client.login("east_mgr")
    assert relabel(client, unit=net.minhang.id).status_code == 302
    row = db.session.scalar(select(Relabel))
    assert (row.old_waybill, row.new_waybill, row.unit_id) == ("600123456789", "600987654321", net.minhang.id)
    assert audited("express.relabel_recorded")[0].after["unit"] == "minhang"
    search = client.get("/express/?q=600123456789").get_data(as_text=True)
    assert "600987654321" in search


@pytest.mark.parametrize("old, new, field, message", [
    ("600123456789", "600123456789", "relabel-new_waybill", "must differ"),
    ("12AB", "600987654321", "relabel-old_waybill", "Not a waybill number"),
    ("600123456789", "6009", "relabel-new_waybill", "Not a waybill number"),
])
def test_exp_r17_bad_relabel_refused_nothing_written(net, client, old, new, field, message):
    client.login("east_mgr")
    response = relabel(client, old, new, unit=net.pudong.id)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert message in field_error(text, field)
    assert input_value(text, "relabel-old_waybill") == old
    assert count(Relabel) == 0


def test_exp_r17_new_number_already_a_relabel_is_refused(net, client):
    client.login("east_mgr")
    assert relabel(client, unit=net.pudong.id).status_code == 302
    again = relabel(client, old="600111111111", new="600987654321", unit=net.pudong.id)
    assert again.status_code == 400
    assert "already in a re-label" in field_error(again.get_data(as_text=True), "relabel-new_waybill")
    twice = relabel(client, old="600123456789", new="600222222222", unit=net.pudong.id)
    assert twice.status_code == 400
    assert "already re-labelled" in field_error(twice.get_data(as_text=True), "relabel-old_waybill")
    assert count(Relabel) == 1


def test_exp_r17_relabelling_unit_must_be_in_scope(net, client):
    client.login("east_mgr")
    response = relabel(client, unit=net.tianhe.id)
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "relabel-unit_id")
    assert count(Relabel) == 0


# --- tracking (EXP-R02) --------------------------------------------------------------------------


def status(client, **values):
    data = {"waybill": "600123456789", "time": "2026-11-16T09:30", "status": "signed",
            "place": "Minhang", "signer": "Ms Chen", **values}
    return post(client, "/express/tracking/status", data, "status")


def upload(client, content: bytes, name="tracking.csv"):
    data = {"import-file": (io.BytesIO(content), name), "import-csrf_token": client.csrf()}
    return client.post_form("/express/tracking/import", data, content_type="multipart/form-data")


def test_exp_r02_tracking_manual_entry_shown_on_the_inquiry(net, client):
    inquiry = new_inquiry(net, T0)
    client.login("east_mgr")
    assert status(client, status="arrived", signer="", time="2026-11-16T08:00").status_code == 302
    assert status(client).status_code == 302
    events = db.session.scalars(select(TrackingEvent).order_by(TrackingEvent.at)).all()
    assert [e.status for e in events] == ["arrived", "signed"]
    assert events[1].at == datetime(2026, 11, 16, 1, 30, tzinfo=timezone.utc)  # 09:30 Shanghai
    assert events[1].source == "manual" and events[1].unit_id == net.east.id
    assert len(audited("express.tracking_added")) == 2
    # station staff see the tracking, not the forms
    client.post_form("/logout")
    client.login("amy")
    page = client.get("/express/tracking?waybill=600123456789").get_data(as_text=True)
    assert "Ms Chen" in page and 'id="manual"' not in page
    detail = client.get(f"/express/{inquiry.id}").get_data(as_text=True)
    assert "Ms Chen" in detail


@pytest.mark.parametrize("values, field", [
    ({"signer": ""}, "status-signer"),
    ({"status": "arrived"}, "status-signer"),
    ({"time": "2099-01-01T10:00"}, "status-time"),
    ({"time": "yesterday"}, "status-time"),
    ({"waybill": "ABC"}, "status-waybill"),
    ({"status": "lost"}, "status-status"),
])
def test_exp_r02_tracking_bad_manual_entry_refused_next_to_the_field(net, client, values, field):
    client.login("east_mgr")
    response = status(client, **values)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert field_error(text, field), field
    assert input_value(text, "status-place") == "Minhang"
    assert count(TrackingEvent) == 0


def test_exp_r02_tracking_csv_import_all_lines(net, client):
    client.login("east_mgr")
    content = ("waybill,time,status,place,signer\r\n"
               "600123456789,2026-11-15 16:00,collected,Pudong,\r\n"
               "600123456789,2026-11-15 22:10,in_transit,Shanghai hub,\r\n"
               "\r\n"
               "600123456789,2026-11-16 09:30,signed,Minhang,陈女士\r\n").encode("utf-8-sig")
    response = upload(client, content)
    assert response.status_code == 302
    events = db.session.scalars(select(TrackingEvent).order_by(TrackingEvent.at)).all()
    assert [e.status for e in events] == ["collected", "in_transit", "signed"]
    assert events[0].at == datetime(2026, 11, 15, 8, 0, tzinfo=timezone.utc)
    assert events[2].signer == "陈女士" and {e.source for e in events} == {"csv"}
    entry = audited("express.tracking_imported")[0]
    assert entry.after["imported"] == 3 and len(entry.after["ids"]) == 3
    # the same file again: nothing new
    assert upload(client, content).status_code == 302
    assert count(TrackingEvent) == 3
    assert audited("express.tracking_imported")[-1].after["skipped"] == 3


def test_exp_r02_tracking_csv_with_a_bad_line_imports_nothing(net, client):
    client.login("east_mgr")
    content = (b"waybill,time,status,place,signer\n"
               b"600123456789,2026-11-15 16:00,collected,Pudong,\n"
               b"600123456789,2026-11-15 22:10,lost,Shanghai hub,\n"
               b"600123456789,16/11/2026 09:30,signed,Minhang,\n"
               b"600123456789,2026-11-16 10:00,arrived\n")
    response = upload(client, content)
    assert response.status_code == 400
    text = html.unescape(response.get_data(as_text=True))
    errors = re.search(r'<ul class="field-error" id="import-errors">(.*?)</ul>', text, re.S).group(1)
    assert "Line 3: status" in errors
    assert "Line 4: time" in errors and "Line 4: signer" in errors
    assert "Line 5: Expected 5 columns" in errors
    assert "Line 2" not in errors
    assert "Nothing was imported" in field_error(text, "import-file")
    assert count(TrackingEvent) == 0
    assert audited("express.tracking_imported") == []


@pytest.mark.parametrize("content, message", [
    (b"number,when,what\n600123456789,2026-11-15 16:00,collected\n", "header"),
    (b"waybill,time,status,place,signer\n", "no statuses"),
    (b"waybill,time,status,place,signer\n" + b"600123456789,2026-11-15 16:00,collected,x,\n" * 30000,
     "larger than"),
])
def test_exp_r02_tracking_csv_header_empty_and_size_limit(net, client, content, message):
    client.login("east_mgr")
    response = upload(client, content)
    assert response.status_code == 400
    assert message in html.unescape(response.get_data(as_text=True))
    assert count(TrackingEvent) == 0


def test_exp_r02_tracking_csv_import_needs_the_permission(net, client):
    client.login("amy")
    response = upload(client, b"waybill,time,status,place,signer\n600123456789,2026-11-15 16:00,collected,x,\n")
    assert response.status_code == 403
    assert count(TrackingEvent) == 0


class FakeAdapter:
    def lookup(self, waybill):
        return [trk.TrackingStatus(datetime(2026, 11, 16, 1, 0, tzinfo=timezone.utc), trk.SIGNED,
                                   "Carrier API", f"API signer of {waybill}")]


class BrokenAdapter:
    def lookup(self, waybill):
        raise trk.TrackingError("carrier down")


@pytest.fixture
def adapter_config(app, monkeypatch):
    def use(path):
        monkeypatch.setitem(app.config, trk.CONFIG_KEY, path)
        app.extensions.pop("express_tracking", None)

    yield use
    app.extensions.pop("express_tracking", None)


def test_exp_r02_tracking_adapter_chosen_by_config(net, client, adapter_config):
    inquiry = new_inquiry(net, T0)
    adapter_config("plugins.express.tests.test_setup:FakeAdapter")
    client.login("amy")
    detail = client.get(f"/express/{inquiry.id}").get_data(as_text=True)
    assert "API signer of 600123456789" in detail
    adapter_config("plugins.express.tests.test_setup.BrokenAdapter")
    detail = client.get(f"/express/{inquiry.id}")
    assert detail.status_code == 200
    assert "cannot be reached" in detail.get_data(as_text=True)


def test_exp_r02_default_adapter_reads_the_database(app, net):
    db.session.add(TrackingEvent(waybill="600123456789", at=T0, status="arrived", place="Minhang",
                                 unit_id=net.pudong.id, by_id=net.amy.id))
    db.session.commit()
    with app.test_request_context():
        assert isinstance(trk.adapter(), trk.DatabaseAdapter)
        tracking = trk.tracking_for("600123456789")
    assert tracking.latest.status == "arrived" and tracking.signed is None
