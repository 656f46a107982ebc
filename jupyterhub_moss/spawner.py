"""MOSlurmSpawner: the JupyterHub face of the package. It stays thin and asks the other modules."""

from __future__ import annotations

from batchspawner import SlurmSpawner
from traitlets import Dict


class MOSlurmSpawner(SlurmSpawner):
    """A Slurm spawner configured by the admin's partitions, with a live spawn page."""

    partitions = Dict(
        help="""
        The partitions users may spawn on, by Slurm partition name.

        Each value is a dict with the fields ``architecture``, ``description``, ``gpu``,
        ``max_ngpus``, ``max_nprocs``, ``max_runtime``, ``simple`` and ``jupyter_environments``.
        Limits left out are read from Slurm.
        """,
    ).tag(config=True)
