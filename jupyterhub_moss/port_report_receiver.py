"""The spawner's side of job reports: a starting job tells the hub that it started, and its port.

The job's launcher (:mod:`.launcher`) posts ``{"started": true}`` as the job's first step runs,
and ``{"port": N}`` once the server listens, to ``{base_url}hub/api/batchspawner`` with the
server's own API token (batchspawner's wrapper, where an admin still uses it, posts only the
port, before the server listens). Our handler (:mod:`.handlers.port_report`) takes the reports
and calls :meth:`PortReportReceiver.report_started` and :meth:`PortReportReceiver.report_port`.
Each report wakes the waiting spawn at once: nothing waits for the next poll.

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
import time
from dataclasses import dataclass, field
from typing import Any

from tornado import web

from .log_safe import log_safe
from .waiting import wait_at_most

__all__ = ["JobReports", "PortReportReceiver"]

#: The module of batchspawner's own port-report handler, which sets any attribute a job posts.
_BATCHSPAWNER_API_MODULE = "batchspawner.api"


@dataclass
class JobReports:
    """What the job of the spawn in progress has told the hub (``time.time()`` of each report),
    and an event that wakes the spawn's waits at each one."""

    started_at: float | None = None
    port_at: float | None = None
    news: asyncio.Event = field(default_factory=asyncio.Event)

    def took(self, attribute: str) -> bool:
        """Record a report the first time only: a job cannot make the hub act on it twice."""
        if getattr(self, attribute) is not None:
            return False
        setattr(self, attribute, time.time())
        self.news.set()
        return True


class PortReportReceiver:
    """Mixin of :class:`~.lifecycle.SlurmJobLifecycle`: takes what a starting job reports (it
    started, its server's port), and nothing else. It reads the spawner's ``api_token``,
    ``port``, ``log`` and ``_log_name``.
    """

    # Set by start() for the time it waits for the job; None when no start waits.
    _job_reports: JobReports | None = None

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

        Returns False (and changes nothing) when no start of this spawner waits for one, or
        when the port was reported already.
        """
        reports = self._job_reports
        if reports is None or reports.port_at is not None:
            return False
        self.port = port
        return reports.took("port_at")

    def report_started(self) -> bool:
        """Called by the port-report handler: the job's first step runs.

        Returns False (and changes nothing) when no start of this spawner waits, or when the
        job said so already: the spawn looks at the job at most once for it.
        """
        reports = self._job_reports
        return reports is not None and reports.took("started_at")

    def token_matches(self, token: str) -> bool:
        """Whether ``token`` is this server's own API token (compared in constant time)."""
        return bool(self.api_token) and hmac.compare_digest(
            str(self.api_token).encode(), token.encode()
        )

    async def _sleep_or_report(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the job reports something meanwhile."""
        reports = self._job_reports
        if reports is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await wait_at_most(reports.news.wait(), seconds)
        reports.news.clear()
