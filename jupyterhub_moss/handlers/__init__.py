"""Tornado handlers that jupyterhub_moss adds to the hub, all under ``{base_url}hub/``.

- ``moss/static/…``: the vendored htmx and our stylesheet;
- ``moss/form/…``: the htmx fragments of the spawn page (see :mod:`.fragments`);
- ``api/batchspawner``: the port report of a starting single-user server (see :mod:`.port_report`);
- ``spawn``: JupyterHub's own spawn page, refusing undecodable input (see :mod:`.spawn_page`).

They are added to JupyterHub's own list of page handlers, which the hub prefixes with its
``base_url``; a route of ours that JupyterHub or batchspawner also defines wins because page
handlers come before API handlers in the hub's table.
"""

from __future__ import annotations

import os

from jupyterhub import handlers as hub_handlers
from tornado import web

from . import fragments, port_report, spawn_page

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")
URL_PREFIX = "/moss"


class StaticHandler(web.StaticFileHandler):
    """The vendored htmx and our stylesheet."""


def routes() -> list[tuple]:
    """Every route of the package, relative to the hub's prefix (``{base_url}hub``)."""
    return [
        (rf"{URL_PREFIX}/static/(.*)", StaticHandler, {"path": STATIC_DIR}),
        *spawn_page.routes(),
        *fragments.routes(URL_PREFIX),
        *port_report.routes(),
    ]


def register() -> None:
    """Put our routes in front of JupyterHub's page handlers, once.

    Ours come first, so where a pattern is also JupyterHub's (``/spawn``) or batchspawner's
    (``/api/batchspawner``), Tornado picks ours.
    """
    existing = {(route[0], route[1]) for route in hub_handlers.default_handlers}
    for route in reversed(routes()):
        if (route[0], route[1]) not in existing:
            hub_handlers.default_handlers.insert(0, route)
