"""The spawn page's htmx fragments: ``GET {base_url}hub/moss/form/{fragment}/{user}/{server}``.

Each answers one named block of ``moss_form.html`` (see
:data:`~jupyterhub_moss.form.FRAGMENT_BLOCKS`) for the values the browser sent in the query
string. They are page handlers of the hub:

- no login → 403, never a redirect to the login page (htmx would swap the login page in);
- another user's form only with JupyterHub's ``servers`` scope on that server (admins);
- GET only, so JupyterHub's XSRF rules let them through; htmx still sends the token header;
- whatever the query holds, the answer is a fragment: bad values are dropped, never a 500.
"""

from __future__ import annotations

from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from ..context import RendersSpawnForm
from ..form import FRAGMENT_BLOCKS


class FormFragmentHandler(BaseHandler):
    """One fragment of the spawn form of ``user_name``'s server ``server_name``."""

    async def get(self, fragment: str, user_name: str, server_name: str = "") -> None:
        await self._render(fragment=fragment, user_name=user_name, server_name=server_name or "")

    @needs_scope("servers")
    async def _render(self, fragment: str, user_name: str, server_name: str) -> None:
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, "No such user")
        # Reading the form must not create a server: use the named server only if it exists.
        # Any spawner of the user has the same configuration.
        if server_name and server_name in user.orm_spawners:
            spawner = user.spawners[server_name]
        else:
            spawner = user.spawner
        if not isinstance(spawner, RendersSpawnForm):
            raise web.HTTPError(404, "This hub does not use MOSlurmSpawner")
        html = await spawner.render_form_fragment(
            fragment,
            server_name,
            self.request.query_arguments,
            xsrf_token=self.xsrf_token.decode("ascii"),
            hub_prefix=self.hub.base_url,
        )
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(html)


def routes(url_prefix: str) -> list[tuple]:
    """The fragment routes, relative to the hub's prefix (``{base_url}hub``)."""
    fragments = "|".join(FRAGMENT_BLOCKS)
    return [(rf"{url_prefix}/form/({fragments})/([^/]+)/([^/]*)", FormFragmentHandler, {})]
