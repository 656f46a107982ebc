"""What a browser with htmx would request from a spawn page, read from the page's HTML.

Only what the benchmark needs: the URL of an element's ``hx-get`` with the values of its
closest form (``hx-include="closest form"``), the elements polled with ``every Ns``, and those
loaded at once (``load`` trigger). The reference's page has no htmx; these find nothing there.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urljoin

from bs4 import BeautifulSoup, Tag

_LOAD_RE = re.compile(r"(^|,)\s*load\b")
_EVERY_RE = re.compile(r"\bevery\s+(\d+(?:\.\d+)?)s\b")


def form_values(form: Tag) -> list[tuple[str, str]]:
    """The (name, value) pairs the form would submit, as a browser serialises them."""
    values: list[tuple[str, str]] = []
    for field in form.find_all(["input", "select", "textarea"]):
        name = field.get("name")
        if not name or field.has_attr("disabled"):
            continue
        if field.name == "select":
            chosen = field.find("option", selected=True) or field.find("option")
            if chosen is not None:
                values.append((name, chosen.get("value", chosen.get_text())))
        elif field.name == "textarea":
            values.append((name, field.get_text()))
        elif field.get("type", "text").lower() in ("radio", "checkbox"):
            if field.has_attr("checked"):
                values.append((name, field.get("value", "on")))
        elif field.get("type", "text").lower() not in ("submit", "button", "file"):
            values.append((name, field.get("value", "")))
    return values


def _request_url(page_url: str, element: Tag) -> str:
    url = urljoin(page_url, str(element["hx-get"]))
    form = element.find_parent("form")
    if form is None or "closest form" not in str(element.get("hx-include", "")):
        return url
    query = urlencode(form_values(form))
    return f"{url}{'&' if '?' in url else '?'}{query}" if query else url


def load_requests(page_url: str, html: str) -> list[str]:
    """The GETs htmx sends as soon as the page is shown (``hx-trigger`` with ``load``)."""
    soup = BeautifulSoup(html, "html.parser")
    return [
        _request_url(page_url, element)
        for element in soup.find_all(attrs={"hx-get": True})
        if _LOAD_RE.search(str(element.get("hx-trigger", "")))
    ]


def polled_request(page_url: str, html: str, contains: str) -> tuple[str, float] | None:
    """(URL, interval in seconds) of the polled element whose ``hx-get`` contains ``contains``."""
    soup = BeautifulSoup(html, "html.parser")
    for element in soup.find_all(attrs={"hx-get": True}):
        match = _EVERY_RE.search(str(element.get("hx-trigger", "")))
        if match and contains in str(element["hx-get"]):
            return _request_url(page_url, element), float(match.group(1))
    return None
