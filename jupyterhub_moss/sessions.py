"""The servers a user runs on Slurm, as rows a person reads: "Your sessions" on the spawn page
and the admins' jobs page.

Plain functions of plain data. The spawner gathers a :class:`ServerFacts` per server from what
the hub already knows (JupyterHub's own state, the options the server was started with, and the
last answer of the hub-wide job poller); nothing here asks Slurm anything, so a page that shows
sessions costs slurmctld nothing however many people look at it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote

from .job_reports import ended_job_summary, final_exit_code, pending_message
from .live_refresh import visible_poll_trigger
from .slurm.models import JobStatus

__all__ = [
    "SORT_KEYS",
    "EndedSession",
    "ServerFacts",
    "SessionRow",
    "describe_time_left",
    "ended_session",
    "session_row",
    "session_rows",
    "sort_rows",
]


@dataclass(frozen=True)
class EndedSession:
    """How a server's last job ended, kept by its spawner (in memory) after the hub noticed."""

    job_id: str
    partition: str
    summary: str  # e.g. "TIMEOUT (time limit reached)"
    ended_at: datetime  # when the hub noticed, UTC
    state: str = ""


def ended_session(status: JobStatus, partition: str, now: datetime) -> EndedSession:
    """The record a spawner keeps of its job's end, from the poller's final status."""
    summary = ended_job_summary(status.state, status.reason, final_exit_code(status))
    return EndedSession(status.job_id, partition, summary, now, status.state)


@dataclass(frozen=True)
class ServerFacts:
    """One server of a user, as the hub knows it: gathered by the spawner, no Slurm call."""

    user_name: str
    server_name: str  # "" for the default server
    job_id: str  # "" when no job is known (not started, or still submitting)
    status: JobStatus | None  # the job poller's last answer; None when it has none yet
    options: Mapping[str, str] = field(default_factory=dict)  # the saved user_options
    active: bool = False  # JupyterHub: running, or a spawn or stop in progress
    ready: bool = False  # JupyterHub: the server answers and the spawn is over
    pending: str = ""  # JupyterHub's pending action: "spawn", "stop" or ""
    open_url: str = ""  # the server's URL ("" when JupyterHub has none)
    partition: str = ""  # the partition the job was submitted to
    last_end: EndedSession | None = None
    last_activity: datetime | None = None  # JupyterHub's, UTC


@dataclass(frozen=True)
class SessionRow:
    """What one row shows. Texts are plain (the templates escape them)."""

    user_name: str
    server_name: str
    server_label: str
    state: str  # "Queued", "Starting", "Running", "Stopping", "Ended"
    state_style: str  # Bootstrap badge classes
    detail: str  # the pending reason in words, how the job ended...
    partition: str
    node: str
    cpus: str
    gpus: str
    memory: str
    job_id: str
    started: str  # ISO 8601, "" when not started
    started_text: str  # "14:05" in the hub's time zone, with the day when not today
    ends: str  # ISO 8601, "" when unknown or unlimited
    time_left: str  # "1:23:45 left", "" when not running or unlimited
    seconds_left: int | None
    warning: bool  # time left is under the warning threshold
    idle: str  # "12 min" since JupyterHub's last activity, "" when unknown
    idle_seconds: int | None
    open_url: str
    stop_url: str  # JupyterHub's REST API address of the server, "" when nothing to stop

    @property
    def stop_confirm(self) -> str:
        job = f" and cancel Slurm job {self.job_id}" if self.job_id else ""
        return f"Stop {self.server_label}{job}? Unsaved work in it is lost."


def describe_time_left(seconds: float) -> str:
    """Slurm's own way (squeue's TIME_LEFT): ``"1:02:03"``, ``"2-01:00:00"`` past a day."""
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}" if days else clock


def _idle_text(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return "under a minute"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days"


def stop_api_url(hub_prefix: str, user_name: str, server_name: str) -> str:
    """JupyterHub's REST API address that stops a server (``DELETE``)."""
    user = quote(user_name, safe="")
    if not server_name:
        return f"{hub_prefix}api/users/{user}/server"
    return f"{hub_prefix}api/users/{user}/servers/{quote(server_name, safe='')}"


# What a row says of its state: (label, badge classes).
_QUEUED = ("Queued", "text-bg-info")
_STARTING = ("Starting", "text-bg-info")
_RUNNING = ("Running", "text-bg-success")
_STOPPING = ("Stopping", "text-bg-secondary")
_ENDED = ("Ended", "text-bg-secondary")
_ENDING = ("Ending", "text-bg-warning")


def _state(facts: ServerFacts, now: datetime) -> tuple[tuple[str, str], str]:
    """(label and style, details) from JupyterHub's view first, then Slurm's."""
    status = facts.status
    if not facts.active:
        end = facts.last_end
        return _ENDED, (f"Job {end.job_id}: {end.summary}" if end else "")
    if facts.pending == "stop":
        return _STOPPING, ""
    if status is None:
        if facts.job_id:
            return _STARTING, "Waiting for Slurm's first answer about the job"
        return _STARTING, "Submitting the job to Slurm" if facts.pending else ""
    if status.waiting:
        return _QUEUED, pending_message(status, now)
    if status.finished:  # the hub notices at its next poll
        summary = ended_job_summary(status.state, status.reason, final_exit_code(status))
        return _ENDING, f"Job {status.job_id}: {summary}"
    if not facts.ready:
        return _STARTING, "Starting Jupyter in the job"
    return _RUNNING, ""


def _resource(options: Mapping[str, str], name: str, unset: str) -> str:
    value = str(options.get(name, "") or "").strip()
    return value if value and value != "0" else unset


def session_row(
    facts: ServerFacts, now: datetime, *, warning_seconds: float, hub_prefix: str
) -> SessionRow:
    """The row of one server. ``now`` is timezone-aware."""
    (state, style), detail = _state(facts, now)
    status = facts.status if facts.active else None
    running = status is not None and status.running
    started = status.started if running else None
    ends = status.ends if running else None
    # a COMPLETING job's end is already past: nothing is left, not less than nothing
    seconds_left = max(int((ends - now).total_seconds()), 0) if ends is not None else None
    idle_seconds = None
    if facts.last_activity is not None:
        idle_seconds = max(int((now - _aware(facts.last_activity)).total_seconds()), 0)
    end = facts.last_end if not facts.active else None
    return SessionRow(
        user_name=facts.user_name,
        server_name=facts.server_name,
        server_label=f"server {facts.server_name}" if facts.server_name else "default server",
        state=state,
        state_style=style,
        detail=detail,
        partition=facts.partition
        or (end.partition if end else "")
        or str(facts.options.get("partition", "")),
        node=status.node if status is not None else "",
        cpus=_resource(facts.options, "nprocs", "—"),
        gpus=_resource(facts.options, "ngpus", "—"),
        memory=_resource(facts.options, "memory", "default"),
        job_id=facts.job_id or (end.job_id if end else ""),
        started=started.isoformat() if started else "",
        started_text=_clock_text(started, now) if started else "",
        ends=ends.isoformat() if ends else "",
        time_left=f"{describe_time_left(seconds_left)} left" if seconds_left is not None else "",
        seconds_left=seconds_left,
        warning=seconds_left is not None and seconds_left < warning_seconds,
        idle=_idle_text(idle_seconds) if facts.active else "",
        idle_seconds=idle_seconds if facts.active else None,
        open_url=facts.open_url if facts.active and facts.ready else "",
        stop_url=stop_api_url(hub_prefix, facts.user_name, facts.server_name)
        if facts.active and facts.pending != "stop"
        else "",
    )


def _clock_text(moment: datetime, now: datetime) -> str:
    local, today = moment.astimezone(), now.astimezone().date()
    return f"{local:%H:%M}" if local.date() == today else f"{local:%a %d %b %H:%M}"


def _aware(moment: datetime) -> datetime:
    # JupyterHub keeps naive UTC datetimes in its database
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def session_rows(
    facts: Iterable[ServerFacts],
    now: datetime,
    *,
    warning_seconds: float,
    hub_prefix: str,
) -> list[SessionRow]:
    """Rows for ``facts``: active servers first (default server first), then ended ones."""
    ordered = sorted(facts, key=lambda f: (not f.active, f.user_name, f.server_name))
    return [
        session_row(f, now, warning_seconds=warning_seconds, hub_prefix=hub_prefix) for f in ordered
    ]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return -1.0


#: The admins' table's sortable columns: URL name → (heading, key of a row).
SORT_KEYS: dict[str, tuple[str, Callable[[SessionRow], object]]] = {
    "user": ("User", lambda r: (r.user_name, r.server_name)),
    "server": ("Server", lambda r: (r.server_name, r.user_name)),
    "partition": ("Partition", lambda r: r.partition),
    "node": ("Node", lambda r: r.node),
    "cpus": ("CPUs", lambda r: _number(r.cpus)),
    "gpus": ("GPUs", lambda r: _number(r.gpus)),
    "job": ("Job", lambda r: _number(r.job_id)),
    "state": ("State", lambda r: r.state),
    "time_left": ("Time left", lambda r: (r.seconds_left is None, r.seconds_left or 0)),
    "idle": ("Idle", lambda r: (r.idle_seconds is None, r.idle_seconds or 0)),
}


def sort_rows(rows: list[SessionRow], key: str, descending: bool) -> list[SessionRow]:
    """``rows`` by one of :data:`SORT_KEYS` (an unknown key sorts by user); stable."""
    _, by = SORT_KEYS.get(key, SORT_KEYS["user"])
    return sorted(rows, key=by, reverse=descending)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SessionsView:
    """A live list of sessions: the rows and how the browser refreshes them."""

    rows: list[SessionRow]
    refresh_seconds: int

    @property
    def hx_trigger(self) -> str:
        # and right after a Stop from the list was answered: the button's answer bubbles up
        # from the rows (the list's own request does not pass through them)
        return visible_poll_trigger(
            self.refresh_seconds, "htmx:afterRequest from:#moss-session-rows"
        )

    @property
    def live(self) -> bool:
        """Whether the list refreshes itself: while it shows a server that may change."""
        return self.refresh_seconds > 0 and any(row.state != "Ended" for row in self.rows)


def sessions_view(
    facts: Iterable[ServerFacts],
    now: datetime,
    *,
    warning_minutes: int,
    refresh_seconds: int,
    hub_prefix: str,
) -> SessionsView:
    rows = session_rows(facts, now, warning_seconds=warning_minutes * 60, hub_prefix=hub_prefix)
    return SessionsView(rows, refresh_seconds)
