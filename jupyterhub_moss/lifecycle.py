"""The Slurm job behind a single-user server: submit, wait, poll, stop, progress.

PLACEHOLDER: being written (issue 6); batchspawner's own lifecycle is used until then.
"""

from __future__ import annotations


class SlurmJobLifecycle:
    """Mixed into MOSlurmSpawner in front of batchspawner's SlurmSpawner."""
