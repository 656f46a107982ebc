"""JupyterHub's spawn page, with two defences in front of JupyterHub's own handler.

- **Undecodable input is a 400, not a 500.** JupyterHub decodes every query and form value as
  UTF-8 before the spawner sees it, and answers invalid bytes (``?nprocs=%FF``) with a bare 500.
  We check the bytes first and name the field.
- **A link from elsewhere does not start a server.** JupyterHub starts a server on a plain
  ``GET /hub/spawn?partition=…``, which carries no XSRF token: any site could link a user into
  a server running options it chose (an ``environment_path`` in the attacker's folder runs the
  attacker's programs as the user). The browser tells us who made it send the request, in the
  Fetch Metadata headers (``Sec-Fetch-Site``, ``Sec-Fetch-Dest``) that pages cannot forge. When
  they do not show the user (address bar, bookmark) or the hub's own pages asking, the query is
  taken off the request before JupyterHub sees it, so JupyterHub shows the form instead of
  spawning; the form is filled in from the link, checked, and says where the link came from.
  One click on Start (a POST with its XSRF token) then submits.

Everything else is JupyterHub's handler, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from jupyterhub.handlers.pages import SpawnHandler
from tornado import web

from ..context import LinkToConfirm
from ..log_safe import log_safe

#: Query keys JupyterHub itself reads on the spawn page; any other key is a spawn option.
RESERVED_QUERY_KEYS = frozenset({"next", "display_name"})


def undecodable_field(arguments: dict[str, list[bytes]]) -> str | None:
    """The first argument whose name or value is not UTF-8, or None."""
    for name, values in arguments.items():
        try:
            for value in values:
                value.decode("utf-8")
        except UnicodeDecodeError:
            return name
    return None


def why_ask_first(headers: Mapping[str, str], hub_prefix: str) -> str | None:
    """None when the browser says the user or the hub's own pages asked for this query spawn;
    otherwise where the request came from, for the form's note ("This link came from …").

    - ``Sec-Fetch-Site: none``: typed in the address bar, a bookmark, or opened from another
      program. The user asked.
    - ``same-origin`` with a ``Referer`` under ``{base_url}hub/``: a link on the hub's own pages.
      Not trusted: a page elsewhere on the origin, such as a file served by a user's server under
      ``{base_url}user/``; a missing ``Referer`` (a page can drop it with ``rel=noreferrer``); and
      a hub page that forwards to a ``next`` URL from its own query (the login page: a link to
      ``/hub/login?next=/hub/spawn%3F…`` would otherwise spawn right after the user logs in).
    - ``same-site`` or ``cross-site``: another origin, hence another site or host.
    - No header at all: an old browser, a hub reached over plain HTTP by name (browsers send
      Fetch Metadata only to HTTPS and loopback origins), or a script with the user's cookie. We
      cannot tell who asked, so we ask; scripts should use the REST API with a token.
    - Not a top-level page (``Sec-Fetch-Dest: iframe``, ``empty`` for ``fetch()``…): the page
      that embeds or fetches it asked.
    """
    site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
    dest = (headers.get("Sec-Fetch-Dest") or "").strip().lower()
    if not site:
        return "a browser or program that does not say where its links come from"
    if dest and dest != "document":
        return "a page that embeds or fetches the hub's pages"
    if site == "none":
        return None
    if site == "same-origin":
        return (
            None
            if _is_hub_page(headers.get("Referer") or "", hub_prefix)
            else ("a page on this server that is not one of the hub's own")
        )
    if site == "same-site":
        return "another site on the same domain"
    return "another site"


def _is_hub_page(referer: str, hub_prefix: str) -> bool:
    url = urlsplit(referer)
    forwards = "next" in parse_qs(url.query) or url.path.rstrip("/").endswith("/login")
    return url.path.startswith(hub_prefix) and not forwards


class MossSpawnHandler(SpawnHandler):
    #: Set by :meth:`prepare` when a query spawn waits for the user's click; the options form
    #: (:func:`jupyterhub_moss.form.render_form`) reads it through ``spawner.handler``.
    moss_link_to_confirm: LinkToConfirm | None = None

    async def prepare(self) -> None:
        await super().prepare()
        for arguments in (self.request.query_arguments, self.request.body_arguments):
            name = undecodable_field(arguments)
            if name is not None:
                raise web.HTTPError(400, f"{name}: not valid UTF-8 text")
        # Anonymous requests are sent to the login page, query and all; they are judged after.
        if self.request.method == "GET" and self.current_user is not None:
            self._hold_back_untrusted_query_spawn()

    def _hold_back_untrusted_query_spawn(self) -> None:
        query = self.request.query_arguments
        options = {k: v for k, v in query.items() if k not in RESERVED_QUERY_KEYS}
        if not options:
            return
        came_from = why_ask_first(self.request.headers, self.hub.base_url)
        if came_from is None:
            return
        self.moss_link_to_confirm = LinkToConfirm(
            {k: [v.decode("utf-8") for v in values] for k, values in options.items()},
            came_from,
        )
        # JupyterHub spawns when the query has options: with none left, it shows the form.
        kept = {k: v for k, v in query.items() if k in RESERVED_QUERY_KEYS}
        self.request.query_arguments = dict(kept)
        self.request.arguments = dict(kept)
        self.log.warning(
            "Query spawn by %s held for the user to confirm: it came from %s",
            log_safe(self.current_user.name),
            came_from,
        )


def routes() -> list[tuple]:
    return [
        (r"/spawn", MossSpawnHandler),
        (r"/spawn/([^/]+)", MossSpawnHandler),
        (r"/spawn/([^/]+)/([^/]+)", MossSpawnHandler),
    ]
