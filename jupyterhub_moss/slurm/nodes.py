"""What Slurm says about nodes: GPUs in a GRES string, node states, and host lists.

``sinfo`` lines (see :mod:`.partitions`) and ``squeue`` lines (see :mod:`.job_status`) read
their node fields with these; the availability table judges node states with
:func:`node_state_usable` too, so there is one judgement of a node's state.
"""

from __future__ import annotations

import logging
import re

from ..log_safe import log_safe

__all__ = [
    "UNTYPED_GPU",
    "first_hostname",
    "node_state_draining",
    "node_state_usable",
    "parse_gres",
]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# GRES

#: Key used in GPU dicts for GPUs configured without a type (``gpu:2``). An empty string rather
#: than ``"gpu"``: it cannot collide with a real type, and a request for it is just ``gpu:N``.
UNTYPED_GPU = ""


def parse_gres(text: str) -> dict[str, int]:
    """GPUs in a GRES string, by type: ``"gpu:a100:2,gpu:1g.5gb:7(S:0-1),shard:4"`` →
    ``{"a100": 2, "1g.5gb": 7}``.

    Handles ``gpu:TYPE:N``, ``gpu:N`` (type :data:`UNTYPED_GPU`), several entries, MIG-style
    types, ``(S:…)``/``(IDX:…)`` suffixes (whose lists may hold commas), ``(null)`` and the
    ``GresUsed`` form ``gpu:TYPE:N(IDX:…)``. Other GRES (``shard``, ``mps``, licences...) are
    ignored. Malformed entries are logged and skipped.
    """
    gpus: dict[str, int] = {}
    for entry in _split_top_level(text.strip()):
        name, _, rest = entry.partition(":")
        if name.strip() != "gpu":
            continue
        gpu_type, count = _gpu_type_and_count(rest)
        if count is None:
            log.warning("skipping unreadable GRES entry %s", log_safe(repr(entry)))
            continue
        gpus[gpu_type] = gpus.get(gpu_type, 0) + count
    return gpus


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses, dropping the parenthesised suffixes."""
    entries, current, depth = [], [], 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            entries.append("".join(current))
            current = []
        elif depth == 0:
            current.append(char)
    entries.append("".join(current))
    return [entry.strip() for entry in entries if entry.strip()]


_COUNT = re.compile(r"^(\d+)([KMG]?)$", re.IGNORECASE)
_MULTIPLIER = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _gpu_type_and_count(rest: str) -> tuple[str, int | None]:
    """``"a100:2"`` → ("a100", 2); ``"2"`` → ("", 2); ``""`` → ("", 1); ``"a100"`` → ("a100", 1)."""
    if not rest:
        return UNTYPED_GPU, 1
    gpu_type, _, count_text = rest.rpartition(":")
    match = _COUNT.match(count_text)
    if match is None:
        if gpu_type:  # "a:b" where b is not a number
            return UNTYPED_GPU, None
        # "gpu:TYPE" with no count means one GPU of that type
        return count_text, 1
    count = int(match.group(1)) * _MULTIPLIER[match.group(2).lower()]
    if gpu_type in ("", "(null)"):
        gpu_type = UNTYPED_GPU
    return gpu_type, count


# ---------------------------------------------------------------------------------------------
# Node states

# Node states in which no new job can start there, as sinfo spells them: long (``StateLong``,
# ``%T``) and short (``%t``), lower case, flags stripped. "drain" is the short drained, "drng"
# draining, "failg" failing, "futr" future, "unk" unknown.
_UNUSABLE_NODE_STATES = frozenset(
    {
        *("down", "drained", "draining", "drain", "drng", "fail", "failing", "failg"),
        *("future", "futr", "inval", "maint", "unknown", "unk", "not_responding"),
    }
)
_DRAIN_NODE_STATES = frozenset({"drained", "draining", "drain", "drng"})
# Suffixes sinfo adds to a state: "*" not responding, "~" powered off, "#" powering up,
# "%" powering down, "!" pending power down, "$" maintenance reservation, "@" reboot pending,
# "^" reboot issued, "-" planned by backfill.
_STATE_FLAGS = "*~#%!$@^-"


def _node_state_base(state: str) -> str:
    """``"Drained*"`` → ``"drained"``: lower case, sinfo's flag suffixes stripped."""
    return state.strip().lower().rstrip(_STATE_FLAGS)


def node_state_usable(state: str) -> bool:
    """False for a node state (as sinfo prints it, long or short) in which no new job can
    start: down, drained/draining, failing, in maintenance, not responding (``*``), unknown...

    The one judgement of a node's state: the partition's folded state and the availability
    table's "some nodes unavailable" both use it.
    """
    if state.strip().endswith("*"):
        return False
    base = _node_state_base(state)
    return bool(base) and base not in _UNUSABLE_NODE_STATES


def node_state_draining(state: str) -> bool:
    """True for a drained or draining node (``drained``, ``draining``, ``drain``, ``drng``)."""
    return _node_state_base(state) in _DRAIN_NODE_STATES


# ---------------------------------------------------------------------------------------------
# Host lists


def first_hostname(hostlist: str) -> str:
    """First name of a Slurm host list: ``"c[01-04,07],g1"`` → ``"c01"``; ``""`` → ``""``."""
    text = hostlist.strip()
    if not text or text.lower() in ("n/a", "(null)"):
        return ""
    match = re.match(r"([^,\[]*)(?:\[([^\]]*)\])?", text)
    if match is None:  # pragma: no cover - the pattern matches any string
        return ""
    prefix, ranges = match.group(1), match.group(2)
    if ranges is None:
        return prefix
    first = ranges.split(",")[0].split("-")[0]
    return prefix + first
