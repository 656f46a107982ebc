"""What a spawner tells the session lists about its server: "Your sessions" on the spawn page
and the admins' jobs page (:mod:`.sessions` turns it into rows).

A mixin of :class:`~.lifecycle.SlurmJobLifecycle`. It reads JupyterHub's own state of the
server, the options it was started with and the hub-wide job poller's last answer, never
Slurm itself; and it keeps how the last job ended, which the lifecycle hands it when the hub
notices (a poll, or a stop confirmed), so the lists can say "time limit reached" after the
server is gone.
"""

from __future__ import annotations

from datetime import datetime, timezone

from batchspawner import SlurmSpawner

from .sessions import EndedSession, ServerFacts, ended_session
from .slurm.models import JobStatus

__all__ = ["SessionReport"]


class SessionReport(SlurmSpawner):
    """Reads ``job_id``, ``job_partition``, ``job_poller()`` and JupyterHub's ``user``,
    ``name``, ``active``, ``ready``, ``pending``, ``user_options`` and ``orm_spawner``."""

    # In memory only, and kept across clear_state: a hub restart forgets it, like the list of
    # servers JupyterHub holds in memory.
    _last_end: EndedSession | None = None

    def _remember_end(self, status: JobStatus | None) -> None:
        """Keep how the job ended (``status``, final), when the hub knows it."""
        if status is not None and status.finished:
            now = datetime.now(timezone.utc)
            self._last_end = ended_session(status, self.job_partition, now)

    def session_facts(self) -> ServerFacts:
        """This server as "Your sessions" and the admins' jobs page show it: JupyterHub's state
        and the job poller's last answer, read without asking Slurm anything."""
        job_id = self.job_id or ""
        orm_spawner = getattr(self, "orm_spawner", None)
        return ServerFacts(
            user_name=self.user.name,
            server_name=self.name or "",
            job_id=job_id,
            status=self.job_poller().latest(job_id) if job_id else None,
            options={k: str(v) for k, v in (self.user_options or {}).items()},
            active=bool(self.active),
            ready=bool(self.ready),
            pending=self.pending or "",
            open_url=self.user.server_url(self.name or ""),
            partition=self.job_partition,
            last_end=self._last_end,
            last_activity=getattr(orm_spawner, "last_activity", None),
        )
