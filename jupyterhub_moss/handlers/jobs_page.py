"""The admins' jobs page: ``GET {base_url}hub/moss/jobs``, and its live table
``GET {base_url}hub/moss/jobs/table?sort=…&order=…`` (the ``jobs_table`` block of
``moss_jobs.html``).

"Which notebooks hold the GPUs?": every server of this hub that runs on Slurm, with its user,
partition, node, resources, job, state, time left and idle time. Only for JupyterHub's
``admin:servers`` scope; an admin whose scope is limited (to a group, say) sees only the servers
it covers. The rows come from the spawners the hub holds in memory and the hub-wide job poller's
last answers (:mod:`~jupyterhub_moss.sessions`): viewing, sorting and refreshing the page never
runs a Slurm command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from jupyterhub.handlers import BaseHandler
from tornado import web

from .._version import __version__
from ..form.templates import render_block, template_environment
from ..live_refresh import visible_poll_trigger
from ..session_report import user_server_facts
from ..sessions import SORT_KEYS, ServerFacts, SessionRow, session_rows, sort_rows

TEMPLATE_NAME = "moss_jobs.html"
#: The table's columns, in order; all but memory sort.
COLUMNS = (
    "user",
    "server",
    "partition",
    "node",
    "cpus",
    "gpus",
    "memory",
    "job",
    "state",
    "time_left",
    "idle",
)
_NUMERIC = frozenset({"cpus", "gpus", "idle"})
#: JupyterHub's page.html frames our HTML, so an admin's own page.html still applies.
_FRAME = '{% extends "page.html" %}{% block main %}{{ moss_main|safe }}{% endblock main %}'


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    sortable: bool
    numeric: bool
    url: str  # the table sorted by this column (descending when it is already ascending)
    aria_sort: str  # "ascending", "descending" or ""
    arrow: str


@dataclass(frozen=True)
class JobsView:
    rows: list[SessionRow]
    sort: str
    descending: bool
    hub_prefix: str
    refresh_seconds: int

    @property
    def summary(self) -> str:
        active = sum(1 for row in self.rows if row.state != "Ended")
        return f"{active} active server{'s' if active != 1 else ''}"

    @property
    def hx_trigger(self) -> str:
        return visible_poll_trigger(self.refresh_seconds)

    def table_url(self, sort: str | None = None, descending: bool | None = None) -> str:
        query = urlencode(
            {
                "sort": sort or self.sort,
                "order": "desc"
                if (self.descending if descending is None else descending)
                else "asc",
            }
        )
        return f"{self.hub_prefix}moss/jobs/table?{query}"

    def static_url(self, name: str) -> str:
        return f"{self.hub_prefix}moss/static/{name}?v={quote(__version__)}"

    @property
    def columns(self) -> list[Column]:
        columns = []
        for key in COLUMNS:
            sortable = key in SORT_KEYS
            label = SORT_KEYS[key][0] if sortable else "Memory"
            current = key == self.sort
            # a click on the sorted column flips it; on another, sorts it ascending
            url = self.table_url(key, not self.descending if current else False) if sortable else ""
            aria = ("descending" if self.descending else "ascending") if current else ""
            arrow = ("▼" if self.descending else "▲") if current else ""
            columns.append(Column(key, label, sortable, key in _NUMERIC, url, aria, arrow))
        return columns


def _covers(may_see: Any, user: Any, server_name: str) -> bool:
    orm_spawner = user.orm_spawners.get(server_name)
    if orm_spawner is not None:
        return bool(may_see(orm_spawner, kind="server"))
    return bool(may_see(user.orm_user, kind="user"))


def _sort_arguments(handler: web.RequestHandler) -> tuple[str, bool]:
    """The sort the browser asked for; anything unknown is the default (user, ascending)."""
    sort = handler.get_query_argument("sort", "user")
    order = handler.get_query_argument("order", "asc")
    return (sort if sort in SORT_KEYS else "user"), order == "desc"


class JobsPageHandler(BaseHandler):
    """The page (``table=False``) or its table alone (``table=True``, the htmx fragment)."""

    def initialize(self, table: bool = False) -> None:
        super().initialize()
        self.table_only = table

    async def get(self) -> None:
        if self.current_user is None and not self.table_only:
            # The page sends people to log in. The fragment answers 403 (_render): htmx
            # would swap a login page into the table.
            self.redirect(self.get_login_url())
            return
        await self._render()

    async def _render(self) -> None:
        # Not needs_scope: it accepts only the unfiltered scope, and an admin of one group
        # should see that group's servers (the rows are filtered below).
        if "admin:servers" not in self.parsed_scopes:
            raise web.HTTPError(403, "This page needs JupyterHub's admin:servers scope")
        view = self._view()
        env = template_environment(())
        if self.table_only:
            html = render_block(env, "jobs_table", view, TEMPLATE_NAME)
        else:
            main = render_block(env, "jobs_page", view, TEMPLATE_NAME)
            html = await self._framed(main)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(html)

    def _view(self) -> JobsView:
        sort, descending = _sort_arguments(self)
        may_see = self.get_scope_filter("admin:servers")
        facts: list[ServerFacts] = []
        for user in list(self.users.values()):
            facts.extend(
                fact for fact in user_server_facts(user) if _covers(may_see, user, fact.server_name)
            )
        # The admin's settings, read from a spawner of the hub's configuration.
        configured = getattr(self.current_user, "spawner", None)
        warning = int(getattr(configured, "session_warning_minutes", 15))
        refresh = int(getattr(configured, "availability_refresh_interval", 30))
        rows = session_rows(
            facts,
            datetime.now(timezone.utc),
            warning_seconds=warning * 60,
            hub_prefix=self.hub.base_url,
        )
        return JobsView(
            sort_rows(rows, sort, descending), sort, descending, self.hub.base_url, refresh
        )

    async def _framed(self, main: str) -> str:
        frame = self.settings.get("moss_jobs_frame")
        if frame is None:
            frame = self.settings["jinja2_env"].from_string(_FRAME)
            self.settings["moss_jobs_frame"] = frame
        namespace = dict(self.template_namespace)
        namespace["xsrf_token"] = self.xsrf_token.decode("ascii")
        return await frame.render_async(moss_main=main, **namespace)


def routes(url_prefix: str) -> list[tuple]:
    """The page and its table, relative to the hub's prefix (``{base_url}hub``)."""
    return [
        (rf"{url_prefix}/jobs", JobsPageHandler, {"table": False}),
        (rf"{url_prefix}/jobs/table", JobsPageHandler, {"table": True}),
    ]
