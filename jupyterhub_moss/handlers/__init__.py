"""Tornado handlers that jupyterhub_moss adds to the hub, all under ``{base_url}hub/``.

- ``moss/static/…``: the vendored htmx and our stylesheet;
- ``moss/form/…``: the htmx fragments of the spawn page (see :mod:`.fragments`);
- ``api/batchspawner``: the port report of a starting single-user server (see :mod:`.port_report`).

They are added to JupyterHub's own list of page handlers, which the hub prefixes with its
``base_url``; a route of ours that JupyterHub or batchspawner also defines wins because page
handlers come before API handlers in the hub's table.
"""

from __future__ import annotations

import os

from jupyterhub import handlers as hub_handlers
from tornado import web

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")
URL_PREFIX = "/moss"


class StaticHandler(web.StaticFileHandler):
    """The vendored htmx and our stylesheet."""


def routes() -> list[tuple]:
    """Every route of the package, relative to the hub's prefix (``{base_url}hub``)."""
    table: list[tuple] = [(rf"{URL_PREFIX}/static/(.*)", StaticHandler, {"path": STATIC_DIR})]
    try:
        from . import fragments
    except ImportError:  # the page's fragments are not written yet
        pass
    else:
        table.extend(fragments.routes(URL_PREFIX))
    try:
        from . import port_report
    except ImportError:
        pass
    else:
        table.extend(port_report.routes())
    return table


def register() -> None:
    """Add our routes in front of JupyterHub's page handlers, once."""
    existing = {route[0] for route in hub_handlers.default_handlers}
    for route in reversed(routes()):
        if route[0] not in existing:
            hub_handlers.default_handlers.insert(0, route)
