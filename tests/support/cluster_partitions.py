"""The partitions of dev/cluster, as the hubs of the tests and of the benchmarks describe them.

dev/cluster writes the same three partitions into slurm.conf in both its layouts: cpu (the
default, 1 day), gpu (12 h, on the node with gpu:fake:2) and debug (1 h), all on nodes of 8 CPUs.
tests/unit/test_cluster_partitions.py checks this module against the lines dev/cluster writes.
"""

from __future__ import annotations

import os
from typing import Any

#: The job-side Jupyter environment that dev/jobenv builds (``MOSS_JOBENV``, as in dev/cluster):
#: jupyterhub and jupyterlab, no batchspawner.
JOBENV_BIN = os.path.join(os.environ.get("MOSS_JOBENV", "/opt/moss-jobenv"), "bin", "")
#: The same with batchspawner, for its wrapper (``server_launcher = "batchspawner"``) and the
#: reference implementation in the benchmark.
JOBENV_BATCHSPAWNER_BIN = os.path.join(
    os.environ.get("MOSS_JOBENV_BATCHSPAWNER", "/opt/moss-jobenv-batchspawner"), "bin", ""
)

#: Every limit left to Slurm, as an admin who writes the minimum would; cpu and debug offer no
#: GPUs (on the single-node layout their node has some). cpu has a second environment to choose.
CLUSTER_PARTITIONS: dict[str, Any] = {
    "cpu": {
        "description": "CPU nodes",
        "architecture": "x86_64",
        "simple": True,
        "gpu": "",
        "jupyter_environments": {
            "default": {"description": "Default", "path": JOBENV_BIN},
            "second": {"description": "Second", "path": JOBENV_BIN, "prologue": "echo second"},
        },
    },
    "gpu": {
        "description": "GPU nodes",
        "simple": True,
        "jupyter_environments": {"default": {"path": JOBENV_BIN}},
    },
    "debug": {
        "description": "Debugging",
        "simple": False,
        "gpu": "",
        "jupyter_environments": {"default": {"path": JOBENV_BIN}},
    },
}

#: The limits a hub computes for CLUSTER_PARTITIONS from dev/cluster's slurm.conf: the nodes'
#: CPUs, MaxTime, and the nodes' GPUs (of SLURM_GPU_TEMPLATE's type) where ``gpu`` is left out.
SLURM_LIMITS: dict[str, dict[str, int]] = {
    "cpu": {"max_ngpus": 0, "max_nprocs": 8, "max_runtime": 24 * 3600},
    "gpu": {"max_ngpus": 2, "max_nprocs": 8, "max_runtime": 12 * 3600},
    "debug": {"max_ngpus": 0, "max_nprocs": 8, "max_runtime": 3600},
}
SLURM_GPU_TEMPLATE = "gpu:fake:{}"
#: The GPUs of the multi layout's GPU node g1: two types, for the choice of GPU type (the
#: single layout's node has gpu:fake:2 alone).
MULTI_LAYOUT_GPUS: dict[str, int] = {"fake": 2, "other": 1}

#: What dev/cluster adds in both layouts, as a real site has, on the cpu nodes: who may use each
#: (slurm.conf's own words) and its time limit. The test hubs offer them only where a test asks.
SITE_PARTITIONS: dict[str, dict[str, Any]] = {
    "chem": {"AllowAccounts": "chemistry", "max_runtime": 4 * 3600},
    "lab": {"AllowGroups": "mosslab", "max_runtime": 6 * 3600},
    "hidden": {"Hidden": "YES", "max_runtime": 3 * 86400},
}


def every_field_spelled_out(jobenv_bin: str = JOBENV_BIN) -> dict[str, Any]:
    """:data:`CLUSTER_PARTITIONS` with every field given, as the reference implementation needs.

    The limits are Slurm's own, so a spawner that reads them from Slurm offers the same; each
    partition has the default environment only.
    """
    return {
        name: {
            "architecture": "x86_64",
            "description": partition["description"],
            "gpu": partition.get("gpu", SLURM_GPU_TEMPLATE),
            **SLURM_LIMITS[name],
            "simple": partition["simple"],
            "jupyter_environments": {
                "default": {
                    "description": "Default",
                    "path": jobenv_bin,
                    "modules": "",
                    "add_to_path": True,
                    "prologue": "",
                },
            },
        }
        for name, partition in CLUSTER_PARTITIONS.items()
    }
