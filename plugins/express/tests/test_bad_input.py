"""No 500 from user input: every POST of the ``express`` blueprint, fed garbage, answers 4xx
with the message next to the field (or 403/404) and writes nothing (non-negotiable 1, 2, 3).

The routes are read from ``app.url_map`` (every rule of an ``express.*`` endpoint that
accepts POST), so a new route is covered as soon as it exists.  For each one the test

* builds the path from real records (``world``): an inquiry at the station for the
  inquiry's own steps, the L3 inquiry and its hops for the hops' steps, a complaint, a
  station manager's response, a partner, a unit, a refused forward;
* finds the route's form on the plugin's pages (as the person who would use it) and
  fills it with valid values, then spoils one field at a time — a non-number, a huge
  number, a negative one, a value not among the choices, an impossible or out-of-range
  date, text far over its length, an empty / binary / formula / year-1 CSV — and also
  posts nothing at all and the same garbage in every field of every form at once;
* posts the valid form with the path pointing at another region's records (404/403).

Every answer is below 500, no ``express_*`` table gains or loses a row (audit entries
are not counted: a refused forward is logged on purpose, EXP-R14), a refused field shows
its message next to it, and the text typed comes back escaped.

Hidden fields other than the CSRF token (``from_hop``, ``kind``) are not spoiled one by
one: the views read the hop and the kind from the path, never from them.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from plugins.express import complaints as cx
from plugins.express import rules
from plugins.express import service as svc
from plugins.express.models import Inquiry, Partner, QualityResponse
from plugins.express.tests.conftest import L3_STEPS, at_l3, new_inquiry
from portal.audit import AuditEntry
from portal.db_types import utcnow
from portal.extensions import db
from portal.penalties import service as penalties
from portal.penalties.models import PenaltyNotice
from portal.testing import make_user
from portal.units.models import set_plugin

SHANGHAI = ZoneInfo("Asia/Shanghai")
XSS = '<script>alert("x")</script>'
HUGE_TEXT = "x" * 100_001
HUGE_INT = "9" * 25

# --- the records the paths point at ---------------------------------------------------------


@dataclass
class World:
    path: dict[str, int]  # the records of the actor's own area
    foreign: dict[str, int]  # the same kinds of record in another region
    by_endpoint: dict[str, dict[str, int]] = field(default_factory=dict)  # where a step needs more
    valid: dict[str, str] = field(default_factory=dict)  # form values by field name
    foreign_fields: dict[str, int] = field(default_factory=dict)


def _local(at) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def _complaint(actor, unit, person, hours_ago: int = 5, kind: str = "attitude_staff"):
    received = (utcnow() - timedelta(hours=hours_ago)).astimezone(SHANGHAI).replace(tzinfo=None)
    complaint = cx.record_complaint(actor, {unit.id}, kind=kind, unit_id=unit.id,
                                    person_id=person.id, received_local=received,
                                    description="Shouted at the customer.")
    db.session.commit()
    return complaint


def _response(net, unit, person) -> QualityResponse:
    """A published EXP-P04 notice opens the station manager's response (EXP-P05)."""
    complaint = _complaint(net.root, unit, person, hours_ago=30)
    cx.verify(complaint, net.ada, "verified", "Confirmed.")
    draft = db.session.scalar(select(PenaltyNotice).where(PenaltyNotice.unit_id == unit.id))
    penalties.publish(draft, net.aldo)
    db.session.commit()
    return db.session.scalar(select(QualityResponse).where(QualityResponse.unit_id == unit.id))


def _refusal(inquiry, user, target) -> AuditEntry:
    """A refused 越级 forward, logged for the auditors (EXP-R14)."""
    with pytest.raises(rules.LadderError) as refused:
        svc.forward(inquiry, user, target)
    db.session.rollback()
    assert svc.log_refusal(refused.value)
    db.session.commit()
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == "express.forward_refused")
                              .order_by(AuditEntry.id.desc())).first()


def _at_netdept(net, at):
    """An inquiry at 网络管理部 (L5), where its director may ask the VP to intervene (EXP-R08)."""
    inquiry, _l2, l3 = at_l3(net, at=at)
    for step in L3_STEPS:
        svc.record_check(l3, net.cal, step, "done", at=at + timedelta(minutes=10))
    l4 = svc.forward(inquiry, net.cal, net.eastnet, from_hop=l3, at=at + timedelta(minutes=12))
    for step in rules.steps(4):
        svc.record_check(l4, net.ned, step.key, "done", at=at + timedelta(minutes=14))
    l5 = svc.forward(inquiry, net.ned, net.netdept, from_hop=l4, at=at + timedelta(minutes=15))
    db.session.commit()
    return inquiry, l5


@pytest.fixture
def world(net) -> World:
    net.users["eva"] = make_user("eva", (net.east, "auditor"), locale="en")  # inspection, east only
    net.users["dir"] = make_user("dir", (net.netdept, "manager"), locale="en")  # 网管总监
    l5_inquiry, l5 = _at_netdept(net, utcnow() - timedelta(minutes=40))
    fresh = new_inquiry(net, at=utcnow() - timedelta(minutes=5), waybill="600123456700")
    l3_inquiry, _l2, l3 = at_l3(net, at=utcnow() - timedelta(minutes=20))
    supervisor = svc.request_help(l3_inquiry, net.cal, rules.SUPERVISOR, l3, None)
    db.session.commit()
    refusal = _refusal(fresh, net.amy, net.center)
    partner = Partner(unit_id=net.east.id, name="East partner", area="Jiading", phone="13812345670")
    south_partner = Partner(unit_id=net.south.id, name="South partner", area="Tianhe", phone="13812345671")
    db.session.add_all([partner, south_partner])
    db.session.commit()
    complaint = _complaint(net.east_mgr, net.pudong, net.amy)
    response = _response(net, net.pudong, net.amy)
    inaction = _complaint(net.east_mgr, net.pudong, net.amy, kind="inaction")  # EXP-R15
    cx.verify(inaction, net.ada, "verified", "Confirmed.")
    db.session.commit()

    south = svc.take_inquiry(net.tianhe, net.tia, waybill="600123456799", inquirer_name="Ms Zhao",
                             inquirer_phone="13812345679")
    db.session.commit()
    south_complaint = _complaint(net.root, net.tianhe, net.tia)
    south_response = _response(net, net.tianhe, net.tia)
    south_refusal = _refusal(south, net.tia, net.hq)

    return World(
        path={"inquiry_id": fresh.id, "hop_inquiry_id": l3_inquiry.id, "hop_id": l3.id,
              "assist_hop_id": supervisor.id, "complaint_id": complaint.id, "response_id": response.id,
              "partner_id": partner.id, "unit_id": net.pudong.id, "entry_id": refusal.id},
        foreign={"inquiry_id": south.id, "hop_inquiry_id": south.id, "hop_id": l3.id,
                 "assist_hop_id": supervisor.id, "complaint_id": south_complaint.id,
                 "response_id": south_response.id, "partner_id": south_partner.id,
                 "unit_id": net.tianhe.id, "entry_id": south_refusal.id},
        by_endpoint={"express.vp_request": {"hop_inquiry_id": l5_inquiry.id, "hop_id": l5.id},
                     "express.complaint_decision": {"complaint_id": inaction.id}},
        valid={"waybill": "600123456789", "old_waybill": "600123456710", "new_waybill": "600123456711",
               "inquirer_phone": "13812345678", "phone": "13812345678", "pieces": "1", "weight": "2.5",
               "stranded_contact": "", "stranded_phone": "", "status-signer": "", "inquiry_id": "",
               "earlier_id": "", "kind": "attitude_staff", "unit_id": str(net.pudong.id),
               "person_id": str(net.amy.id), "send_time": "2026-11-15 16:00"},
        foreign_fields={"unit_id": net.tianhe.id, "person_id": net.tia.id, "inquiry_id": south.id,
                        "earlier_id": south_complaint.id},
    )


# --- the routes -------------------------------------------------------------------------------


def post_rules(app) -> list:
    return sorted((r for r in app.url_map.iter_rules()
                   if r.endpoint.startswith("express.") and "POST" in r.methods), key=lambda r: r.rule)


def rule_id(rule) -> str:
    return f"{rule.endpoint}:{rule.rule}"


def actor_for(rule) -> str:
    """Who would post here: someone allowed to, so that the post reaches the form and the rules."""
    by_endpoint = {"express.new": "amy", "express.customer": "amy", "express.signed": "amy",
                   "express.complaint_verify": "eva", "express.complaint_decision": "eva",
                   "express.propose_r14": "eva", "express.response_respond": "pete",
                   "express.vp_request": "dir"}
    if rule.endpoint in by_endpoint:
        return by_endpoint[rule.endpoint]
    if "hop_id" in rule.arguments:
        return "sue" if (rule.defaults or {}).get("kind") == rules.ASSIST else "cal"
    if "inquiry_id" in rule.arguments:
        return "amy"
    return "east_mgr"  # setup, tracking, complaints: the region's manager


def path_of(rule, ids: dict[str, int]) -> str:
    def value(match):
        name = match.group(1)
        if name == "inquiry_id" and "hop_id" in rule.arguments:
            name = "hop_inquiry_id"
        if name == "hop_id" and (rule.defaults or {}).get("kind") == rules.ASSIST:
            name = "assist_hop_id"
        assert name in ids, f"test_bad_input: give the world a record for <{name}> ({rule.rule})"
        return str(ids[name])

    return re.sub(r"<(?:[^:>]+:)?(\w+)>", value, rule.rule)


def ids_for(rule, world: World) -> dict[str, int]:
    return {**world.path, **world.by_endpoint.get(rule.endpoint, {})}


def get_pages(app, world: World) -> list[str]:
    """Every express page without a query, its path built from each set of the world's records."""
    id_sets = [world.path, *({**world.path, **extra} for extra in world.by_endpoint.values())]
    pages = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("express.") and "GET" in rule.methods:
            for ids in id_sets:
                pages.append(path_of(rule, ids))
                if "inquiry_id" in rule.arguments and "hop_id" not in rule.arguments:
                    pages.append(path_of(rule, {**ids, "inquiry_id": ids["hop_inquiry_id"]}))
    return sorted(set(pages))


# --- forms on the pages -----------------------------------------------------------------------


@dataclass
class Field:
    name: str
    kind: str  # text, textarea, select, radio, checkbox, hidden, number, datetime-local, file, ...
    value: str = ""
    options: list[str] = field(default_factory=list)
    selected: str | None = None


@dataclass
class Form:
    action: str
    fields: dict[str, Field] = field(default_factory=dict)


class FormParser(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page, self.forms, self.form = page, [], None
        self.select: Field | None = None
        self.textarea: Field | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self.form = Form(a.get("action") or self.page)
            self.forms.append(self.form)
        if self.form is None or (tag not in ("input", "select", "option", "textarea")):
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            entry = self.form.fields.setdefault(name, Field(name, kind))
            if kind == "radio":
                entry.options.append(a.get("value", "on"))
                if "checked" in a:
                    entry.selected = a.get("value")
            elif kind == "checkbox":
                entry.value = a.get("value", "y")
            else:
                entry.value = a.get("value", "")
        elif tag == "select" and name:
            self.select = self.form.fields.setdefault(name, Field(name, "select"))
        elif tag == "option" and self.select is not None:
            self.select.options.append(a.get("value", ""))
            if "selected" in a:
                self.select.selected = a.get("value", "")
        elif tag == "textarea" and name:
            self.textarea = self.form.fields.setdefault(name, Field(name, "textarea"))

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea.value += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            if self.textarea is not None:
                self.textarea.value = re.sub(r"^\r?\n", "", self.textarea.value)  # as a browser reads it
            self.textarea = None


def forms_on(client, pages: list[str]) -> dict[str, Form]:
    out = {}
    for page in pages:
        response = client.get(page)
        if response.status_code != 200 or not response.mimetype == "text/html":
            continue
        parser = FormParser(page)
        parser.feed(response.get_data(as_text=True))
        for form in parser.forms:
            out.setdefault(form.action, form)
    return out


# --- values -----------------------------------------------------------------------------------


def csv_file(text: str | bytes, name: str = "tracking.csv"):
    data = text.encode() if isinstance(text, str) else text
    return (io.BytesIO(data), name)


HEADER = "waybill,time,status,place,signer\n"


def valid_csv():
    return csv_file(HEADER + "600123456789,2026-11-01 09:00,collected,Shanghai,\n")


FILES = {
    "empty file": lambda: csv_file(b""),
    "header only": lambda: csv_file(HEADER),
    "binary": lambda: csv_file(bytes(range(256)) * 64, "photo.jpg"),
    "NUL bytes": lambda: csv_file(HEADER.encode() + b"600123456789,\x00,collected,,\n"),
    "formula cells": lambda: csv_file(HEADER + '600123456789,2026-11-01 09:00,collected,'
                                      '"=HYPERLINK(""http://evil.example"",""x"")",\n'
                                      "600123456789,2026-11-01 10:00,signed,Minhang,@SUM(A1)\n"),
    "year 1": lambda: csv_file(HEADER + "600123456789,0001-01-01 00:00,collected,Shanghai,\n"),
    "year 9999": lambda: csv_file(HEADER + "600123456789,9999-12-31 23:59,collected,Shanghai,\n"),
    "too large": lambda: csv_file(HEADER + "600123456789,2026-11-01 09:00,collected,Shanghai,\n" * 25_000),
    "not csv": lambda: csv_file(XSS * 10),
}

TEXT_KINDS = {"text", "textarea", "tel", "email", "search", "url"}  # free text: only too long is wrong
BAD = {  # by kind of field: values no field of that kind may take
    "select": ["abc", HUGE_INT, "-1", XSS],
    "radio": ["abc", HUGE_INT, "-1", XSS],
    "number": ["abc", HUGE_INT, "-1", "1.5"],
    "datetime-local": ["abc", "2026-02-31T25:61", "0001-01-01T00:00", "9999-12-31T23:59"],
    "checkbox": [],
    "hidden": [],
    "submit": [],
    **{kind: [HUGE_TEXT] for kind in TEXT_KINDS},
}


def suffix(name: str) -> str:
    return name.rsplit("-", 1)[-1]


def valid_value(f: Field, world: World):
    wanted = world.valid.get(f.name, world.valid.get(suffix(f.name)))
    if f.kind in ("select", "radio"):
        if wanted is not None and wanted in f.options:
            return wanted
        return f.selected or next((o for o in f.options if o), "")
    if f.kind == "checkbox":
        return f.value or "y"
    if f.kind == "file":
        return valid_csv()
    if f.kind == "hidden":
        return f.value
    if f.value:
        return f.value
    if f.kind == "datetime-local":
        return _local(utcnow() - timedelta(hours=1))
    return wanted if wanted is not None else XSS


def base(form: Form, world: World) -> dict:
    return {f.name: valid_value(f, world) for f in form.fields.values() if f.name != "csrf_token"}


def variants(form: Form | None, all_fields: dict[str, str], world: World):
    """``(label, data, spoiled field or None)``: one field spoiled at a time, then whole-form garbage."""
    if form is not None:
        good = base(form, world)
        for f in form.fields.values():
            if f.name == "csrf_token":
                continue
            if f.kind == "file":
                for label, make in FILES.items():
                    yield f"{f.name}={label}", {**good, f.name: make()}, f.name
                continue
            values = BAD.get(f.kind, ["abc", HUGE_TEXT])  # a kind of field this test does not know yet
            values = [*values, *([world.foreign_fields[suffix(f.name)]]
                                 if suffix(f.name) in world.foreign_fields else [])]
            for value in values:
                yield f"{f.name}={str(value)[:30]}", {**good, f.name: str(value)}, f.name
    yield "nothing", {}, None
    long_text = "x" * 5000  # longer than any text field takes
    for value in ("abc", HUGE_INT, "-1", "0001-01-01T00:00", long_text):
        garbage = {name: long_text if kind in TEXT_KINDS else value for name, kind in all_fields.items()}
        yield f"every field={value[:20]}", garbage, None
    for label, make in FILES.items():
        yield f"a file alone: {label}", {"import-file": make()}, None


def express_counts() -> dict[str, int]:
    db.session.expire_all()
    tables = [t for t in db.metadata.sorted_tables if t.name.startswith("express_")]
    return {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in tables}


def send(client, path: str, data: dict, label: str, problems: list, **kwargs):
    """The answer to a post; an exception the app let through (the test app propagates them)
    counts as a 500."""
    try:
        return client.post_form(path, data, **kwargs)
    except Exception as exc:  # noqa: BLE001 - what a user would see as a 500
        problems.append(f"{label}: 500 ({type(exc).__name__}: {str(exc)[:120]})")
        db.session.rollback()
        return None


def check(response, label: str, spoiled: str | None, before: dict, problems: list) -> None:
    if response is None:
        return
    body = response.get_data(as_text=True)
    if response.status_code >= 500:
        problems.append(f"{label}: {response.status_code}")
    after = express_counts()
    if after != before:
        changed = {k: (before[k], after[k]) for k in after if after[k] != before[k]}
        problems.append(f"{label}: rows written {changed}")
    if XSS in body:
        problems.append(f"{label}: typed text comes back unescaped")
    if spoiled and response.status_code == 400 and f'id="{spoiled}-error"' not in body \
            and 'id="import-errors"' not in body:
        shown = re.findall(r'class="(?:field-error|form-errors)"[^>]*>([^<]*)', body)
        problems.append(f"{label}: 400 without a message next to {spoiled} (shown: {shown})")


# --- the tests --------------------------------------------------------------------------------


RECORDS = {"inquiry_id", "complaint_id", "response_id", "partner_id", "unit_id", "entry_id"}


def pytest_generate_tests(metafunc):
    """One test per POST rule of the blueprint, read from a throw-away app's URL map
    (``foreign_route``: only the rules with a record's id in their path)."""
    for name, keep in (("route", lambda r: True), ("foreign_route", lambda r: RECORDS & set(r.arguments))):
        if name in metafunc.fixturenames:
            from portal.testing import make_app

            metafunc.parametrize(name, [rule_id(r) for r in post_rules(make_app("sqlite://")) if keep(r)])


def rule_of(app, route: str):
    [rule] = [r for r in post_rules(app) if rule_id(r) == route]
    return rule


def test_bad_input_is_refused_without_500_and_writes_nothing(app, net, world, client, route):
    rule = rule_of(app, route)
    assert client.login(actor_for(rule)).status_code == 302
    path = path_of(rule, ids_for(rule, world))
    forms = forms_on(client, get_pages(app, world))
    form = forms.get(path)
    all_fields = {name: f.kind for form_ in forms.values() for name, f in form_.fields.items()
                  if name != "csrf_token"}
    problems: list[str] = []
    before = express_counts()
    for label, data, spoiled in variants(form, all_fields, world):
        label = f"{route} {label}"
        check(send(client, path, data, label, problems), label, spoiled, before, problems)
        before = express_counts()
    label = f"{route} htmx, nothing"
    check(send(client, path, {}, label, problems, htmx=True), label, None, before, problems)
    label = f"{route} a 9 MiB body"
    huge = send(client, path, {"x": "y" * (9 * 1024 * 1024)}, label, problems)
    check(huge, label, None, before, problems)
    assert huge is None or huge.status_code == 413
    assert not problems, "\n".join(problems)


def test_records_of_another_region_are_not_found(app, net, world, client, foreign_route):
    """Non-negotiable 2: the path of another region's record answers 404 (or 403), writes nothing."""
    route = foreign_route
    rule = rule_of(app, route)
    assert client.login(actor_for(rule)).status_code == 302
    form = forms_on(client, get_pages(app, world)).get(path_of(rule, ids_for(rule, world)))
    data = base(form, world) if form is not None else {}
    before = express_counts()
    problems: list[str] = []
    response = send(client, path_of(rule, world.foreign), data, route, problems)
    assert not problems, problems
    assert response.status_code in (403, 404), response.status_code
    assert express_counts() == before


def test_ids_that_no_column_holds_are_not_found(app, net, world, client):
    """A path id past the integer column (or zero) is no record: 404, not the database's overflow."""
    client.login("root")
    problems: list[str] = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("express.") or not rule.arguments - {"kind"}:
            continue
        for bad in (HUGE_INT, str(rules.MAX_ID + 1), "0"):
            path = re.sub(r"<int:\w+>", bad, rule.rule)
            label = f"{rule_id(rule)} {bad}"
            if "POST" in rule.methods:
                response = send(client, path, {}, label, problems)
            else:
                try:
                    response = client.get(path)
                except Exception as exc:  # noqa: BLE001 - what a user would see as a 500
                    problems.append(f"{label}: 500 ({type(exc).__name__})")
                    db.session.rollback()
                    continue
            if response is not None and response.status_code != 404:
                problems.append(f"{label}: {response.status_code}")
    assert not problems, "\n".join(problems)


# --- the refusals the review found, one by one ------------------------------------------------


def page_text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def field_error(page: str, name: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{re.escape(name)}-error">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1).strip()) if match else None


def test_exp_r09_a_refusal_without_a_field_is_shown_even_when_its_form_is_gone(net, world, client):
    """The inquiry closed meanwhile: the step is refused with its reason, not a bare 400."""
    inquiry = db.session.get(Inquiry, world.path["inquiry_id"])
    svc.tell_customer(inquiry, net.amy, "result", "Delivered to the neighbour.")
    db.session.commit()
    client.login("amy")
    before = express_counts()
    response = client.post_form(f"/express/{inquiry.id}/customer",
                                {"customer-kind": "progress", "customer-text": "Still looking."})
    assert response.status_code == 400
    assert "This inquiry is closed." in page_text(response)
    assert express_counts() == before


def test_exp_r11_a_refusal_of_a_shown_form_is_next_to_it(net, world, client):
    client.login("cal")
    hop_id = world.path["hop_id"]
    response = client.post_form(f"/express/{world.path['hop_inquiry_id']}/hops/{hop_id}/supervisor",
                                {f"supervisor{hop_id}-message": "Please help."})
    assert response.status_code == 400
    body = page_text(response)
    assert re.search(r'<div class="form-errors" role="alert">That request is already open.</div>', body)


def test_exp_r02_a_signature_before_2000_is_refused_at_its_field(net, world, client):
    client.login("amy")
    before = express_counts()
    response = client.post_form(f"/express/{world.path['inquiry_id']}/signed", {
        "signed-signer": "Ms Chen", "signed-signed_at": "0001-01-01T00:00", "signed-answer": "Signed."})
    assert response.status_code == 400
    assert field_error(page_text(response), "signed-signed_at") == "A local time such as 2026-11-16 10:00."
    assert input_value(page_text(response), "signed-signer") == "Ms Chen"
    assert express_counts() == before


def test_exp_r02_signed_at_is_stored_as_utc_from_the_units_local_time(net, world, client):
    client.login("amy")
    response = client.post_form(f"/express/{world.path['inquiry_id']}/signed", {
        "signed-signer": "Ms Chen", "signed-signed_at": "2026-11-01T09:30", "signed-answer": "Signed."})
    assert response.status_code == 302
    db.session.expire_all()
    signed_at = db.session.get(Inquiry, world.path["inquiry_id"]).signed_at
    assert signed_at == datetime(2026, 11, 1, 1, 30, tzinfo=timezone.utc)  # 09:30 in Shanghai


def input_value(page: str, name: str) -> str | None:
    tag = re.search(rf'<input[^>]*\bname="{re.escape(name)}"[^>]*>', page)
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0)) if tag else None
    return value.group(1) if value else None


def test_exp_r02_a_csv_with_formula_cells_imports_nothing(net, client):
    client.login("east_mgr")
    before = express_counts()
    response = client.post_form("/express/tracking/import", {"import-file": FILES["formula cells"]()})
    assert response.status_code == 400
    errors = re.search(r'<ul class="field-error" id="import-errors">(.*?)</ul>', page_text(response),
                       re.S).group(1)
    assert "Line 2: place: Cannot start with = + - @" in errors
    assert "Line 3: signer: Cannot start with = + - @" in errors
    assert express_counts() == before


@pytest.mark.parametrize("line", ["600123456789,0001-01-01 00:00,collected,Shanghai,",
                                  "600123456789,9999-12-31 23:59,collected,Shanghai,"])
def test_exp_r02_a_csv_time_out_of_range_is_refused_by_line(net, client, line):
    client.login("east_mgr")
    response = client.post_form("/express/tracking/import", {"import-file": csv_file(HEADER + line + "\n")})
    assert response.status_code == 400
    assert "Line 2: time:" in page_text(response)


def test_exp_r03_no_forward_to_a_unit_without_the_plugin(net, world, client):
    set_plugin(net.tianhe, "express", False)
    db.session.commit()
    client.login("amy")
    before = express_counts()
    response = client.post_form(f"/express/{world.path['inquiry_id']}/forward",
                                {"forward-target": str(net.tianhe.id)})
    assert response.status_code == 400
    assert field_error(page_text(response), "forward-target") == "Choose where to send the inquiry."
    assert express_counts() == before


def test_exp_r04_parcel_data_is_not_changed_through_an_answered_request(net, client):
    inquiry, l2, _l3 = at_l3(net)
    client.login("bob")
    response = client.post_form(f"/express/{inquiry.id}/hops/{l2.id}/facts",
                                {f"facts{l2.id}-weight": "99", f"facts{l2.id}-pieces": "7"})
    assert response.status_code == 400
    assert "This request is already answered." in page_text(response)
    db.session.expire_all()
    assert db.session.get(Inquiry, inquiry.id).facts["weight"] == "2.4"


def test_exp_p07_a_first_complaint_number_needs_a_second_complaint(net, world, client):
    client.login("east_mgr")
    before = express_counts()
    response = client.post_form("/express/complaints/new", {
        "kind": "attitude_staff", "unit_id": net.pudong.id, "person_id": net.amy.id,
        "received_at": _local(utcnow() - timedelta(hours=1)), "description": "Rude.",
        "earlier_id": world.path["complaint_id"]})
    assert response.status_code == 400
    assert field_error(page_text(response), "earlier_id").startswith("Only a second complaint (EXP-P07)")
    assert express_counts() == before


def test_exp_r01_only_a_station_takes_an_inquiry(net, client):
    client.login("cal")  # customer service of the center
    response = client.post_form("/express/new", {"waybill": "600123456789", "inquirer_name": "Mr Li",
                                                 "inquirer_phone": "13812345678"})
    assert response.status_code == 403
    assert "Inquiries are taken by station customer service." in page_text(response)
    assert express_counts()["express_inquiries"] == 0


def test_exp_r14_a_forward_from_an_answered_level_names_that_level_in_the_audit(net):
    inquiry, l2, l3 = at_l3(net)
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "express.forward_sent",
                                                          AuditEntry.object_id == str(l3.id))).all()
    assert entry.after["from_hop"] == l2.id


def test_exp_r10_taking_an_answered_request_is_refused_on_the_page(net, client):
    inquiry, l2, _l3 = at_l3(net)
    client.login("bob")
    response = client.post_form(f"/express/{inquiry.id}/hops/{l2.id}/take", {})
    assert response.status_code == 400
    assert "This request is already answered." in page_text(response)
