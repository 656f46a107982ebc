"""Plain data that the Slurm layer hands to the rest of the package.

Everything here is immutable and built only by the parsers of :mod:`jupyterhub_moss.slurm`
(:mod:`.partitions`, :mod:`.reservations`, :mod:`.job_status`, :mod:`.job_history`) and the job
poller; nothing in it runs a command.
Times are timezone-aware UTC datetimes; durations are seconds, with ``None`` meaning "no limit"
(Slurm's ``infinite``/``UNLIMITED``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .job_history import EndedJob


@dataclass(frozen=True)
class PartitionInfo:
    """One partition as Slurm reports it, all of its node groups folded together.

    For a partition whose nodes differ, the per-node figures are those of the *largest* node:
    a single-node job can use the largest node, so that is the most the form may offer.
    """

    name: str
    state: str  # "up", "down", "drain" or "inactive", as sinfo's %a prints it
    is_default: bool
    nodes_idle: int
    nodes_total: int
    cpus_idle: int
    cpus_total: int
    cpus_per_node: int  # largest node
    memory_per_node_mb: int  # largest node
    max_runtime: int | None  # seconds; None = no limit
    # type -> count, the most any one node has of that type; GPUs without a type are under ""
    gpus_per_node: dict[str, int] = field(default_factory=dict)
    gpus_total: int = 0
    gpus_used: int | None = None  # None when Slurm did not say
    node_states: tuple[str, ...] = ()  # e.g. ("idle", "mixed", "drained")
    # most GPUs of all types together on one node (a node may carry several types)
    gpus_per_node_total: int = 0
    # type -> GPUs of that type on all the partition's nodes, and how many of them jobs use
    # (from sinfo's GresUsed; empty when Slurm did not say)
    gpus_total_by_type: dict[str, int] = field(default_factory=dict)
    gpus_used_by_type: dict[str, int] = field(default_factory=dict)

    @property
    def max_gpus_per_node(self) -> int:
        """Most GPUs (any type) one job can get on one node."""
        return max(self.gpus_per_node_total, max(self.gpus_per_node.values(), default=0))


@dataclass(frozen=True)
class Reservation:
    name: str
    state: str  # ACTIVE / INACTIVE
    start: datetime | None
    end: datetime | None
    users: tuple[str, ...]  # as listed; a leading "-" means "excluded"
    accounts: tuple[str, ...]
    partition: str | None
    nodes: str
    flags: tuple[str, ...]


#: Not a Slurm state: slurmctld no longer knows the job (checked twice), e.g. it ended more
#: than ``MinJobAge`` ago, and the accounting database (``sacct``) has no final state for it:
#: the site has none, it failed, or it never heard of the job.
JOB_GONE = "GONE"

# Slurm's long job states, grouped by what a spawner makes of them.
WAITING_STATES = frozenset(
    {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "RESIZING", "RESV_DEL_HOLD"}
)
ACTIVE_STATES = frozenset({"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "SUSPENDED"})


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: str  # Slurm's long state name: PENDING, RUNNING, COMPLETED, FAILED, ... or JOB_GONE
    reason: str  # "None" when Slurm has nothing to say
    node: str  # batch host (else first allocated node); "" while pending
    expected_start: datetime | None  # only while pending and when Slurm knows
    # How it ended, from sacct, for a job squeue had forgotten; then ``state`` and ``reason``
    # are sacct's too. None for anything squeue answered, and for JOB_GONE.
    ended: EndedJob | None = None
    # When the job began running (squeue's %S once it is no longer waiting and was given a
    # node; it stays set after the job ended). None while waiting, and for a job that never ran.
    started: datetime | None = None
    # When Slurm will end the job at its time limit (squeue's %e), only while it is active
    # (ACTIVE_STATES); None for a job without a time limit, unknown, or not active. An admin's
    # ``scontrol update TimeLimit=`` moves it; the next poll sees the new value. For a
    # COMPLETING job it is when its run ended, already past: "time left" is then nothing.
    ends: datetime | None = None

    @property
    def waiting(self) -> bool:
        """Queued, not started yet."""
        return self.state in WAITING_STATES

    @property
    def running(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def finished(self) -> bool:
        """Ended in any way (COMPLETED, FAILED, CANCELLED, TIMEOUT, ..., or gone)."""
        return not (self.waiting or self.running)


@dataclass(frozen=True)
class StartEstimate:
    start: datetime
    cpus: int
    nodes: str
    partition: str | None = None

    def starts_now(self, now: datetime, tolerance: float = 60.0) -> bool:
        """Whether the job would start at once (Slurm's estimate is ``now`` plus a few seconds)."""
        return (self.start - now).total_seconds() <= tolerance
