"""``POST {base_url}hub/api/batchspawner``: a starting single-user server reports its port.

The job runs batchspawner's wrapper (``batchspawner-singleuser``), which picks a free port on
the node and posts ``{"port": N}`` here with the server's own API token before starting Jupyter.
batchspawner's own handler at this address sets *every* key of the body as an attribute of the
spawner (``exec_prefix``, ``cmd``, ``batch_submit_cmd``...), and the token that may call it sits
in the user's job. This handler shadows it and accepts one thing only:

- a JSON object whose only key is ``port``, an integer from 1 to 65535;
- from the API token of the very server being started (the token of another server, of the
  user, or of another user changes nothing);
- while that server's spawn is waiting for its port.

Anything else is refused (400, 403 or 409) and nothing changes.
"""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from ..log_safe import log_safe

ROUTE = r"/api/batchspawner"
MIN_PORT, MAX_PORT = 1, 65535


def parse_port_report(body: bytes) -> int:
    """The port of a report body, or :class:`tornado.web.HTTPError` 400 saying what is wrong."""
    try:
        data: Any = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise web.HTTPError(400, 'The body must be JSON: {"port": N}') from error
    if not isinstance(data, dict):
        raise web.HTTPError(400, 'The body must be a JSON object: {"port": N}')
    others = sorted(str(key) for key in data if key != "port")
    if others:
        shown = ", ".join(repr(key[:40]) for key in others[:10])
        raise web.HTTPError(400, f"Only 'port' may be reported; refused: {shown}")
    port = data.get("port")
    # bool is an int in Python: true must not become port 1
    if not isinstance(port, int) or isinstance(port, bool):
        raise web.HTTPError(400, "'port' must be an integer")
    if not MIN_PORT <= port <= MAX_PORT:
        raise web.HTTPError(400, f"'port' must be between {MIN_PORT} and {MAX_PORT}")
    return port


class PortReportHandler(APIHandler):
    """Accept ``{"port": N}`` from the token of the server being started, and nothing else."""

    @web.authenticated
    async def post(self) -> None:
        port = parse_port_report(self.request.body)
        user = self.current_user
        token = self.get_auth_token() or ""
        spawners = getattr(user, "spawners", None)  # a service's token has no servers
        spawner = None
        for candidate in (spawners or {}).values():
            if _token_of(candidate, token):
                spawner = candidate
                break
        if spawner is None:
            raise web.HTTPError(403, "Only a server's own token may report its port")
        report = getattr(spawner, "report_port", None)
        if report is None or not report(port):
            raise web.HTTPError(409, "This server is not waiting for a port")
        self.log.info("%s reported port %d", log_safe(spawner._log_name), port)
        self.set_status(201)
        self.write({"message": "port recorded"})


def _token_of(spawner: Any, token: str) -> bool:
    matches = getattr(spawner, "token_matches", None)
    return bool(token) and matches is not None and matches(token)


def routes() -> list[tuple]:
    """Our routes, relative to ``{base_url}hub`` (put in front of JupyterHub's)."""
    return [(ROUTE, PortReportHandler)]
