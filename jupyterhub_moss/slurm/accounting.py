"""Accounts and QOS from Slurm's accounting database: the ``sacctmgr`` calls and their parsers.

:data:`QOS_ARGS` with :func:`parse_qos`, and :func:`user_association_args` with
:func:`parse_user_associations`, go together so that what we run and what we parse cannot drift
apart. Both ask for ``-n -P`` (no header, ``|``-separated fields, no padding or truncation).

``sacctmgr`` shows an association's limits with its parents' already applied, so an account's
``MaxWall`` reaches every user under it without our walking the tree. A QOS's limits are its own.
The parsers are tolerant: a line they cannot read is logged and skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..log_safe import log_safe
from .times import parse_slurm_duration

__all__ = [
    "ACCOUNTING_OFF_MARKERS",
    "QOS_ARGS",
    "Association",
    "JobLimits",
    "QosInfo",
    "UserAssociations",
    "accounting_is_off",
    "parse_qos",
    "parse_tres",
    "parse_user_associations",
    "safe_slurm_name",
    "user_association_args",
]

log = logging.getLogger(__name__)

#: A QOS's name, its per-job run time and resources, and its flags (DenyOnLimit...).
QOS_FIELDS = ("Name", "MaxWall", "MaxTRES", "Flags")
QOS_ARGS = ("-n", "-P", "show", "qos", "format=" + ",".join(QOS_FIELDS))

#: One line per association of the users asked for, each with the user's default account.
ASSOCIATION_FIELDS = (
    "User",
    "DefaultAccount",
    "Account",
    "Partition",
    "QOS",
    "DefaultQOS",
    "MaxWall",
    "MaxTRES",
)

#: What sacctmgr says on a cluster without slurmdbd (it then refuses every command, locally).
ACCOUNTING_OFF_MARKERS = (
    "only 'accounting_storage/slurmdbd' is supported",
    "slurm accounting storage is disabled",
)

# Names sacctmgr can be asked about safely: a comma would split the list, '=' a key.
_SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")


def safe_slurm_name(name: str) -> bool:
    """Whether ``name`` can be put in a ``sacctmgr`` condition as it is."""
    return bool(_SAFE_NAME_RE.fullmatch(name))


def user_association_args(users: Iterable[str]) -> list[str]:
    """``sacctmgr`` arguments reading every association of ``users`` (safe names only) at once."""
    names = sorted({user for user in users if safe_slurm_name(user)})
    if not names:
        raise ValueError("no user name that sacctmgr can be asked about")
    return [
        "-n",
        "-P",
        "show",
        "user",
        "where",
        "name=" + ",".join(names),
        "withassoc",
        "format=" + ",".join(ASSOCIATION_FIELDS),
    ]


def accounting_is_off(message: str) -> bool:
    """Whether a sacctmgr error says that this cluster has no accounting database."""
    lowered = message.lower()
    return any(marker in lowered for marker in ACCOUNTING_OFF_MARKERS)


@dataclass(frozen=True)
class JobLimits:
    """Per-job limits of a QOS or an association; ``None`` = no limit."""

    max_runtime: int | None = None  # seconds
    max_cpus: int | None = None
    max_gpus: int | None = None
    max_memory_mb: int | None = None
    max_nodes: int | None = None

    @classmethod
    def from_fields(cls, max_wall: str, max_tres: str) -> JobLimits:
        tres = parse_tres(max_tres)
        return cls(
            max_runtime=parse_slurm_duration(max_wall) if max_wall.strip() else None,
            max_cpus=tres.get("cpu"),
            max_gpus=tres.get("gres/gpu"),
            max_memory_mb=tres.get("mem"),
            max_nodes=tres.get("node"),
        )


@dataclass(frozen=True)
class QosInfo:
    name: str
    limits: JobLimits = field(default_factory=JobLimits)
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Association:
    """One (account, partition) a user may charge; ``partition == ""`` means every partition."""

    account: str
    partition: str
    qos: tuple[str, ...]
    default_qos: str  # "" = the QOS's own default (the first of ``qos`` that Slurm would pick)
    limits: JobLimits = field(default_factory=JobLimits)


@dataclass(frozen=True)
class UserAssociations:
    user: str
    default_account: str
    associations: tuple[Association, ...] = ()

    def for_partition(self, partition: str) -> dict[str, Association]:
        """The association that applies to each account on ``partition``: one made for that
        partition wins over the account's general one, as in Slurm."""
        chosen: dict[str, Association] = {}
        for association in self.associations:
            if association.partition not in ("", partition):
                continue
            current = chosen.get(association.account)
            if current is None or (association.partition and not current.partition):
                chosen[association.account] = association
        return chosen


_MEMORY_UNITS_MB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024, "P": 1024**3}


def parse_tres(text: str) -> dict[str, int]:
    """``"cpu=4,gres/gpu=1,mem=16G"`` → ``{"cpu": 4, "gres/gpu": 1, "mem": 16384}`` (memory in
    MB). Typed GPUs (``gres/gpu:a100=2``) also count under ``gres/gpu`` when no untyped figure
    is given. Unreadable entries are skipped."""
    tres: dict[str, int] = {}
    typed_gpus: dict[str, int] = {}
    for entry in text.split(","):
        name, _, value = entry.strip().partition("=")
        if not name or not value:
            continue
        amount = _tres_amount(name, value.strip())
        if amount is None:
            log.warning("skipping unreadable TRES %s", log_safe(repr(entry)))
            continue
        if name.startswith("gres/gpu:"):
            typed_gpus[name] = amount
        else:
            tres[name] = amount
    if typed_gpus and "gres/gpu" not in tres:
        tres["gres/gpu"] = max(typed_gpus.values())
    return tres


def _tres_amount(name: str, value: str) -> int | None:
    match = re.fullmatch(r"([0-9]+)([KMGTP]?)", value, re.IGNORECASE)
    if not match:
        return None
    amount, unit = int(match[1]), match[2].upper()
    if name == "mem":
        return int(amount * _MEMORY_UNITS_MB[unit or "M"])
    return amount if not unit else None


def _fields(line: str, names: tuple[str, ...]) -> dict[str, str] | None:
    parts = line.split("|")
    if len(parts) != len(names):
        log.warning("skipping sacctmgr line %s: %d fields", log_safe(repr(line)), len(parts))
        return None
    return dict(zip(names, (part.strip() for part in parts), strict=True))


def parse_qos(text: str) -> dict[str, QosInfo]:
    """Every QOS from the output of ``sacctmgr`` with :data:`QOS_ARGS`, by name."""
    result: dict[str, QosInfo] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        values = _fields(line, QOS_FIELDS)
        if values is None or not values["Name"]:
            continue
        try:
            limits = JobLimits.from_fields(values["MaxWall"], values["MaxTRES"])
        except ValueError as error:
            log.warning("skipping QOS line %s: %s", log_safe(repr(line)), log_safe(error))
            continue
        flags = tuple(flag for flag in values["Flags"].split(",") if flag)
        result[values["Name"]] = QosInfo(values["Name"], limits, flags)
    return result


def parse_user_associations(text: str) -> dict[str, UserAssociations]:
    """Each user's default account and associations, from ``sacctmgr`` with
    :func:`user_association_args`. Users with no association are absent."""
    found: dict[str, tuple[str, list[Association]]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        values = _fields(line, ASSOCIATION_FIELDS)
        if values is None or not values["User"] or not values["Account"]:
            continue
        try:
            limits = JobLimits.from_fields(values["MaxWall"], values["MaxTRES"])
        except ValueError as error:
            log.warning("skipping association %s: %s", log_safe(repr(line)), log_safe(error))
            continue
        association = Association(
            account=values["Account"],
            partition=values["Partition"],
            qos=tuple(sorted(q for q in values["QOS"].split(",") if q)),
            default_qos=values["DefaultQOS"],
            limits=limits,
        )
        user = values["User"]
        _, associations = found.setdefault(user, (values["DefaultAccount"], []))
        associations.append(association)
    return {
        user: UserAssociations(user, default, tuple(associations))
        for user, (default, associations) in found.items()
    }
