"""Old home of the Slurm parsers, kept importable while other modules move to the new ones.

The parsers now live by what they read: :mod:`.times` (durations, timestamps), :mod:`.nodes`
(GRES, node states, host lists), :mod:`.partitions` (``sinfo``), :mod:`.scontrol`
(``Key=value`` records), :mod:`.reservations` and :mod:`.job_status` (``squeue``,
``sbatch --test-only``). Only the names still imported from here are re-exported; import from
the new modules instead, and remove this module once nothing imports it (issue 12).
"""

from __future__ import annotations

from .job_status import parse_squeue, parse_test_only, squeue_args
from .nodes import node_state_usable
from .partitions import SINFO_ARGS, parse_sinfo
from .reservations import RESERVATION_ARGS, parse_reservations, usable_reservations
from .scontrol import parse_scontrol_fields
from .times import parse_slurm_time

__all__ = [
    "RESERVATION_ARGS",
    "SINFO_ARGS",
    "node_state_usable",
    "parse_reservations",
    "parse_scontrol_fields",
    "parse_sinfo",
    "parse_slurm_time",
    "parse_squeue",
    "parse_test_only",
    "squeue_args",
    "usable_reservations",
]
