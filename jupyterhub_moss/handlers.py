"""Tornado handlers that jupyterhub_moss adds to the hub, under ``{base_url}hub/moss/``."""

from __future__ import annotations

import os

from jupyterhub import handlers as hub_handlers
from tornado import web

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
URL_PREFIX = "/moss"


class StaticHandler(web.StaticFileHandler):
    """The vendored htmx and our stylesheet, with long-lived caching keyed by content hash."""


def routes() -> list[tuple]:
    """Every route of the package, relative to the hub's prefix (``{base_url}hub``)."""
    return [
        (rf"{URL_PREFIX}/static/(.*)", StaticHandler, {"path": STATIC_DIR}),
    ]


def register() -> None:
    """Add our routes to JupyterHub's page handlers, once."""
    existing = {route[0] for route in hub_handlers.default_handlers}
    for route in routes():
        if route[0] not in existing:
            hub_handlers.default_handlers.append(route)
