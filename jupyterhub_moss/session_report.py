"""What a spawner tells the session lists about its server: "Your sessions" on the spawn page
and the admins' jobs page (:mod:`.sessions` turns it into rows).

A mixin of :class:`~.lifecycle.SlurmJobLifecycle`. It reads JupyterHub's own state of the
server, the options it was started with and the hub-wide job poller's last answer, never
Slurm itself. It also keeps how the last job ended, which the lifecycle hands it when the hub
notices (a poll, or a stop confirmed), in the spawner's saved state: JupyterHub drops the
spawner object of a stopped server, and the lists still say "time limit reached" afterwards,
and after a hub restart. :func:`user_server_facts` reads every server of a user, stopped ones
from that saved state without creating spawners.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from batchspawner import SlurmSpawner

from .context import ReportsSession
from .sessions import EndedSession, ServerFacts, ended_session
from .slurm.models import JobStatus

__all__ = ["SessionReport", "user_server_facts"]

#: The key of the last job's end in the spawner's saved state.
STATE_KEY = "moss_last_end"


def _saved_end(end: EndedSession) -> dict[str, str]:
    return {
        "job_id": end.job_id,
        "partition": end.partition,
        "summary": end.summary,
        "ended_at": end.ended_at.isoformat(),
        "state": end.state,
    }


def end_from_state(state: Mapping[str, Any] | None) -> EndedSession | None:
    """The last job's end saved in a spawner's state; None when absent or not ours."""
    saved = (state or {}).get(STATE_KEY)
    if not isinstance(saved, Mapping):
        return None
    texts = {key: saved.get(key) for key in ("job_id", "partition", "summary", "ended_at")}
    if not all(isinstance(value, str) for value in texts.values()):
        return None
    try:
        ended_at = datetime.fromisoformat(str(texts["ended_at"]))
    except ValueError:
        return None
    if ended_at.tzinfo is None:
        ended_at = ended_at.replace(tzinfo=timezone.utc)
    state_name = saved.get("state")
    return EndedSession(
        str(texts["job_id"]),
        str(texts["partition"]),
        str(texts["summary"]),
        ended_at,
        state_name if isinstance(state_name, str) else "",
    )


class SessionReport(SlurmSpawner):
    """Reads ``job_id``, ``job_partition``, ``job_poller()`` and JupyterHub's ``user``,
    ``name``, ``active``, ``ready``, ``pending``, ``user_options`` and ``orm_spawner``."""

    # Kept across clear_state, and saved with the state: the next spawn replaces it.
    _last_end: EndedSession | None = None

    def _remember_end(self, status: JobStatus | None) -> None:
        """Keep how the job ended (``status``, final), when the hub knows it."""
        if status is not None and status.finished:
            now = datetime.now(timezone.utc)
            self._last_end = ended_session(status, self.job_partition, now)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self._last_end is not None:
            state[STATE_KEY] = _saved_end(self._last_end)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._last_end = end_from_state(state) or self._last_end

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


def user_server_facts(user: Any) -> list[ServerFacts]:
    """Every server of JupyterHub's ``user`` worth a row: active ones (from their spawners), and
    stopped ones whose last job's end was saved (from the database, no spawner created)."""
    facts = []
    live = dict(getattr(user, "spawners", {}) or {})
    for name, orm_spawner in dict(getattr(user, "orm_spawners", {}) or {}).items():
        spawner = live.pop(name, None)
        if isinstance(spawner, ReportsSession):
            fact = spawner.session_facts()
        else:
            fact = _stopped_server_facts(user.name, name, orm_spawner)
        if fact is not None and (fact.active or fact.last_end is not None):
            facts.append(fact)
    # spawners not (yet) in the database: a spawn that is just starting
    facts.extend(s.session_facts() for s in live.values() if isinstance(s, ReportsSession))
    return facts


def _stopped_server_facts(user_name: str, name: str, orm_spawner: Any) -> ServerFacts | None:
    end = end_from_state(getattr(orm_spawner, "state", None))
    if end is None or getattr(orm_spawner, "server", None) is not None:
        return None  # nothing saved, or running without a spawner in memory: not ours to say
    options = getattr(orm_spawner, "user_options", None) or {}
    return ServerFacts(
        user_name=user_name,
        server_name=name or "",
        job_id="",
        status=None,
        options={k: str(v) for k, v in options.items()},
        partition=end.partition,
        last_end=end,
    )
