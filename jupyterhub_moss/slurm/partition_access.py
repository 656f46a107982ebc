"""Who may use each partition, from one ``scontrol -a -o show partition``:
:data:`PARTITION_ARGS` and :func:`parse_partition_access`.

``-a`` includes hidden partitions and those closed to the hub's own groups; ``-o`` prints one
partition per line. ``sinfo`` does not print these rules, and a user refused by one of them
gets only "Invalid account or account/partition combination" or "User's group not permitted to
use this partition" back from sbatch, so the page has to know them first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..log_safe import log_safe
from .scontrol import parse_scontrol_fields

__all__ = ["PARTITION_ARGS", "PartitionAccess", "parse_partition_access"]

log = logging.getLogger(__name__)

PARTITION_ARGS = ("-a", "-o", "show", "partition")


def _names(value: str) -> frozenset[str] | None:
    """A Slurm list field: ``None`` for ``ALL`` (or unset), else the set of names."""
    value = value.strip()
    if not value or value.upper() == "ALL" or value == "(null)":
        return None
    return frozenset(name for name in value.split(",") if name)


def _deny(value: str) -> frozenset[str]:
    value = value.strip()
    if not value or value == "(null)":
        return frozenset()
    return frozenset(name for name in value.split(",") if name)


@dataclass(frozen=True)
class PartitionAccess:
    """A partition's access rules. ``None`` for an Allow list means everyone (``ALL``)."""

    name: str
    hidden: bool = False
    allow_accounts: frozenset[str] | None = None
    deny_accounts: frozenset[str] = frozenset()
    allow_groups: frozenset[str] | None = None
    allow_qos: frozenset[str] | None = None
    deny_qos: frozenset[str] = frozenset()
    root_only: bool = False
    #: The partition's own QOS ("" = none), whose limits apply to every job in it.
    qos: str = ""

    def group_refusal(self, groups: frozenset[str]) -> str | None:
        """Why a user in ``groups`` may not use this partition at all, or None."""
        if self.root_only:
            return f"{self.name} is for root only"
        if self.allow_groups is not None and not (self.allow_groups & groups):
            return f"{self.name} is open to the groups {', '.join(sorted(self.allow_groups))} only"
        return None

    def account_allowed(self, account: str) -> bool:
        if account in self.deny_accounts:
            return False
        return self.allow_accounts is None or account in self.allow_accounts

    def qos_allowed(self, qos: str) -> bool:
        if qos in self.deny_qos:
            return False
        return self.allow_qos is None or qos in self.allow_qos


def parse_partition_access(text: str) -> dict[str, PartitionAccess]:
    """Each partition's rules from ``scontrol`` with :data:`PARTITION_ARGS`, by name."""
    result: dict[str, PartitionAccess] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        values = parse_scontrol_fields(line)
        name = values.get("PartitionName", "")
        if not name:
            log.warning("skipping partition line without a name: %s", log_safe(repr(line[:80])))
            continue
        qos = values.get("QoS", "")
        result[name] = PartitionAccess(
            name=name,
            hidden=values.get("Hidden", "NO").upper() == "YES",
            allow_accounts=_names(values.get("AllowAccounts", "ALL")),
            deny_accounts=_deny(values.get("DenyAccounts", "")),
            allow_groups=_names(values.get("AllowGroups", "ALL")),
            allow_qos=_names(values.get("AllowQos", "ALL")),
            deny_qos=_deny(values.get("DenyQos", "")),
            root_only=values.get("RootOnly", "NO").upper() == "YES",
            qos="" if qos in ("N/A", "(null)") else qos,
        )
    return result
