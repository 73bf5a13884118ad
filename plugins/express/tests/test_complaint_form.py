"""The complaint form offers the people of the chosen unit (htmx refreshes the field)."""

import re


def _people(page: str) -> set[str]:
    field = page[page.index('id="person-field"'):]
    field = field[:field.index("</select>")]
    return set(re.findall(r'\(([a-z_]+)\)', field))


def test_the_person_field_lists_the_people_of_the_chosen_unit(client, net):
    client.login("east_mgr")
    everyone = _people(client.get("/express/complaints/new").get_data(as_text=True))
    assert {"amy", "pete", "bob"} <= everyone
    page = client.get(f"/express/complaints/people?unit_id={net.pudong.id}",
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    assert _people(page) == {"amy", "pete"}
    # a unit outside the area, or garbage: everyone in the area, nobody from elsewhere
    for value in (str(net.tianhe.id), "x", "99999999999999"):
        page = client.get(f"/express/complaints/people?unit_id={value}").get_data(as_text=True)
        assert _people(page) == everyone and "tia" not in _people(page)
