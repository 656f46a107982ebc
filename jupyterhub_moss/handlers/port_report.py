"""``POST {base_url}hub/api/batchspawner``: a starting single-user server reports to the hub.

The job's launcher (:mod:`jupyterhub_moss.launcher`, or batchspawner's wrapper
``batchspawner-singleuser`` in environments set up for it) posts here with the server's own API
token. batchspawner's own handler at this address sets *every* key of the body as an attribute
of the spawner (``exec_prefix``, ``cmd``, ``batch_submit_cmd``...), and the token that may call
it sits in the user's job. This handler shadows it and accepts two reports only:

- ``{"started": true}``: the job has started (its first step runs). The spawn then looks at the
  job at once instead of at its next poll. Taken once per spawn, while the job is not yet
  known to run, so a job cannot make the hub ask Slurm again and again.
- ``{"port": N}``, N an integer from 1 to 65535: the server listens on port N. Taken once per
  spawn, while it waits for a port.

Each must be a JSON object with that one key, from the API token of the very server being
started (the token of another server, of the user, or of another user changes nothing).
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


#: What a report body may say: exactly one of these keys.
REPORT_KEYS = ("port", "started")
_EXPECTED = '{"port": N} or {"started": true}'


def parse_job_report(body: bytes) -> int | None:
    """The port of a port report, None for ``{"started": true}``; otherwise a
    :class:`tornado.web.HTTPError` 400 saying what is wrong."""
    try:
        data: Any = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise web.HTTPError(400, f"The body must be JSON: {_EXPECTED}") from error
    if not isinstance(data, dict):
        raise web.HTTPError(400, f"The body must be a JSON object: {_EXPECTED}")
    others = sorted(str(key) for key in data if key not in REPORT_KEYS)
    if others:
        shown = ", ".join(repr(key[:40]) for key in others[:10])
        raise web.HTTPError(400, f"Only 'port' or 'started' may be reported; refused: {shown}")
    if len(data) != 1:
        raise web.HTTPError(400, f"Report one thing at a time: {_EXPECTED}")
    if "started" in data:
        if data["started"] is not True:
            raise web.HTTPError(400, "'started' can only be true")
        return None
    return parse_port(data["port"])


def parse_port(port: Any) -> int:
    """A reported port: an integer from 1 to 65535 (else a 400)."""
    # bool is an int in Python: true must not become port 1
    if not isinstance(port, int) or isinstance(port, bool):
        raise web.HTTPError(400, "'port' must be an integer")
    if not MIN_PORT <= port <= MAX_PORT:
        raise web.HTTPError(400, f"'port' must be between {MIN_PORT} and {MAX_PORT}")
    return port


class PortReportHandler(APIHandler):
    """Accept ``{"port": N}`` or ``{"started": true}`` from the token of the server being
    started, and nothing else."""

    @web.authenticated
    async def post(self) -> None:
        port = parse_job_report(self.request.body)
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
        if port is None:
            self._take(spawner, "report_started", (), "This server's job is not waiting to start")
            self.log.info("The job of %s reported that it started", log_safe(spawner._log_name))
            self.write_taken("start recorded")
            return
        self._take(spawner, "report_port", (port,), "This server is not waiting for a port")
        self.log.info("%s reported port %d", log_safe(spawner._log_name), port)
        self.write_taken("port recorded")

    @staticmethod
    def _take(spawner: Any, method: str, args: tuple, refusal: str) -> None:
        take = getattr(spawner, method, None)
        if take is None or not take(*args):
            raise web.HTTPError(409, refusal)

    def write_taken(self, message: str) -> None:
        self.set_status(201)
        self.write({"message": message})


def _token_of(spawner: Any, token: str) -> bool:
    matches = getattr(spawner, "token_matches", None)
    return bool(token) and matches is not None and matches(token)


def routes() -> list[tuple]:
    """Our routes, relative to ``{base_url}hub`` (put in front of JupyterHub's)."""
    return [(ROUTE, PortReportHandler)]
