"""Request security: CSRF, no state change on GET, headers, cookies, htmx, error pages, health.

Every check here is what a browser or an attacker would observe from outside.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from werkzeug.routing import IntegerConverter

from plugins.notices.models import Notice
from portal.auth.models import User
from portal.extensions import db
from portal.testing import make_app, make_user
from portal.units.models import UnitPlugin

COOKIE = "portal_session"


def csp(response) -> dict[str, str]:
    value = response.headers.get("Content-Security-Policy", "")
    out = {}
    for part in value.split(";"):
        part = part.strip()
        if part:
            name, _, rest = part.partition(" ")
            out[name] = rest
    return out


def assert_security_headers(response, name: str = "") -> None:
    name = name or response.request.path
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no CSP on {name}"
    assert "unsafe-eval" not in header, name
    assert "unsafe-inline" not in header, name
    directives = csp(response)
    assert directives.get("frame-ancestors") in ("'none'", "'self'"), name
    assert "'self'" in directives.get("script-src", directives.get("default-src", "")), name
    assert directives.get("object-src") == "'none'", name
    assert response.headers.get("X-Content-Type-Options") == "nosniff", name
    assert response.headers.get("Referrer-Policy") in (
        "same-origin", "no-referrer", "strict-origin-when-cross-origin", "strict-origin"), name


def login_admin(app, tree):
    make_user("boss", (tree["company"], "admin"))
    client = app.test_client()
    assert client.login("boss").status_code == 302
    return client


def raising_view(monkeypatch, app, endpoint="core.dashboard", before=None):
    """Swap a view for one that fails half-way (the access mark is kept)."""
    original = app.view_functions[endpoint]

    def boom(*args, **kwargs):
        if before:
            before()
        raise RuntimeError("secret internals: password=hunter2 at /srv/portal/app.py")

    boom._portal_access = original._portal_access
    monkeypatch.setitem(app.view_functions, endpoint, boom)


# ---- CSRF ----------------------------------------------------------------------------------------


def test_core_01_post_without_csrf_token_is_refused(client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.get("/login")
    response = client.post("/login", data={"username": "anna", "password": "correct-horse-42"})
    assert response.status_code == 400
    assert client.get("/").status_code == 302  # not logged in
    assert_security_headers(response)
    assert "<html" in response.get_data(as_text=True)  # the portal's own error page


def test_core_01_post_with_a_token_of_another_session_is_refused(app, tree):
    make_user("anna", (tree["north"], "staff"))
    attacker, victim = app.test_client(), app.test_client()
    stolen = attacker.csrf("/login")
    victim.get("/login")
    response = victim.post("/login", data={"username": "anna", "password": "correct-horse-42",
                                           "csrf_token": stolen})
    assert response.status_code == 400


def test_core_01_logout_without_token_keeps_the_session(client, tree):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_core_01_language_switch_without_token_is_refused(client, tree):
    anna = make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    assert client.post("/language", data={"language": "en"}).status_code == 400
    db.session.expire_all()
    assert db.session.get(User, anna.id).locale is None
    assert 'lang="zh-Hans"' in client.get("/").get_data(as_text=True)


def test_core_01_htmx_post_with_csrf_header_succeeds(app, tree):
    admin = login_admin(app, tree)
    url = f"/admin/units/{tree['north'].id}/plugins/notices"
    response = admin.post_form(url, {"state": "off"}, htmx=True)
    assert response.status_code == 200
    assert "<html" not in response.get_data(as_text=True)  # the row partial, not a page
    db.session.expire_all()
    row = db.session.scalar(select(UnitPlugin).where(
        UnitPlugin.unit_id == tree["north"].id, UnitPlugin.plugin == "notices"))
    assert row is not None and row.enabled is False


def test_core_01_htmx_post_without_csrf_header_is_refused(app, tree):
    admin = login_admin(app, tree)
    url = f"/admin/units/{tree['north'].id}/plugins/notices"
    response = admin.post(url, data={"state": "off"}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    wrong = admin.post(url, data={"state": "off"},
                       headers={"HX-Request": "true", "X-CSRFToken": "forged"})
    assert wrong.status_code == 400
    db.session.expire_all()
    assert db.session.scalar(select(UnitPlugin).where(
        UnitPlugin.unit_id == tree["north"].id, UnitPlugin.plugin == "notices")) is None


def test_core_01_pages_carry_the_token_for_htmx(app, tree):
    admin = login_admin(app, tree)
    html = admin.get("/").get_data(as_text=True)
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)
    hx_headers = re.search(r"<body hx-headers='([^']+)'", html).group(1)
    assert f'"X-CSRFToken": "{meta}"' in hx_headers.replace("&#34;", '"')


@pytest.mark.parametrize("path", ["/logout", "/language", "/unit"])
def test_core_01_state_changing_routes_refuse_get(client, tree, path):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    response = client.get(path, query_string={"language": "en", "unit_id": tree["north"].id})
    assert response.status_code == 405
    assert_security_headers(response)
    assert client.get("/").status_code == 200


def test_core_01_every_post_only_route_refuses_get(app, tree):
    admin = login_admin(app, tree)
    checked = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or "GET" in rule.methods:
            continue
        values = {arg: (1 if isinstance(rule._converters[arg], IntegerConverter) else "x")
                  for arg in rule.arguments if arg in rule._converters}  # not the rule's defaults
        url = rule.build(values, append_unknown=False)[1]
        assert admin.get(url).status_code == 405, rule.rule
        checked.append(rule.endpoint)
    expected = {"auth.logout", "auth.set_language", "auth.switch_unit", "admin.user_edit"}
    assert expected <= set(checked)


def _snapshot() -> dict[str, list]:
    """Every table's rows, except the ones a read legitimately writes: session activity and
    the audit trail (an export is itself audited)."""
    db.session.expire_all()
    skip = {"user_sessions", "login_attempts"}
    out = {}
    for table in db.metadata.sorted_tables:
        if table.name in skip or table.name.startswith("audit_"):
            continue
        out[table.name] = sorted(map(repr, db.session.execute(select(table)).all()))
    db.session.commit()
    return out


def test_core_01_get_never_changes_state(app, tree):
    admin = login_admin(app, tree)
    admin.get("/")
    before = _snapshot()
    visited = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments or rule.endpoint == "static":
            continue
        response = admin.get(rule.rule, query_string={"language": "en", "unit_id": tree["club"].id,
                                                      "state": "off"})
        assert response.status_code < 500, rule.rule
        visited += 1
    for path in (f"/admin/users/{db.session.scalar(select(User.id))}",
                 f"/admin/units/{tree['north'].id}",
                 f"/admin/units/{tree['north'].id}/plugins"):
        assert admin.get(path).status_code == 200, path
    assert visited >= 8
    assert _snapshot() == before


# ---- headers -------------------------------------------------------------------------------------


def test_core_01_security_headers_on_every_kind_of_response(app, client, tree, monkeypatch):
    make_user("anna", (tree["north"], "staff"))
    responses = {
        "login": client.get("/login"),
        "healthz": client.get("/healthz"),
        "static css": client.get("/static/css/portal.css"),
        "static js": client.get("/static/" + app.jinja_env.globals["htmx_js"]),
        "redirect": client.get("/"),
        "404": client.get("/no/such/page"),
        "405": client.get("/logout"),
        "400": client.post("/login", data={}),
        "401 htmx": client.get("/", headers={"HX-Request": "true"}),
    }
    client.login("anna")
    responses["dashboard"] = client.get("/")
    responses["403"] = client.get("/admin/users")
    responses["404 authed"] = client.get("/notices/999999")
    raising_view(monkeypatch, app)
    responses["500"] = client.get("/")
    for name, response in responses.items():
        assert_security_headers(response, name)
    assert responses["static css"].status_code == 200
    assert responses["500"].status_code == 500


def test_core_01_csp_forbids_inline_script_and_style_so_pages_have_none(app, tree):
    admin = login_admin(app, tree)
    for path in ("/login", "/", "/admin/users", "/admin/units", "/notices/", "/account/password"):
        response = admin.get(path) if path != "/login" else app.test_client().get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "<style" not in html, path
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert "hx-on" not in html, path
        assert "javascript:" not in html, path


def test_core_01_htmx_is_configured_without_eval(client):
    html = client.get("/login").get_data(as_text=True)
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'', html).group(1)
    assert '"allowEval": false' in config
    assert '"historyCacheSize": 0' in config
    assert '"includeIndicatorStyles": false' in config
    assert re.search(r'<script src="/static/vendor/htmx-2\.0\.\d+\.min\.js"', html)
    assert "unpkg" not in html and "cdn" not in html.lower()


def test_core_01_authenticated_pages_are_not_cached(app, tree):
    admin = login_admin(app, tree)
    for path in ("/", "/admin/users", "/notices/", "/account/password", "/panels/units"):
        headers = {"HX-Request": "true"} if path.startswith("/panels") else {}
        response = admin.get(path, headers=headers)
        assert response.status_code == 200, path
        assert "no-store" in response.headers.get("Cache-Control", ""), path
    assert "no-store" in admin.get("/no/such/page").headers.get("Cache-Control", "")


def test_core_01_login_page_is_not_cached(client):
    assert "no-store" in client.get("/login").headers.get("Cache-Control", "")


def set_cookie_header(response) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")]
    assert headers, "no session cookie set"
    return headers[-1]


def test_core_01_session_cookie_is_httponly_and_lax(client, tree):
    make_user("anna", (tree["north"], "staff"))
    for response in (client.get("/login"), client.login("anna")):
        header = set_cookie_header(response)
        assert "HttpOnly" in header
        assert "SameSite=Lax" in header
        assert "Secure" not in header  # plain http in development: Secure would break login
        assert "Expires" not in header  # a browser-session cookie: no "remember me"


def test_core_01_secure_cookie_when_configured(database_url):
    other = make_app(database_url, SESSION_COOKIE_SECURE=True)
    try:
        header = set_cookie_header(other.test_client().get("/login", base_url="https://localhost"))
        assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
    finally:
        with other.app_context():
            db.engine.dispose()


def test_core_01_secure_cookie_from_portal_secure_cookies(database_url, monkeypatch):
    monkeypatch.setenv("PORTAL_SECURE_COOKIES", "1")
    other = make_app(database_url)
    try:
        assert other.config["SESSION_COOKIE_SECURE"] is True
        header = set_cookie_header(other.test_client().get("/login", base_url="https://localhost"))
        assert "Secure" in header
        https = other.test_client().get("/login", base_url="https://localhost")
        assert "max-age" in https.headers.get("Strict-Transport-Security", "")
    finally:
        with other.app_context():
            db.engine.dispose()


# ---- htmx ----------------------------------------------------------------------------------------


def test_core_01_pages_vary_on_hx_request(app, tree):
    admin = login_admin(app, tree)
    for response in (app.test_client().get("/login"), admin.get("/"), admin.get("/notices/"),
                     admin.get("/admin/users", headers={"HX-Request": "true"})):
        assert "HX-Request" in response.headers.get("Vary", "")


def test_core_01_same_template_full_page_or_partial(app, tree):
    admin = login_admin(app, tree)
    page = admin.get("/admin/users").get_data(as_text=True)
    partial = admin.get("/admin/users", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" in page and "<html" not in partial
    assert "boss" in partial and "boss" in page


def test_core_01_htmx_without_session_gets_401_and_hx_redirect(client, tree):
    response = client.get("/panels/units", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")
    assert "Location" not in response.headers
    plain = client.get("/panels/units")
    assert plain.status_code == 302
    assert plain.headers["Location"].startswith("/login")
    assert "HX-Redirect" not in plain.headers


def test_core_01_htmx_login_redirect_returns_to_the_page_not_the_fragment(client, tree):
    """After logging in again the user lands on the page they were on, not a bare partial."""
    response = client.get("/panels/units", headers={
        "HX-Request": "true", "HX-Current-URL": "http://localhost/notices/?ended=1"})
    assert response.status_code == 401
    target = urlsplit(response.headers["HX-Redirect"])
    assert target.path == "/login"
    assert parse_qs(target.query)["next"] == ["/notices/?ended=1"]
    foreign = client.get("/panels/units", headers={
        "HX-Request": "true", "HX-Current-URL": "https://evil.com/x"})
    assert "evil" not in foreign.headers["HX-Redirect"]
    # and the login honours it
    token = client.csrf(response.headers["HX-Redirect"])
    make_user("anna", (tree["north"], "staff"))
    done = client.post(response.headers["HX-Redirect"], data={
        "username": "anna", "password": "correct-horse-42", "csrf_token": token})
    assert done.headers["Location"] == "/notices/?ended=1"


def test_core_01_htmx_post_without_session_gets_401(client, tree):
    token = client.csrf("/login")
    response = client.post("/logout", headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


# ---- error pages ---------------------------------------------------------------------------------


def choose_english(client) -> None:
    assert client.post_form("/language", {"language": "en"}).status_code == 302


def test_core_01_error_pages_default_to_chinese(app, client, tree, monkeypatch):
    make_user("anna", (tree["north"], "staff"))
    bad = client.post("/login", data={})
    assert bad.status_code == 400
    client.login("anna")
    forbidden = client.get("/admin/users")
    missing = client.get("/no/such/page")
    raising_view(monkeypatch, app)
    broken = client.get("/")
    for response, code in ((bad, 400), (forbidden, 403), (missing, 404), (broken, 500)):
        assert response.status_code == code
        html = response.get_data(as_text=True)
        assert '<html lang="zh-Hans">' in html, code
        assert f'<p class="error-code">{code}</p>' in html


def test_core_01_error_pages_in_english_when_chosen(app, client, tree, monkeypatch):
    anna = make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    choose_english(client)
    db.session.expire_all()
    assert db.session.get(User, anna.id).locale == "en"  # stored per user
    cases = {403: client.get("/admin/users"), 404: client.get("/no/such/page")}
    token = client.csrf()
    cases[400] = client.post("/language", data={"language": "zh_Hans", "csrf_token": token + "x"})
    raising_view(monkeypatch, app)
    cases[500] = client.get("/")
    titles = {400: "Bad request", 403: "Not allowed", 404: "Not found", 500: "Something went wrong"}
    for code, response in cases.items():
        assert response.status_code == code
        html = response.get_data(as_text=True)
        assert '<html lang="en">' in html, code
        assert titles[code] in html, code


def test_core_01_language_choice_follows_the_user_to_a_new_login(app, tree):
    make_user("anna", (tree["north"], "staff"))
    tablet = app.test_client()
    tablet.login("anna")
    choose_english(tablet)
    desktop = app.test_client()
    desktop.login("anna")
    assert '<html lang="en">' in desktop.get("/").get_data(as_text=True)
    assert '<html lang="en">' in desktop.get("/nope").get_data(as_text=True)


def test_core_01_anonymous_language_choice_applies_to_error_pages(client):
    choose_english(client)
    html = client.get("/no/such/page").get_data(as_text=True)
    assert '<html lang="en">' in html and "Not found" in html


def test_core_01_500_shows_no_stack_trace_and_saves_nothing(app, client, tree, monkeypatch, caplog):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")

    def half_write():
        db.session.add(User(username="ghost", display_name="Ghost", password_hash="x"))
        db.session.flush()

    raising_view(monkeypatch, app, before=half_write)
    response = client.get("/")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    for leak in ("Traceback", "RuntimeError", "hunter2", "/srv/portal", 'File "', "werkzeug"):
        assert leak not in html
    assert "<html" in html
    db.session.expire_all()
    assert db.session.scalar(select(User).where(User.username == "ghost")) is None
    assert any("unhandled error" in r.getMessage() and r.exc_info for r in caplog.records)


def test_core_01_500_for_htmx_is_still_safe(app, client, tree, monkeypatch):
    make_user("anna", (tree["north"], "staff"))
    client.login("anna")
    raising_view(monkeypatch, app, endpoint="core.units_panel")
    response = client.get("/panels/units", headers={"HX-Request": "true"})
    assert response.status_code == 500
    assert "Traceback" not in response.get_data(as_text=True)
    assert_security_headers(response)


# ---- health --------------------------------------------------------------------------------------


def test_core_01_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.is_json
    assert response.get_json()["database"] == "ok"
    assert response.get_json()["status"] == "ok"


def test_core_01_healthz_503_when_the_query_fails(app, client, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(db.session, "execute", down)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"
    assert "connection refused" not in response.get_data(as_text=True)
    assert_security_headers(response)


@pytest.mark.parametrize("url", [
    "sqlite:///{tmp}/no/such/dir/portal.sqlite3",
    "postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=2",
])
def test_core_01_healthz_503_when_the_database_is_unreachable(tmp_path, url):
    broken = make_app(url.format(tmp=tmp_path))
    try:
        response = broken.test_client().get("/healthz")
        assert response.status_code == 503
        assert response.get_json() == {"status": "unavailable", "database": "unreachable"}
        # the login page still answers with a page, and the headers are set
        assert_security_headers(response)
    finally:
        with broken.app_context():
            db.engine.dispose()




def test_core_01_database_outage_for_a_logged_in_user_gives_a_safe_503_page(
        app, client, tree, monkeypatch):
    """Even the error page cannot load the user: still a page, no trace, headers set."""
    from sqlalchemy.orm import Session

    make_user("anna", (tree["north"], "staff"))
    client.login("anna")

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused by 10.0.0.5"))

    monkeypatch.setattr(Session, "execute", down)
    for response in (client.get("/"), client.get("/notices/", headers={"HX-Request": "true"})):
        assert response.status_code == 503
        html = response.get_data(as_text=True)
        assert "<html" in html and "503" in html
        for leak in ("Traceback", "OperationalError", "10.0.0.5", "SELECT 1"):
            assert leak not in html
        assert_security_headers(response, "outage")
        assert "no-store" in response.headers.get("Cache-Control", "")


def test_an_id_in_the_url_too_large_for_the_database_is_404_not_500(app, tree):
    admin = login_admin(app, tree)
    for path in ("/notices/99999999999999999999", f"/notices/{2**31}", f"/admin/units/{2**40}/plugins"):
        assert admin.get(path).status_code == 404, path
    assert admin.get(f"/notices/{2**31 - 1}").status_code == 404  # in range, no such notice


def test_a_nul_byte_in_input_is_refused_before_any_view_writes(app, tree):
    admin = login_admin(app, tree)
    before = db.session.scalar(select(func.count()).select_from(Notice))
    response = admin.post_form("/notices/new", {"title": "a\x00b", "body": "text"})
    assert response.status_code == 400
    assert admin.get("/notices/?ended=\x001").status_code == 400
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Notice)) == before
