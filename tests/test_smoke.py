"""A first end-to-end pass: log in, dashboard, notice board on and off (CORE-01, CORE-02)."""

from portal.testing import make_user


def test_core_01_login_dashboard_and_plugin_switched_off(client, tree):
    make_user("anna", (tree["region"], "staff"))
    assert client.get("/").status_code == 302
    response = client.login("anna")
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 200
    assert "east" in page.get_data(as_text=True).lower()
    assert client.get("/notices/").status_code == 200
    client.post_form("/unit", {"unit_id": tree["south"].id})
    assert client.get("/notices/").status_code == 404
