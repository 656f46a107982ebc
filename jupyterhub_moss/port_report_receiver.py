"""The spawner's side of port reports: a starting server tells the hub its port, and only that.

The job runs batchspawner's wrapper, which posts the port it picked to
``{base_url}hub/api/batchspawner`` with the server's own API token. Our handler
(:mod:`.handlers.port_report`) takes the report and calls :meth:`PortReportReceiver.report_port`.
batchspawner's own handler at that address would set *every* key the job posts as an attribute
of the spawner; it is taken out of the hub's table, and refused here should it be reached anyway.
(That the running hub routes the address to our handler is checked by the hub-facing
:meth:`.lifecycle.SlurmJobLifecycle.check_port_report_route`; this module knows no hub.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import sys
from typing import Any

from tornado import web

from .log_safe import log_safe

__all__ = ["PortReportReceiver"]

#: The module of batchspawner's own port-report handler, which sets any attribute a job posts.
_BATCHSPAWNER_API_MODULE = "batchspawner.api"


class PortReportReceiver:
    """Mixin of :class:`~.lifecycle.SlurmJobLifecycle`: takes the port a starting server
    reports, and nothing else. It reads the spawner's ``api_token``, ``port``, ``log`` and
    ``_log_name``.
    """

    # Set by start() for the time it waits for a port; None when no start waits.
    _port_reported: asyncio.Event | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        # batchspawner's port-report handler sets every key a job posts on the spawner
        # (exec_prefix, cmd...). It is taken out of the hub's table (handlers.register); should
        # it ever be reached anyway, it changes nothing here.
        if sys._getframe(1).f_globals.get("__name__") == _BATCHSPAWNER_API_MODULE:
            self.log.error(
                "Refused batchspawner's port report setting %r on %s: only jupyterhub_moss's "
                "handler may take port reports",
                log_safe(name, 60),
                log_safe(self._log_name),
            )
            raise web.HTTPError(403, "This hub takes port reports through jupyterhub_moss only")
        super().__setattr__(name, value)

    def report_port(self, port: int) -> bool:
        """Called by the port-report handler: the job's server listens on ``port``.

        Returns False (and changes nothing) when no start of this spawner waits for one.
        """
        event = self._port_reported
        if event is None or event.is_set():
            return False
        self.port = port
        event.set()
        return True

    def token_matches(self, token: str) -> bool:
        """Whether ``token`` is this server's own API token (compared in constant time)."""
        return bool(self.api_token) and hmac.compare_digest(
            str(self.api_token).encode(), token.encode()
        )

    async def _sleep_or_port(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the port is reported meanwhile."""
        event = self._port_reported
        if event is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
