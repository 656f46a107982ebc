"""A partition's GPUs as the user chooses them: the ``--gres`` template, and the GPU types with
each one's limit, from the admin's ``gpu``/``gpu_types`` or from what Slurm reports.

:mod:`.limits` folds them into :class:`~.limits.PartitionLimits`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import PartitionConfig
from .slurm.models import PartitionInfo

__all__ = ["GpuTypeLimit", "gpu_types_for", "gres_template_from_slurm", "max_ngpus_from_slurm"]


@dataclass(frozen=True)
class GpuTypeLimit:
    """One GPU type the user may choose, and the most GPUs of it one job may ask for."""

    name: str
    description: str
    max_ngpus: int


def gres_template_from_slurm(info: PartitionInfo) -> str:
    """A ``--gres`` template for a partition's GPUs as Slurm reports them.

    One named type gives ``gpu:TYPE:{}``; untyped or mixed types give ``gpu:{}`` (Slurm then picks
    any type); no GPUs give "".
    """
    types = [name for name, count in info.gpus_per_node.items() if count > 0]
    if not types and info.max_gpus_per_node <= 0:
        return ""
    if len(types) == 1 and types[0]:
        return f"gpu:{types[0]}:{{}}"
    return "gpu:{}"


def max_ngpus_from_slurm(info: PartitionInfo, template: str) -> int:
    # A typed template can only get GPUs of that type; otherwise any GPU of the node counts.
    for gpu_type, count in info.gpus_per_node.items():
        if gpu_type and template == f"gpu:{gpu_type}:{{}}":
            return count
    return info.max_gpus_per_node


def gpu_types_for(
    config: PartitionConfig, info: PartitionInfo | None, max_ngpus: int
) -> tuple[GpuTypeLimit, ...]:
    """The admin's types, else Slurm's when a node has several; each capped by ``max_ngpus``.

    A type's own limit is the admin's, else the most GPUs of it one node has (from Slurm), else
    the partition's. An admin's fixed ``gpu`` template leaves no choice.
    """
    slurm_counts = info.gpus_per_node if info else {}
    if config.gpu_types is not None:
        declared = {
            name: (gpu_type.description, gpu_type.max_ngpus or slurm_counts.get(name, max_ngpus))
            for name, gpu_type in config.gpu_types.items()
        }
    elif config.gpu is None:
        typed = {name: count for name, count in slurm_counts.items() if name and count > 0}
        declared = {name: ("", count) for name, count in typed.items()} if len(typed) > 1 else {}
    else:
        declared = {}
    return tuple(
        GpuTypeLimit(name, description, min(limit, max_ngpus))
        for name, (description, limit) in declared.items()
    )
