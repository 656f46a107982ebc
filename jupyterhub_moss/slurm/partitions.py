"""Partitions from one ``sinfo`` call: :data:`SINFO_ARGS` and :func:`parse_sinfo`, which go
together so that what we run and what we parse cannot drift apart.

The parser is tolerant: a line it cannot read is logged and skipped, never a crash, because one
odd node must not take the spawn page down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..log_safe import log_safe
from .models import PartitionInfo
from .nodes import node_state_draining, node_state_usable, parse_gres
from .times import parse_slurm_duration

__all__ = ["SINFO_ARGS", "SINFO_FIELDS", "SINFO_FORMAT", "parse_sinfo"]

log = logging.getLogger(__name__)

#: The fields asked from sinfo, in order. ``:0`` means "no width": sinfo then neither pads nor
#: truncates (a fixed width silently cuts long GRES strings), and ``|`` separates fields.
SINFO_FIELDS = (
    "Partition",  # name, with "*" after the default partition
    "Available",  # up / down / drain / inactive
    "NodeList",
    "Nodes",
    "NodeAIOT",  # nodes allocated/idle/other/total
    "CPUsState",  # CPUs allocated/idle/other/total
    "CPUs",  # per node
    "MaxCPUsPerNode",  # partition limit, or UNLIMITED
    "Memory",  # per node, MB
    "Time",  # partition time limit
    "Gres",
    "GresUsed",  # only in --Format, not in -o: the reason this uses -O
    "StateLong",
)
SINFO_FORMAT = ",".join(f"{name}:0|" for name in SINFO_FIELDS[:-1]) + f",{SINFO_FIELDS[-1]}:0"

#: ``sinfo`` arguments for :func:`parse_sinfo`. ``-N`` prints one line per (node, partition), so
#: every node is counted exactly, however its partition mixes hardware, and ``GresUsed`` is that
#: node's own. The parser still folds grouped (non ``-N``) lines correctly, except that it then
#: multiplies a line's ``GresUsed`` by its node count. One sinfo costs slurmctld one partition-info
#: and one node-info RPC, with or without ``-N``. ``--noconvert`` keeps memory in plain MB.
#: ``--all`` lists hidden partitions too, so their limits are Slurm's, not a fallback.
SINFO_ARGS = ("-h", "--all", "--noconvert", "-N", "-O", SINFO_FORMAT)


@dataclass
class _PartitionTotals:
    name: str
    is_default: bool = False
    availability: str = "up"
    max_runtime: int | None = None
    max_cpus_per_node: int | None = None
    nodes_idle: int = 0
    nodes_total: int = 0
    nodes_usable: int = 0
    cpus_idle: int = 0
    cpus_total: int = 0
    cpus_per_node: int = 0
    memory_per_node_mb: int = 0
    gpus_per_node: dict[str, int] = field(default_factory=dict)
    gpus_per_node_total: int = 0
    gpus_total: int = 0
    gpus_used: int = 0
    gpus_total_by_type: dict[str, int] = field(default_factory=dict)
    gpus_used_by_type: dict[str, int] = field(default_factory=dict)
    node_states: set[str] = field(default_factory=set)
    any_drain: bool = False

    def add_line(self, values: dict[str, str]) -> None:
        nodes = _int_or(values["Nodes"], 1)
        nodes_alloc, nodes_idle, nodes_other, nodes_total = _aiot(values["NodeAIOT"])
        _, cpus_idle, _, cpus_total = _aiot(values["CPUsState"])
        del nodes_alloc, nodes_other
        self.nodes_idle += nodes_idle
        self.nodes_total += nodes_total or nodes
        self.cpus_idle += cpus_idle
        self.cpus_total += cpus_total
        state = values["StateLong"].strip().lower()
        self.node_states.add(state)
        if node_state_usable(state):
            self.nodes_usable += nodes_total or nodes
        elif node_state_draining(state):
            self.any_drain = True
        # The largest node is what a single-node job can get, so that is the per-node figure.
        self.cpus_per_node = max(self.cpus_per_node, _int_or(values["CPUs"].rstrip("+"), 0))
        self.memory_per_node_mb = max(
            self.memory_per_node_mb, _int_or(values["Memory"].rstrip("+"), 0)
        )
        gres = parse_gres(values["Gres"])
        for gpu_type, count in gres.items():
            self.gpus_per_node[gpu_type] = max(self.gpus_per_node.get(gpu_type, 0), count)
        self.gpus_per_node_total = max(self.gpus_per_node_total, sum(gres.values()))
        used = parse_gres(values["GresUsed"])
        self.gpus_total += sum(gres.values()) * nodes
        self.gpus_used += sum(used.values()) * nodes
        for gpu_type, count in gres.items():
            by_type = self.gpus_total_by_type
            by_type[gpu_type] = by_type.get(gpu_type, 0) + count * nodes
        for gpu_type, count in used.items():
            by_type = self.gpus_used_by_type
            by_type[gpu_type] = by_type.get(gpu_type, 0) + count * nodes

    def build(self) -> PartitionInfo:
        cpus_per_node = self.cpus_per_node
        if self.max_cpus_per_node is not None:
            cpus_per_node = min(cpus_per_node, self.max_cpus_per_node)
        return PartitionInfo(
            name=self.name,
            state=self._state(),
            is_default=self.is_default,
            nodes_idle=self.nodes_idle,
            nodes_total=self.nodes_total,
            cpus_idle=self.cpus_idle,
            cpus_total=self.cpus_total,
            cpus_per_node=cpus_per_node,
            memory_per_node_mb=self.memory_per_node_mb,
            max_runtime=self.max_runtime,
            gpus_per_node=dict(sorted(self.gpus_per_node.items())),
            gpus_total=self.gpus_total,
            gpus_used=self.gpus_used,
            node_states=tuple(sorted(self.node_states)),
            gpus_per_node_total=self.gpus_per_node_total,
            gpus_total_by_type=dict(sorted(self.gpus_total_by_type.items())),
            gpus_used_by_type=dict(sorted(self.gpus_used_by_type.items())),
        )

    def _state(self) -> str:
        """The partition's own availability, except that an "up" partition none of whose nodes
        can take a job shows as "drain" (if any node is draining/drained) or "down"."""
        if self.availability != "up":
            return self.availability
        if self.nodes_usable == 0:
            return "drain" if self.any_drain else "down"
        return "up"


def _int_or(text: str, default: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return default


def _aiot(text: str) -> tuple[int, int, int, int]:
    parts = text.strip().split("/")
    if len(parts) != 4:
        raise ValueError(f"not an A/I/O/T figure: {text!r}")
    a, i, o, t = (int(p) for p in parts)
    return a, i, o, t


def parse_sinfo(text: str) -> dict[str, PartitionInfo]:
    """Partitions from the output of ``sinfo`` with :data:`SINFO_ARGS`: the default first,
    then by name.

    Every line of a partition counts: node and CPU counts are summed, and the per-node figures
    (CPUs, memory, GPUs per type) are those of the largest node, capped by the partition's
    ``MaxCPUsPerNode``. Per-node figures include nodes that are down or drained, so the form's
    limits do not flap with node states; availability is in ``state`` and the idle counts.
    """
    totals: dict[str, _PartitionTotals] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            _fold_sinfo_line(totals, line)
        except (ValueError, KeyError) as error:
            log.warning(
                "skipping sinfo line %d %s: %s", number, log_safe(repr(line)), log_safe(error)
            )
    # -N lists nodes, not partitions, in node order: sort so the order means something.
    ordered = sorted(totals.values(), key=lambda p: (not p.is_default, p.name))
    return {partition.name: partition.build() for partition in ordered}


def _fold_sinfo_line(totals: dict[str, _PartitionTotals], line: str) -> None:
    parts = line.split("|")
    if len(parts) != len(SINFO_FIELDS):
        raise ValueError(f"expected {len(SINFO_FIELDS)} fields, got {len(parts)}")
    values = dict(zip(SINFO_FIELDS, (part.strip() for part in parts), strict=True))
    raw_name = values["Partition"]
    name = raw_name.rstrip("*")
    if not name:
        raise ValueError("no partition name")
    partition = totals.get(name)
    if partition is None:
        partition = totals[name] = _PartitionTotals(name)
        partition.availability = values["Available"].lower()
        partition.max_runtime = parse_slurm_duration(values["Time"])
        max_cpus = values["MaxCPUsPerNode"]
        partition.max_cpus_per_node = None if max_cpus.upper() == "UNLIMITED" else int(max_cpus)
    partition.is_default = partition.is_default or raw_name.endswith("*")
    partition.add_line(values)
