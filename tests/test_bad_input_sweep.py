"""No 500 from any input of any page: every route of the core and of the plugins, read from
``app.url_map``, fed the extremes of issue 23 (non-negotiables 1 and 3).

**The world.**  The express tests' network (``net``) and its records (``world``: inquiries at
every level, a complaint, a published notice and its EXP-P05 response, refused forwards, a
partner), with the notice board and the test plugin switched on, a notice on the board, a
draft penalty, an appealed one and a calendar day.

**What is sent where, derived rather than listed.**  Each person of ``ACTORS`` crawls the
pages from the dashboard (links, ``hx-get``, GET forms and POST forms; the login page
anonymously), up to ``PER_RULE`` paths per route; the first person who reaches a page or sees a
form uses it.  While the app answers, a recording request class notes every query-string
parameter and form field a view reads (``request.args.get(…)``, WTForms' ``getlist``), so a
parameter no page links to (``?before=``, ``?format=``) or a field no form renders is found as
soon as a view reads it:

* **GET**: for each route, one path, and every parameter found on the pages or read by the
  view set to every extreme and sent twice, the other parameters as a link or form of the
  pages set them (``?format=xlsx&from=9999-12``);
* **POST**: for each form found on the pages, every field (and every field the view reads)
  with every extreme — in all fields at once, then again in the fields not yet refused next
  to them with the others valid, until each was refused at its field or the form accepted —
  a file part in every field and every field sent twice (``Sweeper.sweep_post``).  The posts
  carry no submission key (as a script's: each is handled on its own); the key itself, read by
  the core before any view, gets the extremes once.

Every answer is below 500, and a refused POST (4xx) writes nothing: no table but the audit
trail, sessions, login attempts and submission keys changes its row count (a refused forward
is audited on purpose, EXP-R14).  A form without a field (a button: take, read, deactivate,
log out) takes no input and is not posted; the forms that end a session, switch the unit or
throttle (``LAST``) come last, the login form by an anonymous client.

The seven inputs the security test found answering 500 are reproduced one by one below.
"""

from __future__ import annotations

import html
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.utils import cached_property

from plugins.express.tests.conftest import net  # noqa: F401 - the express network, reused
from plugins.express.tests.test_bad_input import valid_csv, world  # noqa: F401 - its records
from plugins.notices.models import Notice
from portal.auth.models import User
from portal.auth.passwords import hash_password
from portal.db_types import utcnow
from portal.extensions import db
from portal.penalties import service as penalties
from portal.penalties.models import PenaltyNotice
from portal.sla.models import HOLIDAY, CalendarDay
from portal.testing import PASSWORD
from portal.units.models import set_plugin

SHANGHAI = ZoneInfo("Asia/Shanghai")

EXTREMES = {
    "year 1 date": "0001-01-01",
    "year 9999 date": "9999-12-31",
    "year 1 datetime": "0001-01-01T00:00",
    "year 9999 datetime": "9999-12-31T23:59",
    "year 1 month": "0001-01",
    "year 9999 month": "9999-12",
    "1e400": "1e400",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-0": "-0",
    "2**63": str(2**63),
    "20 nines": "9" * 20,
}
LIST = ["1", "2"]  # one field sent twice

# who crawls, in this order: the first who reaches a page or sees a form uses it (the narrowest
# role first, so that a step is tried by the person whose step it is; the admin last)
ACTORS = ("amy", "pete", "cal", "east_mgr", "ada", "root")
PER_RULE = 3  # paths kept per route and person while crawling
# tables a refusal may write: the audit trail, sessions, login attempts, submission keys
NOT_COUNTED = ("audit_", "user_sessions", "login", "form_submissions")
SUBMISSION = "_submission"  # the key portal.js gives a rendered form (a post without one: no key)
TEST_ONLY = {"testplug.probe_change"}  # its table exists only in the sealed-record tests
# last: a reset or changed password ends that person's sessions, a switched unit changes what the
# next pages show, failed logins throttle
LAST = ("/admin/users/<int:user_id>/password", "/unit", "/account/password", "/login")


# --- the records --------------------------------------------------------------------------------


@pytest.fixture
def sweep_world(app, net, world):
    """The express world, plus what the core's and the other plugins' pages show (a failed
    login included)."""
    for plugin in ("notices", "testplug"):
        set_plugin(net.acme, plugin, True)
    db.session.add(Notice(unit_id=net.acme.id, title="Sweep notice", body="Read me.", pinned=False,
                          visible_until=date.today() + timedelta(days=30), author_id=net.root.id))
    db.session.add(CalendarDay(unit_id=net.acme.id, day=date.today() + timedelta(days=40),
                               kind=HOLIDAY, note="Sweep day", created_by_id=net.root.id))
    occurred = utcnow() - timedelta(days=1)
    penalties.create_manual(unit=net.pudong, person=net.amy, rule_id="EXP-R14", evidence="A draft.",
                            occurred_at=occurred, proposer=net.ada)
    appealed = penalties.create_manual(unit=net.pudong, person=net.amy, rule_id="EXP-R14",
                                       evidence="To appeal.", occurred_at=occurred, proposer=net.ada)
    db.session.flush()
    penalties.publish(appealed, net.aldo)
    penalties.appeal(appealed, net.amy, "It was not me.")
    db.session.commit()
    assert app.test_client().login("bob", "not-the-password").status_code == 401  # shown to admins
    return world


# --- the pages ----------------------------------------------------------------------------------


@dataclass
class Field:
    name: str
    kind: str
    value: str = ""
    options: list[str] = field(default_factory=list)
    selected: str | None = None
    required: bool = False


@dataclass
class Form:
    method: str
    action: str
    fields: dict[str, Field] = field(default_factory=dict)


class PageParser(HTMLParser):
    """Links (``href``, ``hx-get``) and forms (GET and POST) of a page."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page, self.links, self.forms = page, [], []
        self.form: Form | None = None
        self.select: Field | None = None
        self.textarea: Field | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        for name in ("href", "hx-get"):
            if a.get(name):
                self.links.append(a[name])
        if tag == "form":
            self.form = Form((a.get("method") or "get").lower(), a.get("action") or self.page)
            self.forms.append(self.form)
            return
        if self.form is None or not a.get("name") and tag != "option":
            return
        name = a.get("name", "")
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "reset", "image"):
                return
            entry = self.form.fields.setdefault(name, Field(name, kind))
            if kind == "radio":
                entry.options.append(a.get("value", "on"))
                if "checked" in a:
                    entry.selected = a.get("value")
            else:
                entry.value = a.get("value", "y" if kind == "checkbox" else "")
        elif tag == "select":
            self.select = self.form.fields.setdefault(name, Field(name, "select"))
        elif tag == "option" and self.select is not None:
            self.select.options.append(a.get("value", ""))
            if "selected" in a:
                self.select.selected = a.get("value", "")
        elif tag == "textarea":
            self.textarea = self.form.fields.setdefault(name, Field(name, "textarea"))
        if name in self.form.fields and "required" in a:
            self.form.fields[name].required = True

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea.value += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None


# --- what the views read ------------------------------------------------------------------------


class Reads(ImmutableMultiDict):
    """A request's query or form data that notes the names a view asks for."""

    def __init__(self, data, log: set):
        super().__init__(data)
        self.log = log

    def __getitem__(self, key):
        self.log.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None, type=None):  # noqa: A002
        self.log.add(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):  # noqa: A002
        self.log.add(key)
        return super().getlist(key, type)

    def __contains__(self, key):
        self.log.add(key)
        return super().__contains__(key)


def recording(base, reads: dict):
    """A request class noting, per URL rule, the query parameters and form fields read."""

    class RecordingRequest(base):
        def _log(self, kind: str) -> set:
            rule = self.url_rule.rule if self.url_rule is not None else ""
            return reads[(kind, rule)]

        @cached_property
        def args(self):
            return Reads(super().args, self._log("args"))

        def _load_form_data(self):
            loaded = "form" in self.__dict__
            super()._load_form_data()
            if not loaded:
                self.__dict__["form"] = Reads(self.__dict__["form"], self._log("form"))
                self.__dict__["files"] = Reads(self.__dict__["files"], self._log("form"))

    return RecordingRequest


# --- crawling -----------------------------------------------------------------------------------


@dataclass
class Site:
    gets: dict = field(default_factory=dict)  # rule → (actor, path)
    params: dict = field(default_factory=lambda: defaultdict(set))  # rule → names on the pages
    values: dict = field(default_factory=lambda: defaultdict(dict))  # rule → a value of each name
    posts: dict = field(default_factory=dict)  # rule → (actor, action, Form): the first form seen


class Sweeper:
    def __init__(self, app, reads: dict):
        self.app, self.reads = app, reads
        self.adapter = app.url_map.bind("localhost")
        self.clients: dict[str, object] = {}
        self.tokens: dict[str, str] = {}
        self.site = Site()
        self.buttons: set[tuple[str, str]] = set()
        self.keys_spoiled = False
        self.problems: list[str] = []

    def client(self, actor: str):
        if actor not in self.clients:
            client = self.app.test_client()
            assert client.login(actor).status_code == 302, actor
            self.clients[actor] = client
            self.tokens[actor] = client.csrf()
        return self.clients[actor]

    def session_token(self, actor: str) -> str:
        """The CSRF token of ``actor``'s session; logged in again if an accepted post ended it (a
        password reset of that user, with the test password put back)."""
        client = self.client(actor)
        page = client.get("/account/password")
        if page.status_code != 200:
            user = db.session.scalar(select(User).where(User.username == actor))
            user.password_hash = hash_password(PASSWORD)
            db.session.commit()
            assert client.login(actor).status_code == 302, actor
        return client.csrf()

    def rule(self, path: str, method: str):
        try:
            rule, _args = self.adapter.match(path, method=method, return_rule=True)
        except Exception:  # noqa: BLE001 - not a route of the app (or another method)
            return None
        return rule

    def crawl(self, actor: str | None) -> None:
        """Follow the links from the dashboard as ``actor`` (``None``: the login page, anonymous)."""
        queue, seen, per_rule = ["/" if actor else "/login"], set(), defaultdict(int)
        while queue:
            path = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            response = self.send(f"{actor or 'anonymous'} GET {path}", "GET", actor or "", path)
            if response is None:
                continue
            if response.status_code != 200:
                continue
            rule = self.rule(urlsplit(path).path, "GET")
            if rule is not None:
                self.site.gets.setdefault(rule.rule, (actor, path))
            if response.mimetype != "text/html":
                continue
            parser = PageParser(path)
            parser.feed(response.get_data(as_text=True))
            for form in parser.forms:
                action = urlsplit(html.unescape(form.action)).path
                if form.method == "get":
                    target = self.rule(action, "GET")
                    if target is not None:
                        self.site.params[target.rule] |= set(form.fields)
                        for f in form.fields.values():
                            value = f.selected or f.value
                            if value and f.kind not in ("checkbox", "radio"):
                                self.site.values[target.rule].setdefault(f.name, value)
                    continue
                target = self.rule(action, "POST")
                fields = {n for n in form.fields if not n.endswith("csrf_token")}
                if target is not None and not fields:
                    self.buttons.add((target.rule, action))  # a button takes no input: not posted
                elif target is not None and target.rule not in self.site.posts:
                    self.site.posts[target.rule] = (actor, action, form)
            for link in parser.links:
                parts = urlsplit(html.unescape(link))
                if parts.scheme or parts.netloc or not parts.path.startswith("/") \
                        or parts.path.startswith("/static/"):
                    continue
                target = self.rule(parts.path, "GET")
                if target is None:
                    continue
                for name, value in parse_qsl(parts.query):
                    self.site.params[target.rule].add(name)
                    self.site.values[target.rule].setdefault(name, value)
                url = f"{parts.path}?{parts.query}" if parts.query else parts.path
                cap = (target.rule, parts.path) if parts.query else target.rule  # queries per path
                if actor and url not in seen and url not in queue and per_rule[cap] < PER_RULE:
                    per_rule[cap] += 1
                    queue.append(url)

    # --- sending --------------------------------------------------------------------------------

    def send(self, label: str, method: str, actor: str, path: str, **kwargs):
        client = self.client(actor) if actor else self.app.test_client()
        try:
            response = client.open(path, method=method, **kwargs)
            response.get_data()  # an export streams: read it to its end
            response.close()
        except Exception as exc:  # noqa: BLE001 - the test app lets errors through: a 500
            self.problems.append(f"{label}: 500 ({type(exc).__name__}: {str(exc)[:120]})")
            db.session.rollback()
            return None
        if response.status_code >= 500:
            self.problems.append(f"{label}: {response.status_code}")
        return response

    def sweep_get(self, rule: str, actor: str, path: str) -> int:
        """Each parameter spoiled in turn, the others as a link or form of the pages set them
        (``?format=xlsx&from=…``: an export with a bad month)."""
        names = (self.site.params.get(rule, set()) | self.reads.get(("args", rule), set())) - {"csrf_token"}
        base = self.site.values.get(rule, {})
        sent = 0
        for name in sorted(names):
            for label, value in [*EXTREMES.items(), ("a list", LIST)]:
                query = MultiDict([(k, v) for k, v in base.items() if k != name])
                for v in value if isinstance(value, list) else [value]:
                    query.add(name, v)
                self.send(f"{actor} GET {path}?{name}={label} ({dict(base)})", "GET", actor, path,
                          query_string=query)
                sent += 1
        return sent

    def sweep_post(self, rule: str, actor: str, action: str, form: Form, world) -> int:
        """Each extreme in every field of the form (and every field the view reads), a file part
        in every field, every field sent twice.

        An extreme goes into all fields at once; the fields the answer refuses next to them are
        done with it, the others get it again with the refused ones valid, until every field
        was refused next to it or the form was accepted: so each value reaches as deep as the
        others let it (an amount past the form, into the rules) in a few posts.  A refusal that
        names none of the fields left sends the extreme to each of them alone."""
        good = {name: valid_value(f, world) for name, f in form.fields.items()}
        if actor:  # the session's token now (a prefixed form carries it under its own name)
            self.tokens[actor] = self.session_token(actor)
            good.update({name: self.tokens[actor] for name in good if name.endswith("csrf_token")})
        self.before = row_counts() if actor else None
        names = [name for name in good if not name.endswith("csrf_token")]
        self.post(actor, action, {**good, **dict.fromkeys(names, "")}, "every field empty")
        names += sorted(n for n in self.reads.get(("form", rule), set()) - set(names)
                        if not n.endswith("csrf_token"))  # read by the view, not on the page
        names = [name for name in names if name != SUBMISSION]  # spoiled alone, below
        sent = 1
        for label, value in EXTREMES.items():
            left = list(names)
            while left:
                response = self.post(actor, action, {**good, **dict.fromkeys(left, value)},
                                     f"{'every field' if left == names else ', '.join(left)}={label}")
                sent += 1
                if response is None or response.status_code < 400:
                    break  # accepted (or a 500, already reported)
                body = response.get_data(as_text=True)
                marked = set(re.findall(r'id="([^"]+)-error"', body))
                refused = [name for name in left if name in marked]
                if not refused and (marked or f'action="{action}"' not in body):
                    break  # refused at a field kept valid, or the form is gone (the step was taken)
                if not refused:  # refused, naming none of them: each alone
                    for name in left if len(left) > 1 else ():
                        self.post(actor, action, {**good, name: value}, f"{name}={label}")
                        sent += 1
                    break
                left = [name for name in left if name not in refused]
        if actor and not self.keys_spoiled:  # the core reads the key before any view: one form
            self.keys_spoiled = True
            for label, value in EXTREMES.items():
                self.post(actor, action, {**good, SUBMISSION: value}, f"{SUBMISSION}={label}")
                sent += 1
        self.post(actor, action, {**good, **{n: (io.BytesIO(b"x,y\n"), "x.csv") for n in names}},
                  "a file part in every field")
        self.post(actor, action, {**good, **{n: ["2", good.get(n, "")] for n in names}},
                  "every field sent twice")
        return sent + 2

    def post(self, actor: str, action: str, data: dict, label: str):
        """``data`` posted as ``actor`` (``""``: anonymous, with the login page's token); a refusal
        (4xx) must write nothing."""
        data = {k: fresh(v) for k, v in data.items()}
        label = f"{actor or 'anonymous'} POST {action} {label}"
        if not actor:
            client = self.app.test_client()
            data["csrf_token"] = client.csrf("/login")
            try:
                response = client.post(action, data=data)
            except Exception as exc:  # noqa: BLE001 - the test app lets errors through: a 500
                self.problems.append(f"{label}: 500 ({type(exc).__name__})")
                db.session.rollback()
                return None
            if response.status_code >= 500:
                self.problems.append(f"{label}: {response.status_code}")
            return response
        data["csrf_token"] = self.tokens[actor]
        response = self.send(label, "POST", actor, action, data=data)
        after = row_counts()
        if response is not None and 400 <= response.status_code < 500 and after != self.before:
            self.problems.append(f"{label}: refused ({response.status_code}) but rows were written")
        self.before = after
        return response


def fresh(value):
    """A form value as the client sends it; a file part is read once, so each post makes its own."""
    return valid_csv() if value == "valid csv" else value


VALID = {"code": "sweep-unit", "username": "sweep.user", "display_name": "Sweep User",
         "name_zh": "清扫", "name_en": "Sweep", "title": "Sweep notice", "body": "Sweep text."}


def valid_value(f: Field, world) -> object:
    """What a person would enter: the page's value or choice, else a plausible text when the
    field is required (an optional text stays empty)."""
    known = {**VALID, **world.valid}
    wanted = known.get(f.name, known.get(f.name.rsplit("-", 1)[-1]))
    if f.kind in ("select", "radio"):
        if wanted is not None and wanted in f.options:
            return wanted
        return f.selected or next((o for o in f.options if o), "")
    if f.kind == "file":
        return "valid csv"
    if f.kind in ("checkbox", "hidden") or f.value:
        return f.value
    if wanted is not None:
        return wanted
    now = utcnow().astimezone(SHANGHAI)
    return {"date": now.date().isoformat(),
            "datetime-local": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "month": now.strftime("%Y-%m"), "number": "1", "email": "sweep@example.com",
            "tel": "13812345678", "password": PASSWORD}.get(f.kind, "Sweep text" if f.required else "")


def row_counts() -> tuple:
    tables = [t.name for t in db.metadata.sorted_tables if not t.name.startswith(NOT_COUNTED)]
    counts = db.session.execute(text("SELECT " + ", ".join(
        f"(SELECT count(*) FROM {name})" for name in tables))).one()
    db.session.rollback()  # end the read: the next count sees what the app committed since
    return tuple(counts)


def fallback_path(rule) -> str | None:
    """A path for a route no page linked to: id 1 for every ``<int:…>`` (most likely no record)."""
    values = {}
    for name in rule.arguments:
        if name in (rule.defaults or {}):
            continue
        if type(rule._converters[name]).__name__ != "IdConverter":
            return None
        values[name] = 1
    return rule.build(values, append_unknown=False)[1]


# --- the sweep ----------------------------------------------------------------------------------


def test_every_get_parameter_and_post_field_of_every_route_takes_the_extremes_without_500(
        app, net, sweep_world, monkeypatch):
    reads: dict = defaultdict(set)
    monkeypatch.setattr(app, "request_class", recording(app.request_class, reads))
    sweeper = Sweeper(app, reads)
    for actor in (*ACTORS, None):
        sweeper.crawl(actor)
    site = sweeper.site

    rules = [r for r in app.url_map.iter_rules() if r.endpoint != "static"]
    get_rules = [r for r in rules if "GET" in r.methods]
    post_rules = [r for r in rules if "POST" in r.methods]
    reached = set(site.gets)
    # the pages reached by crawling: (nearly) every GET route, as someone who may open it
    unreached = sorted(r.rule for r in get_rules if r.rule not in reached)
    assert len(unreached) <= 6, unreached  # /login, /healthz, exports and probes no page links to

    gets = 0
    for rule in get_rules:
        actor, path = site.gets.get(rule.rule, ("root", fallback_path(rule)))
        if path is None:
            continue
        path = urlsplit(path).path
        if rule.rule not in reached:  # no page links here: one plain visit tells what the view reads
            sweeper.send(f"root GET {path}", "GET", "root", path)
        gets += sweeper.sweep_get(rule.rule, actor, path)

    posts = 0
    for rule, (actor, action, form) in sorted(site.posts.items(), key=lambda i: (i[0] in LAST, i[0])):
        if rule != "/login":
            posts += sweeper.sweep_post(rule, actor, action, form, sweep_world)
    buttons = {r for r, _a in sweeper.buttons}
    for rule in post_rules:  # a route whose form no page shows (nor a button): what the view reads
        if rule.rule in site.posts or rule.rule in buttons or rule.endpoint in TEST_ONLY:
            continue
        path = fallback_path(rule)
        if path is not None:
            sweeper.send(f"root POST {path} nothing", "POST", "root", path,
                         data={"csrf_token": sweeper.tokens["root"]})
            names = reads.get(("form", rule.rule), set()) - {"csrf_token"}
            fake = Form("post", path, {n: Field(n, "text") for n in names})
            posts += sweeper.sweep_post(rule.rule, "root", path, fake, sweep_world)
    _actor, action, form = site.posts["/login"]
    posts += sweeper.sweep_post("/login", "", action, form, sweep_world)

    assert gets > 200 and posts > 500, (gets, posts)  # the sweep reached the pages and their forms
    assert {"/audit/", "/penalties/payroll", "/express/stats"} <= reached
    unseen = {r.endpoint for r in post_rules if r.rule not in site.posts and r.rule not in buttons}
    assert unseen <= TEST_ONLY, unseen  # every other POST route's form was found on a page
    assert not sweeper.problems, "\n".join(sweeper.problems[:60])


# --- the seven inputs of issue 23, one by one ---------------------------------------------------


def _field_error(page: str, name: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{re.escape(name)}-error">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1).strip()) if match else None


def _counts():
    return row_counts()


def test_issue_23_a_file_part_named_notes_on_a_new_inquiry_is_refused(app, net, client):
    client.login("amy")
    before = _counts()
    response = client.post_form("/express/new", {
        "waybill": "600123456789", "inquirer_name": "Mr Li", "inquirer_phone": "13812345678",
        "notes": (io.BytesIO(b"not a text"), "notes.txt")})
    assert response.status_code == 400
    assert "A file was sent where a text is expected." in html.unescape(response.get_data(as_text=True))
    assert _counts() == before


def _draft(net, **changes) -> dict:
    return {"user_id": str(net.amy.id), "rule_id": "EXP-P02", "unit_id": str(net.pudong.id),
            "occurred_at": "2026-11-01T10:00", "evidence": "Seen by the inspector.", **changes}


def test_issue_23_an_amount_of_1e400_on_a_new_penalty_is_refused_at_its_field(app, net, client):
    client.login("ada")
    before = _counts()
    for amount in ("1e400", "NaN", "Infinity", str(2**63), "9" * 20):
        response = client.post_form("/penalties/new", _draft(net, amount=amount))
        assert response.status_code == 400, amount
        assert _field_error(response.get_data(as_text=True), "amount") == \
            "Enter an amount such as 200 or 200.50.", amount
    assert _counts() == before
    assert db.session.scalar(select(PenaltyNotice.id)) is None


def test_issue_23_a_penalty_of_year_1_is_refused_at_its_field(app, net, client):
    client.login("ada")
    before = _counts()
    for occurred in ("0001-01-01T00:00", "9999-12-31T23:59", "1999-12-31T23:59"):
        response = client.post_form("/penalties/new", _draft(net, occurred_at=occurred))
        assert response.status_code == 400, occurred
        assert _field_error(response.get_data(as_text=True), "occurred_at") == \
            "A local time such as 2026-11-16 10:00.", occurred
    assert _counts() == before


def test_issue_23_audit_dates_of_year_1_and_9999_are_refused_with_a_message(app, net, client):
    client.login("ada")
    response = client.get("/audit/?since=0001-01-01&until=9999-12-31")
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    assert "From: A date such as 2026-11-16." in page and "To: A date such as 2026-11-16." in page
    assert 'value="0001-01-01"' in page  # what was typed comes back
    assert client.get("/audit/?since=2026-01-01&until=2026-12-31").status_code == 200


def test_issue_23_an_audit_page_before_an_id_no_column_holds_is_refused(app, net, client):
    client.login("ada")
    response = client.get("/audit/?before=99999999999999999999")
    assert response.status_code == 400
    assert "Older: A whole number from 1 to 9223372036854775807." in \
        html.unescape(response.get_data(as_text=True))
    assert client.get(f"/audit/?before={2**63 - 1}").status_code == 200  # seq is a BIGINT
    assert client.get("/audit/?unit=99999999999999999999", headers={"HX-Request": "true"}).status_code == 400


def test_issue_23_a_payroll_of_year_9999_is_refused_with_a_message(app, net, client):
    client.login("ada")
    for month in ("9999-12", "0001-01", "2101-01"):
        response = client.get(f"/penalties/payroll?month={month}")
        assert response.status_code == 400, month
        assert "A month is written like 2026-11." in html.unescape(response.get_data(as_text=True))
        assert client.get(f"/penalties/payroll/export?month={month}").status_code == 400
    assert client.get("/penalties/payroll?month=2100-12").status_code == 200  # the last month allowed
    assert client.get("/penalties/payroll?unit=99999999999999999999").status_code == 400


def test_issue_23_express_statistics_from_year_9999_are_refused_with_a_message(app, net, client):
    client.login("east_mgr")
    response = client.get("/express/stats?format=xlsx&from=9999-12")
    assert response.status_code == 400
    assert "Choose months as YYYY-MM" in html.unescape(response.get_data(as_text=True))
    assert client.get("/express/stats?from=9999-12").status_code == 400  # the page says so too
    assert client.get("/express/stats?format=xlsx&from=2100-12").status_code == 200
    assert client.get("/sla/stats.csv?from=9999-12&to=9999-12").status_code == 400


# --- the parser itself --------------------------------------------------------------------------


def test_the_core_parser_bounds_every_kind_of_value():
    from portal.plugin_api import (
        MAX_BIGINT,
        MAX_ID,
        InputError,
        parse_date,
        parse_datetime,
        parse_decimal,
        parse_id,
        parse_money,
        parse_month,
    )

    for parse, bad in ((parse_date, ["0001-01-01", "9999-12-31", "1999-12-31", "2026-02-30", "20261116"]),
                       (parse_datetime, ["0001-01-01T00:00", "2101-01-01T00:00", "2026-11-16T25:00"]),
                       (parse_month, ["9999-12", "0001-01", "2026-13", "2026-1"]),
                       (parse_money, ["1e400", "NaN", "Infinity", "-1", "1.005", str(2**63), "1e2"]),
                       (parse_id, ["0", "-0", str(MAX_ID + 1), "1e400", "NaN", "1.0"])):
        for value in bad:
            with pytest.raises(InputError):
                parse(value)
    assert parse_date("2100-12-31") == date(2100, 12, 31)
    assert parse_datetime("2026-11-16 10:00") == parse_datetime("2026-11-16T10:00:00") == \
        datetime(2026, 11, 16, 10, 0)
    assert parse_month("2000-01") == (2000, 1)
    assert parse_money("-0") == Decimal("0.00") and str(parse_money("-0")) == "0.00"
    assert parse_money("9999999999.99") == Decimal("9999999999.99")
    assert parse_decimal("2.4", places=3, minimum=Decimal("0.001")) == Decimal("2.4")
    assert parse_id(str(MAX_ID)) == MAX_ID and parse_id(str(MAX_BIGINT), maximum=MAX_BIGINT) == MAX_BIGINT
    with pytest.raises(InputError):
        parse_id(str(MAX_BIGINT + 1), maximum=MAX_BIGINT)
    with pytest.raises(InputError) as refused:
        parse_date(io.BytesIO(b"a file"))
    assert "A file was sent" in str(refused.value)


DATE, APPEAL_DAYS, FINE = "A date such as 2026-11-16.", "/admin/settings/core.appeal_days", \
    "/admin/settings/testplug.fine"


def test_typed_dates_and_numbers_of_year_1_or_past_a_column_are_refused_next_to_their_field(
        app, net, sweep_world, client):
    net.root.locale = "en"
    db.session.commit()
    client.login("root")
    before = _counts()
    soon = (date.today() + timedelta(days=2)).isoformat()
    for path, data, name, message in (
            ("/sla/calendar", {"day": "0001-01-01", "kind": "holiday"}, "day", DATE),
            ("/notices/new", {"title": "T", "body": "B", "visible_until": "9999-12-31"}, "visible_until",
             DATE),
            (APPEAL_DAYS, {"value": "3", "effective_from": "0001-01-01"}, "effective_from", DATE),
            (APPEAL_DAYS, {"value": str(2**63), "effective_from": soon}, "value", "a whole number"),
            (FINE, {"value": "1e400", "effective_from": soon}, "value", "an amount such as 200 or 200.50"),
            (FINE, {"value": "NaN", "effective_from": soon}, "value", "at most two decimal places"),
            (FINE, {"value": "9" * 20, "effective_from": soon}, "value", "must be at most 9999999999.99")):
        response = client.post_form(path, data)
        assert response.status_code == 400, (path, data)
        assert _field_error(response.get_data(as_text=True), name) == message, (path, data)
    assert _counts() == before
