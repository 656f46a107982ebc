"""Tornado handlers that jupyterhub_moss adds to the hub, all under ``{base_url}hub/``.

- ``moss/static/…``: the vendored htmx and our stylesheet;
- ``moss/form/…``: the htmx fragments of the spawn page (see :mod:`.fragments`);
- ``moss/jobs``: the admins' page of the hub's Slurm jobs, and its live table (see
  :mod:`.jobs_page`);
- ``api/batchspawner``: the port report of a starting single-user server (see :mod:`.port_report`);
- ``spawn``: JupyterHub's own spawn page, refusing undecodable input (see :mod:`.spawn_page`).

They are added to JupyterHub's own list of page handlers, which the hub prefixes with its
``base_url``; a route of ours that JupyterHub or batchspawner also defines wins because page
handlers come before API handlers in the hub's table.

batchspawner's own ``api/batchspawner`` handler (added to JupyterHub's API handlers when
batchspawner is imported) sets every key a job posts as an attribute of the spawner. It is
taken out of the table altogether, and :func:`port_report_owner` tells which handler a hub's
table really routes that address to, so the spawner can refuse to run when it is not ours.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from jupyterhub import apihandlers as hub_apihandlers
from jupyterhub import handlers as hub_handlers
from tornado import web

from . import fragments, jobs_page, port_report, spawn_page

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
        *jobs_page.routes(URL_PREFIX),
        *port_report.routes(),
    ]


def register() -> None:
    """Put our routes in front of JupyterHub's page handlers, once, and drop batchspawner's.

    Ours come first, so where a pattern is also JupyterHub's (``/spawn``), Tornado picks ours.
    Called when the package is imported, which JupyterHub does when it resolves
    ``spawner_class`` (``"moss"`` or ``"jupyterhub_moss.MOSlurmSpawner"``), before it builds
    its handler table: an admin who never calls ``set_config`` is covered too.
    """
    drop_batchspawner_handler()
    existing = {(route[0], route[1]) for route in hub_handlers.default_handlers}
    for route in reversed(routes()):
        if (route[0], route[1]) not in existing:
            hub_handlers.default_handlers.insert(0, route)


def drop_batchspawner_handler() -> None:
    """Remove every API route but ours that would answer ``/api/batchspawner``.

    batchspawner appends its handler when it is first imported; importing it here first makes
    sure that has happened, so it cannot come back later.
    """
    import batchspawner.api  # noqa: F401  (its import is what adds the handler)

    table = hub_apihandlers.default_handlers
    table[:] = [route for route in table if not _answers_port_report(route)]


def _answers_port_report(route: Sequence[Any]) -> bool:
    pattern, handler = route[0], route[1]
    if handler is port_report.PortReportHandler:
        return False
    return _matches(pattern, port_report.ROUTE)


def _matches(pattern: Any, path: str) -> bool:
    regex = pattern if hasattr(pattern, "match") else None
    if regex is None:
        text = str(pattern)
        # Tornado anchors a route at the end the same way
        try:
            regex = re.compile(text if text.endswith("$") else text + "$")
        except re.error:
            return False  # Tornado would refuse such a table anyway
    return regex.match(path) is not None


def port_report_owner(table: Sequence[Any], hub_prefix: str) -> Any:
    """The handler class a hub's ``handlers`` table sends ``{hub_prefix}api/batchspawner`` to.

    Tornado takes the first route whose pattern matches, as this does. ``None`` if none does.
    """
    path = hub_prefix.rstrip("/") + port_report.ROUTE
    for route in table:
        if isinstance(route, (tuple, list)) and len(route) >= 2 and _matches(route[0], path):
            return route[1]
        target = getattr(route, "target", None)  # a tornado Rule/URLSpec
        matcher = getattr(route, "matcher", None)
        regex = getattr(matcher, "regex", None)
        if regex is not None and regex.match(path):
            return target
    return None


def port_report_is_ours(table: Sequence[Any], hub_prefix: str) -> bool:
    """Whether the table routes the port report to our handler (or a subclass of it)."""
    owner = port_report_owner(table, hub_prefix)
    return isinstance(owner, type) and issubclass(owner, port_report.PortReportHandler)
