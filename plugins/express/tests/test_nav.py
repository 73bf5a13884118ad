"""The navigation marks one current page: the item whose address is the longest prefix."""

import re


def test_only_the_most_specific_nav_item_is_current(client, net):
    client.login("east_mgr")
    for path, label in (("/express/stats", "Inquiry statistics"), ("/express/", "Inquiries"),
                        ("/express/123456", "Inquiries")):
        page = client.get(path).get_data(as_text=True)
        nav = page[page.index('class="site-nav"'):page.index("</nav>")]
        current = re.findall(r'<a href="[^"]*" aria-current="page">([^<]*)</a>', nav)
        assert current == [label], (path, current)
