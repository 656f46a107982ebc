"""Per-partition limits: the admin's configuration merged with what Slurm reports.

A :class:`PartitionLimits` is the one source of truth for a partition: the spawn page draws its
``min``/``max`` and choices from it, and :mod:`jupyterhub_moss.options` validates a request against
the very same object. Data flows one way: Slurm snapshot + config → limits → form and validation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from .config import JupyterEnvironment, PartitionConfig
from .gpu_types import GpuTypeLimit, gpu_types_for, gres_template_from_slurm, max_ngpus_from_slurm
from .presets import FieldPresets
from .slurm.accounting import JobLimits
from .slurm.models import PartitionInfo
from .slurm.partition_access import PartitionAccess
from .user_access import (
    AccountChoice,
    UserAccess,
    account_choices,
    hub_group_refusal,
    partition_refusal,
)

__all__ = [
    "FALLBACK_MAX_NPROCS",
    "UNKNOWN_STATE",
    "GpuTypeLimit",
    "PartitionLimits",
    "SimpleChoices",
    "charged_limits",
    "merge_partition_limits",
    "partition_refusals",
]

#: Used when neither the admin nor Slurm says how many CPUs a node has (Slurm not answering at
#: start-up, or a partition Slurm does not know). One CPU is always a valid request; offering
#: more than the hardware has would make jobs pend forever.
FALLBACK_MAX_NPROCS = 1

#: The state of a configured partition that Slurm did not report.
UNKNOWN_STATE = "unknown"

#: Simple-tab run times offered by default, in hours (the reference offers the same).
DEFAULT_RUNTIME_HOURS = (1, 2, 4, 6, 8, 12)


@dataclass(frozen=True)
class SimpleChoices:
    """What the Simple tab offers, from the spawner's traits; limits cap every choice."""

    #: CPU counts offered on every partition.
    cpu_counts: tuple[int, ...] = (1, 2, 4)
    #: Fractions of the partition's largest node, e.g. 0.25 for a quarter.
    node_fractions: tuple[float, ...] = (0.25, 0.5, 1.0)
    #: Run times, in hours.
    runtime_hours: tuple[float, ...] = DEFAULT_RUNTIME_HOURS


@dataclass(frozen=True)
class PartitionLimits:
    """Everything the form shows and the validator checks for one partition."""

    name: str
    description: str
    architecture: str
    simple: bool
    max_nprocs: int
    max_ngpus: int
    gpu_template: str  # "" = the partition offers no GPUs
    max_runtime: int | None  # seconds; None = no limit known
    max_memory_mb: int | None  # memory of the largest node, when Slurm said
    environments: dict[str, JupyterEnvironment] = field(hash=False)
    state: str = UNKNOWN_STATE  # "up", "down", "drain", "inactive" or "unknown"
    simple_choices: SimpleChoices = field(default_factory=SimpleChoices)
    #: What the user may charge here, the default first; () when accounts are not known (no
    #: accounting database, or it never answered), and then no account is chosen by the hub.
    accounts: tuple[AccountChoice, ...] = ()
    #: Per-job limits of every QOS, by name, and of the partition's own QOS (if any).
    qos_limits: Mapping[str, JobLimits] = field(default_factory=dict, hash=False)
    partition_qos: str = ""
    #: Where each ``max_*`` comes from, in words: "partition cpu", "QOS long", "account
    #: chemistry", "this hub" (the admin's setting).
    limit_sources: Mapping[str, str] = field(default_factory=dict, hash=False)
    #: Said next to the account choices (e.g. "may be stale: slurmdbd did not answer").
    accounting_note: str = ""
    #: Set when the accounting database knows no account of the user: every request is
    #: refused with it (Slurm would refuse the job), naming the account field.
    no_account: str = ""
    #: The admin's defaults and locks for this partition's fields.
    presets: FieldPresets = field(default_factory=FieldPresets, hash=False)
    #: The admin's environments of this partition kept from the user by their ``groups``, with
    #: the reason: (id, reason) pairs. They are not in :attr:`environments`.
    refused_environments: tuple[tuple[str, str], ...] = ()

    def environment_refusal(self, env_id: str) -> str | None:
        """Why the environment ``env_id`` is not offered to the user, or None."""
        return dict(self.refused_environments).get(env_id)

    #: The GPU types the user chooses from, in the order offered; () = no type choice (no GPUs,
    #: untyped GPUs, one type from Slurm, or an admin's fixed ``gpu`` template).
    gpu_types: tuple[GpuTypeLimit, ...] = ()
    #: Whether "any type" (``gpu:N``) is offered next to the types.
    gpu_any_type: bool = True

    def account(self, name: str) -> AccountChoice | None:
        return next((choice for choice in self.accounts if choice.name == name), None)

    def source_of(self, limit: str) -> str:
        """Where ``limit`` (runtime, nprocs, ngpus, memory) comes from, or ""."""
        return self.limit_sources.get(limit, "")

    def limit_note(self, limit: str) -> str:
        """ " (QOS short)" when a QOS or an account sets ``limit``; "" for the partition's own,
        which goes unsaid. The page's hints and the validator's messages both use it."""
        source = self.source_of(limit)
        return f" ({source})" if source.startswith(("QOS ", "account ")) else ""

    @property
    def has_gpus(self) -> bool:
        return bool(self.gpu_template) and self.max_ngpus > 0

    @property
    def default_environment_id(self) -> str:
        """The first environment the admin listed: what a request without one gets."""
        return next(iter(self.environments))

    def gpu_type(self, name: str) -> GpuTypeLimit | None:
        return next((gpu_type for gpu_type in self.gpu_types if gpu_type.name == name), None)

    @property
    def default_gpu_type(self) -> str:
        """What a request without a GPU type gets: any type where offered, else the first."""
        if not self.gpu_types or self.gpu_any_type:
            return ""
        return self.gpu_types[0].name

    def max_ngpus_for(self, gpu_type: str) -> int:
        """The most GPUs of ``gpu_type`` ("" = any type) one job may ask for."""
        chosen = self.gpu_type(gpu_type) if gpu_type else None
        return chosen.max_ngpus if chosen is not None else self.max_ngpus

    def gpu_limit_note(self, gpu_type: str) -> str:
        """Like :meth:`limit_note`, for a type's limit: said when a QOS or account sets it."""
        return self.limit_note("ngpus") if self.max_ngpus_for(gpu_type) == self.max_ngpus else ""

    def gres_for(self, ngpus: int, gpu_type: str = "") -> str:
        """The ``--gres`` value for ``ngpus`` GPUs of ``gpu_type`` ("" = the partition's
        template: any type, or the one type it has); "" when no GPUs are requested."""
        if ngpus <= 0 or not self.gpu_template:
            return ""
        if gpu_type:
            return f"gpu:{gpu_type}:{ngpus}"
        return self.gpu_template.replace("{}", str(ngpus))

    def cpu_choices(self) -> list[int]:
        """Simple-tab CPU counts (by default 1, 2, 4, a quarter, a half and all of a node)."""
        choices = self.simple_choices
        fractions = (int(self.max_nprocs * f) for f in choices.node_fractions)
        wanted = (*choices.cpu_counts, *fractions)
        return sorted({n for n in wanted if 1 <= n <= self.max_nprocs})

    def runtime_choices(self, hours: Iterable[float] | None = None) -> list[int]:
        """Simple-tab run times in seconds, those within ``max_runtime``.

        When the limit is shorter than every choice, the limit itself is the only choice, so
        the Simple tab never has nothing to offer.
        """
        if hours is None:
            hours = self.simple_choices.runtime_hours
        seconds = sorted({int(h * 3600) for h in hours if h > 0})
        if self.max_runtime is None:
            return seconds
        fitting = [s for s in seconds if s <= self.max_runtime]
        return fitting or [self.max_runtime]


def _limits_for(
    name: str, config: PartitionConfig, info: PartitionInfo | None, choices: SimpleChoices
) -> PartitionLimits:
    """Admin values win; Slurm fills in what the admin left out."""
    if config.gpu is not None:
        gpu_template = config.gpu
    elif config.gpu_types is not None:
        gpu_template = "gpu:{}"  # any type; a chosen type is asked for as gpu:TYPE:N
    else:
        gpu_template = gres_template_from_slurm(info) if info else ""

    if not gpu_template:
        max_ngpus = 0
    elif config.max_ngpus is not None:
        max_ngpus = config.max_ngpus
    elif info is not None:
        max_ngpus = max_ngpus_from_slurm(info, gpu_template)
    else:
        max_ngpus = 0
    if config.gpu_types is not None and max_ngpus == 0 and config.max_ngpus is None:
        # Slurm did not say (yet): the admin's per-type limits are all there is
        max_ngpus = max((t.max_ngpus or 0 for t in config.gpu_types.values()), default=0)
    gpu_types = gpu_types_for(config, info, max_ngpus) if gpu_template else ()

    max_nprocs = config.max_nprocs
    if max_nprocs is None:
        slurm_cpus = info.cpus_per_node if info else 0
        max_nprocs = slurm_cpus if slurm_cpus > 0 else FALLBACK_MAX_NPROCS

    max_runtime = config.max_runtime
    if max_runtime is None and info is not None:
        max_runtime = info.max_runtime

    memory = info.memory_per_node_mb if info and info.memory_per_node_mb > 0 else None
    slurm_words = f"partition {name}"
    sources = {
        "runtime": "this hub" if config.max_runtime is not None else slurm_words,
        "nprocs": "this hub" if config.max_nprocs is not None else slurm_words,
        "ngpus": "this hub" if config.max_ngpus is not None else slurm_words,
        "memory": slurm_words,
    }

    return PartitionLimits(
        name=name,
        description=config.description,
        architecture=config.architecture,
        simple=config.simple,
        max_nprocs=max_nprocs,
        max_ngpus=max_ngpus,
        gpu_template=gpu_template,
        max_runtime=max_runtime,
        max_memory_mb=memory,
        environments=dict(config.jupyter_environments),
        state=info.state if info else UNKNOWN_STATE,
        simple_choices=choices,
        limit_sources=sources,
        gpu_types=gpu_types,
        gpu_any_type=config.gpu_any_type,
    )


def merge_partition_limits(
    configs: Mapping[str, PartitionConfig],
    slurm: Mapping[str, PartitionInfo] | None,
    choices: SimpleChoices | None = None,
    *,
    access: UserAccess | None = None,
    rules: Mapping[str, PartitionAccess] | None = None,
    presets: Mapping[str, FieldPresets] | None = None,
) -> dict[str, PartitionLimits]:
    """Limits for every configured partition the user may use, in the admin's order.

    ``slurm`` is the latest snapshot's partitions by name, or ``None`` when Slurm has not answered
    yet. Only configured partitions are offered: Slurm partitions the admin did not list are left
    out. A configured partition Slurm does not know is kept with
    state ``"unknown"`` (a submission to it then fails with Slurm's own message). ``choices`` is
    what the Simple tab offers (the spawner's traits), capped by each partition's limits.

    With ``access`` (the user) and ``rules`` (each partition's access rules, from the snapshot),
    partitions the user may not use are left out (:func:`partition_refusals` says why): those
    whose ``groups`` the user is in none of, those with no environment for the user, and those
    Slurm would refuse them. Environments reserved for groups the user is not in are left out of
    each partition's ``environments``. Each partition gets the accounts the user may charge there
    and the QOS limits. Without ``access``, nothing is filtered. ``presets`` are
    each partition's defaults and locks (none when left out).
    """
    known = slurm or {}
    choices = choices or SimpleChoices()
    merged = {}
    for name, config in configs.items():
        limits = _limits_for(name, config, known.get(name), choices)
        if presets and name in presets:
            limits = replace(limits, presets=presets[name])
        if access is not None:
            its_rules = (rules or {}).get(name)
            if _refusal(config, access, its_rules) is not None:
                continue
            limits = _for_user(limits, config, access, its_rules)
        merged[name] = limits
    return merged


def partition_refusals(
    configs: Mapping[str, PartitionConfig],
    access: UserAccess | None,
    rules: Mapping[str, PartitionAccess] | None,
) -> dict[str, str]:
    """Configured partitions the user may not use, with the reason in words: exactly those
    :func:`merge_partition_limits` leaves out for the same ``access`` and ``rules``."""
    if access is None:
        return {}
    refusals = {}
    for name, config in configs.items():
        reason = _refusal(config, access, (rules or {}).get(name))
        if reason is not None:
            refusals[name] = reason
    return refusals


def _refusal(
    config: PartitionConfig, access: UserAccess, rules: PartitionAccess | None
) -> str | None:
    """Why the user may not use a partition: the hub's ``groups`` first, then Slurm's rules."""
    reason = hub_group_refusal(config.groups, access)
    if reason is None:
        offered, _ = _environment_refusals(config, access)
        if not offered:
            # every environment has groups the user is in none of: name them all
            groups = sorted(
                {g for env in config.jupyter_environments.values() for g in env.groups or ()}
            )
            words = "group" if len(groups) == 1 else "groups"
            reason = (
                "every Jupyter environment it offers is reserved for members of the "
                f"JupyterHub {words} {', '.join(groups)}"
            )
    return reason or partition_refusal(access, rules)


def _environment_refusals(
    config: PartitionConfig, access: UserAccess
) -> tuple[dict[str, JupyterEnvironment], tuple[tuple[str, str], ...]]:
    """The partition's environments offered to the user, in the admin's order, and the others
    with the reason."""
    offered, refused = {}, []
    for env_id, env in config.jupyter_environments.items():
        reason = hub_group_refusal(env.groups, access)
        if reason is None:
            offered[env_id] = env
        else:
            refused.append((env_id, reason))
    return offered, tuple(refused)


def _for_user(
    limits: PartitionLimits,
    config: PartitionConfig,
    access: UserAccess,
    rules: PartitionAccess | None,
) -> PartitionLimits:
    offered, refused = _environment_refusals(config, access)
    return replace(
        _with_accounts(limits, access, rules),
        environments=offered,
        refused_environments=refused,
    )


def _with_accounts(
    limits: PartitionLimits, access: UserAccess, rules: PartitionAccess | None
) -> PartitionLimits:
    return replace(
        limits,
        accounts=account_choices(access, rules),
        qos_limits={name: qos.limits for name, qos in access.qos.items()},
        partition_qos=rules.qos if rules is not None else "",
        accounting_note=access.note,
        no_account=access.no_account,
    )


# -- the limits of one account and QOS --------------------------------------------------------

# PartitionLimits field, JobLimits field, name in limit_sources
_CAPPED = (
    ("max_runtime", "max_runtime", "runtime"),
    ("max_nprocs", "max_cpus", "nprocs"),
    ("max_ngpus", "max_gpus", "ngpus"),
    ("max_memory_mb", "max_memory_mb", "memory"),
)


def charged_limits(limits: PartitionLimits, account: str, qos: str) -> PartitionLimits:
    """``limits`` narrowed to what a job charged to ``account`` with ``qos`` may ask for: the
    tightest of the partition's, the partition QOS's, the QOS's and the association's, each
    recorded in ``limit_sources``. Unknown names narrow nothing (the validator refuses them)."""
    caps: list[tuple[str, JobLimits]] = []
    if limits.partition_qos in limits.qos_limits:
        caps.append((f"QOS {limits.partition_qos}", limits.qos_limits[limits.partition_qos]))
    if qos in limits.qos_limits:
        caps.append((f"QOS {qos}", limits.qos_limits[qos]))
    choice = limits.account(account)
    if choice is not None:
        caps.append((f"account {account}", choice.limits))
    values = {name: getattr(limits, name) for name, _, _ in _CAPPED}
    sources = dict(limits.limit_sources)
    for words, cap in caps:
        for name, cap_name, source in _CAPPED:
            bound = getattr(cap, cap_name)
            if bound is not None and (values[name] is None or bound < values[name]):
                values[name] = bound
                sources[source] = words
    if not limits.gpu_template:
        values["max_ngpus"] = 0
    values["max_nprocs"] = max(values["max_nprocs"], 1)
    # a QOS or account limit on GPUs counts the GPUs of every type
    gpu_types = tuple(
        replace(gpu_type, max_ngpus=min(gpu_type.max_ngpus, values["max_ngpus"]))
        for gpu_type in limits.gpu_types
    )
    return replace(limits, **values, limit_sources=sources, gpu_types=gpu_types)
