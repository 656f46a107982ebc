"""Which query spawns start at once and which wait for the user's click (handlers.spawn_page).

The browser's Fetch Metadata headers say who made it send the request; pages cannot set them.
"""

from __future__ import annotations

import pytest

from jupyterhub_moss.handlers.spawn_page import why_ask_first

HUB = "/jupyter/hub/"
HOME = "https://hub.example.org/jupyter/hub/home"


def headers(site: str | None, dest: str | None = "document", referer: str | None = None):
    sent = {"Sec-Fetch-Site": site, "Sec-Fetch-Dest": dest, "Referer": referer}
    return {k: v for k, v in sent.items() if v is not None}


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(headers("none"), id="address bar or bookmark"),
        pytest.param(headers("none", dest=None), id="address bar, no Sec-Fetch-Dest"),
        pytest.param(headers("same-origin", referer=HOME), id="link on the hub's home page"),
        pytest.param(
            headers("same-origin", referer="https://hub.example.org/jupyter/hub/spawn?x=1"),
            id="link on the spawn page",
        ),
        pytest.param(headers("Same-Origin", referer=HOME), id="header values are not case-bound"),
    ],
)
def test_the_user_or_the_hub_asked_so_it_starts_at_once(sent):
    assert why_ask_first(sent, HUB) is None


@pytest.mark.parametrize(
    ("sent", "came_from"),
    [
        (headers("cross-site", referer="https://evil.example.com/"), "another site"),
        (headers("cross-site"), "another site"),
        (headers("same-site", referer=HOME), "another site on the same domain"),
        (
            headers("same-site", referer="https://evil.example.org/"),
            "another site on the same domain",
        ),
        (
            headers("same-origin", referer="https://hub.example.org/jupyter/user/mallory/x.html"),
            "a page on this server that is not one of the hub's own",
        ),
        (
            headers("same-origin", referer="https://hub.example.org/jupyter/services/x/"),
            "a page on this server that is not one of the hub's own",
        ),
        (headers("same-origin"), "a page on this server that is not one of the hub's own"),
        (
            headers(
                "same-origin",
                referer="https://hub.example.org/jupyter/hub/login?next=%2Fjupyter%2Fhub%2Fspawn",
            ),
            "a page on this server that is not one of the hub's own",
        ),
        (
            headers("same-origin", referer="https://hub.example.org/jupyter/hub/login"),
            "a page on this server that is not one of the hub's own",
        ),
        (
            headers("same-origin", dest="iframe", referer=HOME),
            "a page that embeds or fetches the hub's pages",
        ),
        (
            headers("same-origin", dest="empty", referer=HOME),
            "a page that embeds or fetches the hub's pages",
        ),
        (headers("cross-site", dest="image"), "a page that embeds or fetches the hub's pages"),
        (headers("none", dest="iframe"), "a page that embeds or fetches the hub's pages"),
        (
            headers(None, dest=None),
            "a browser or program that does not say where its links come from",
        ),
        (
            headers(None, dest=None, referer=HOME),
            "a browser or program that does not say where its links come from",
        ),
        (headers("something-new"), "another site"),
    ],
)
def test_anything_else_waits_for_a_click_and_says_where_it_came_from(sent, came_from):
    assert why_ask_first(sent, HUB) == came_from


def test_a_referer_outside_the_base_url_is_not_the_hub():
    sent = headers("same-origin", referer="https://hub.example.org/hub/home")
    assert why_ask_first(sent, HUB) is not None
