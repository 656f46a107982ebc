"""What one user may use: partitions, accounts and QOS, and the limits each choice brings.

Pure functions of plain data: the partitions' access rules (from the cluster snapshot), the
user's Unix groups, the user's associations and the QOS table (from the accounting view), and
the user's JupyterHub groups and admin flag (from the hub's database).
:func:`hub_group_refusal` says whether the admin's ``groups`` field keeps a partition or an
environment from the user; :func:`partition_refusal` whether Slurm lets the user use a partition;
:func:`account_choices` lists what the user may charge on it; :mod:`.limits` folds the choices'
limits into the one :class:`~.limits.PartitionLimits` that the form and the validator share.

Slurm's own rules, as it applies them to a job:

- ``AllowGroups`` (and ``RootOnly``) are checked at submission: sbatch refuses the job;
- ``AllowAccounts``/``DenyAccounts`` and ``AllowQos``/``DenyQos`` are not, unless the site sets
  ``EnforcePartLimits``: the job is accepted and pends for ever with a reason, which is why the
  page has to know them;
- an association made for one partition wins, on that partition, over the account's general one;
- a job's limits are the tightest of its partition's, its QOS's and its association's.

The hub's own rule comes first: a partition or environment whose ``groups`` the user is in none
of is not offered, unless the user is a JupyterHub admin. Slurm's rules apply to admins too,
since Slurm enforces them whoever asks.
"""

from __future__ import annotations

import grp
import os
import pwd
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from .slurm.accounting import JobLimits, QosInfo, UserAssociations
from .slurm.partition_access import PartitionAccess

__all__ = [
    "AccountChoice",
    "UserAccess",
    "account_choices",
    "default_account",
    "hub_group_refusal",
    "jupyterhub_groups",
    "partition_refusal",
    "unix_groups",
]


@dataclass(frozen=True)
class AccountChoice:
    """An account the user may charge on one partition, and the QOS it offers there."""

    name: str
    qos: tuple[str, ...]
    default_qos: str
    #: The association's own per-job limits (its parents' included).
    limits: JobLimits = field(default_factory=JobLimits)


@dataclass(frozen=True)
class UserAccess:
    """Everything about one user that decides what the page offers them.

    ``associations`` is None when the hub does not know them: the cluster has no accounting
    database, or it has never answered for this user. Then nothing is filtered by account, and
    Slurm has the last word at submission.
    """

    user: str
    groups: frozenset[str] | None  # None: the user has no Unix account here
    associations: UserAssociations | None = None
    qos: Mapping[str, QosInfo] = field(default_factory=dict)
    #: Said next to the choices, e.g. that they may be stale because slurmdbd did not answer.
    note: str = ""
    #: The user's JupyterHub groups, for the ``groups`` field of partitions and environments;
    #: empty when unknown, so what is reserved for a group stays hidden.
    hub_groups: frozenset[str] = frozenset()
    #: Whether the user is a JupyterHub admin: ``groups`` then hides nothing from them.
    hub_admin: bool = False

    @property
    def knows_accounts(self) -> bool:
        """Whether the user's associations are known and there is at least one: a user with
        none is not filtered by account (their page still shows, with :attr:`no_account`)."""
        return self.associations is not None and bool(self.associations.associations)

    @property
    def no_account(self) -> str:
        """The refusal for a user the accounting database knows no association of, or ""."""
        if self.associations is None or self.associations.associations:
            return ""
        return (
            f"Slurm has no account for {self.user} on this cluster, so it would refuse the job; "
            "ask your HPC support to add you to an account"
        )


def hub_group_refusal(groups: tuple[str, ...] | None, access: UserAccess) -> str | None:
    """Why the admin's ``groups`` field (of a partition or an environment) keeps it from
    ``access.user``, or None when it is theirs: no ``groups``, a member, or a hub admin."""
    if groups is None or access.hub_admin or access.hub_groups.intersection(groups):
        return None
    if len(groups) == 1:
        return f"reserved for members of the JupyterHub group {groups[0]}"
    return f"reserved for members of the JupyterHub groups {', '.join(groups)}"


def jupyterhub_groups(user: object) -> tuple[frozenset[str], bool]:
    """The names of a JupyterHub user's groups, and whether they are an admin.

    ``user`` is JupyterHub's ``User`` (5 and 6 alike: ``groups`` and ``admin`` come from its
    database row). Anything else (a stand-in without them) is in no group and not an admin.
    """
    names = frozenset(
        name
        for name in (getattr(group, "name", None) for group in getattr(user, "groups", None) or ())
        if isinstance(name, str)
    )
    return names, getattr(user, "admin", False) is True


def partition_refusal(access: UserAccess, rules: PartitionAccess | None) -> str | None:
    """Why ``access.user`` may not use the partition ``rules`` describe, or None if they may.

    A partition Slurm did not describe (no snapshot yet) is not refused here: the page then
    offers what the admin configured, and Slurm decides.
    """
    if rules is None:
        return None
    if access.groups is not None:
        refusal = rules.group_refusal(access.groups)
        if refusal:
            return refusal
    if access.knows_accounts and not account_choices(access, rules):
        if rules.allow_accounts is not None:
            accounts = ", ".join(sorted(rules.allow_accounts))
            return f"{rules.name} is open to the accounts {accounts} only"
        return f"none of your Slurm accounts may use {rules.name}"
    return None


def account_choices(access: UserAccess, rules: PartitionAccess | None) -> tuple[AccountChoice, ...]:
    """The accounts the user may charge on the partition, default account first, and for each
    the QOS the partition lets it use."""
    if not access.knows_accounts or access.associations is None or rules is None:
        return ()
    choices = []
    for name, association in access.associations.for_partition(rules.name).items():
        if not rules.account_allowed(name):
            continue
        qos = tuple(q for q in association.qos if rules.qos_allowed(q))
        if not qos and association.qos:
            continue  # every QOS of this account is denied on the partition
        choices.append(
            AccountChoice(
                name=name,
                qos=qos,
                default_qos=_default_qos(association.default_qos, qos),
                limits=association.limits,
            )
        )
    first = access.associations.default_account
    choices.sort(key=lambda choice: (choice.name != first, choice.name))
    return tuple(choices)


def _default_qos(association_default: str, allowed: tuple[str, ...]) -> str:
    """The QOS a job gets without ``--qos``: the association's default, else ``normal`` when the
    association may use it (Slurm's own default QOS), else the only one there is."""
    if association_default in allowed:
        return association_default
    if "normal" in allowed:
        return "normal"
    return allowed[0] if len(allowed) == 1 else ""


def default_account(choices: tuple[AccountChoice, ...]) -> str:
    """The account a request without one is charged to: the user's default account when it may
    be used here, else the first (the list puts the default first)."""
    return choices[0].name if choices else ""


# -- Unix groups, for AllowGroups ------------------------------------------------------------

#: Seconds a user's groups are kept: a lookup may go to LDAP, so not once per request.
GROUPS_CACHE_SECONDS = 60.0
_groups_cache: dict[str, tuple[float, frozenset[str] | None]] = {}


def unix_groups(user: str, *, now: float | None = None) -> frozenset[str] | None:
    """The names of ``user``'s groups (primary and supplementary), or None when there is no such
    Unix user. Cached for :data:`GROUPS_CACHE_SECONDS`."""
    now = time.monotonic() if now is None else now
    cached = _groups_cache.get(user)
    if cached is not None and now - cached[0] < GROUPS_CACHE_SECONDS:
        return cached[1]
    groups = _read_groups(user)
    if len(_groups_cache) > 4096:
        _groups_cache.clear()
    _groups_cache[user] = (now, groups)
    return groups


def _read_groups(user: str) -> frozenset[str] | None:
    try:
        entry = pwd.getpwnam(user)
    except (KeyError, ValueError):  # ValueError: a name with a NUL byte
        return None
    names = set()
    for gid in os.getgrouplist(user, entry.pw_gid):
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            names.add(str(gid))
    return frozenset(names)
