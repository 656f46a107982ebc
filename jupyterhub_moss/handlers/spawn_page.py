"""JupyterHub's spawn page, refusing undecodable input with a 400 instead of a 500.

JupyterHub's own ``SpawnHandler`` decodes every query and form value as UTF-8 before the
spawner sees it, and answers invalid bytes (``?nprocs=%FF``) with a bare 500. This subclass checks
the bytes first and names the field; everything else is JupyterHub's handler, unchanged.
"""

from __future__ import annotations

from jupyterhub.handlers.pages import SpawnHandler
from tornado import web


def undecodable_field(arguments: dict[str, list[bytes]]) -> str | None:
    """The first argument whose name or value is not UTF-8, or None."""
    for name, values in arguments.items():
        try:
            for value in values:
                value.decode("utf-8")
        except UnicodeDecodeError:
            return name
    return None


class MossSpawnHandler(SpawnHandler):
    async def prepare(self) -> None:
        await super().prepare()
        for arguments in (self.request.query_arguments, self.request.body_arguments):
            name = undecodable_field(arguments)
            if name is not None:
                raise web.HTTPError(400, f"{name}: not valid UTF-8 text")


def routes() -> list[tuple]:
    return [
        (r"/spawn", MossSpawnHandler),
        (r"/spawn/([^/]+)", MossSpawnHandler),
        (r"/spawn/([^/]+)/([^/]+)", MossSpawnHandler),
    ]
