"""The Slurm layer: running commands, parsing their output, and the hub-wide shared views.

- :mod:`.commands`: :class:`SlurmRunner`, async, argument lists only, errors with context;
- pure parsers, each with the exact command arguments it reads: :mod:`.partitions` (``sinfo``),
  :mod:`.reservations`, :mod:`.job_status` (``squeue``, ``sbatch --test-only``), built on
  :mod:`.times` (durations, timestamps), :mod:`.nodes` (GRES, node states, host lists) and
  :mod:`.scontrol` (``Key=value`` records);
- :mod:`.models`: the immutable data they produce;
- :mod:`.view`: :class:`ClusterView`, one background-refreshed :class:`ClusterSnapshot` per hub;
- :mod:`.jobs`: :class:`JobStatusPoller`, one ``squeue`` for every tracked job;
- :mod:`.estimates`: :class:`StartEstimator`, cached ``sbatch --test-only`` as the user;
- :mod:`.refresher`: the background refresh the view and the poller share (single flight,
  backoff, idle, close);
- :mod:`.services`: the one registry of the process's shared view, pollers and estimators, and
  their shutdown.

Nothing here runs a command at import time.
"""

from .commands import SlurmCommandError, SlurmRunner, SlurmTimeout, expand_prefix
from .estimates import StartEstimator
from .jobs import JobStatusPoller
from .models import JOB_GONE, JobStatus, PartitionInfo, Reservation, StartEstimate
from .view import ClusterSnapshot, ClusterUnavailable, ClusterView

__all__ = [
    "JOB_GONE",
    "ClusterSnapshot",
    "ClusterUnavailable",
    "ClusterView",
    "JobStatus",
    "JobStatusPoller",
    "PartitionInfo",
    "Reservation",
    "SlurmCommandError",
    "SlurmRunner",
    "SlurmTimeout",
    "StartEstimate",
    "StartEstimator",
    "expand_prefix",
]
