"""The start-up check of the admin's defaults and locks: each one is run through the user-options
parser, on every partition it applies to, against the admin's own limits (what is left to
Slurm is not known before Slurm answers). A bad one stops the hub, naming partition and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from .config import FieldValues, PartitionConfig
from .limits import PartitionLimits, merge_partition_limits
from .option_presets import fitted_default
from .options import UserOptionsError, parse_user_options
from .presets import FieldPresets, partition_presets, preset_conflicts

__all__ = ["admin_only_limits", "preset_problems"]


#: Stands for "no limit known" when only the admin's config is looked at: Slurm may allow a
#: lot more than the fallbacks used at run time before Slurm answers.
_UNKNOWN_BOUND = 10**9


def admin_only_limits(
    configs: Mapping[str, PartitionConfig], presets: Mapping[str, FieldPresets]
) -> dict[str, PartitionLimits]:
    """Limits from the admin's config alone, for checking it at start-up, before Slurm is
    asked: what the admin left to Slurm is unbounded here (GPUs included), so only the admin's
    own limits can make a preset invalid."""
    merged = merge_partition_limits(configs, None, presets=presets)
    for name, config in configs.items():
        limits = merged[name]
        gpu = config.gpu if config.gpu is not None else "gpu:{}"
        merged[name] = replace(
            limits,
            gpu_template=gpu,
            max_ngpus=(config.max_ngpus if config.max_ngpus is not None else _UNKNOWN_BOUND)
            if gpu
            else 0,
            max_nprocs=config.max_nprocs if config.max_nprocs is not None else _UNKNOWN_BOUND,
        )
    return merged


def preset_problems(
    configs: Mapping[str, PartitionConfig], hub_defaults: FieldValues, hub_locks: FieldValues
) -> list[str]:
    """What is wrong with the admin's defaults and locks, checked at start-up: each one is run
    through the parser on every partition it applies to, against the admin's own limits (what
    is left to Slurm is not known yet). One line per problem, naming the partition and field."""
    problems = preset_conflicts(configs, hub_defaults, hub_locks)
    presets = {
        name: partition_presets(name, config, hub_defaults, hub_locks)
        for name, config in configs.items()
    }
    limits = admin_only_limits(configs, presets)
    for name, part in limits.items():
        for preset_name in (*part.presets.locks, *part.presets.defaults):
            problems += _preset_problem(name, part, preset_name, limits)
    wanted = hub_defaults.environment_id
    if wanted is not None and not any(wanted in p.environments for p in limits.values()):
        problems.append(
            f"field_defaults: environment_id {wanted!r} is not an environment of any partition"
        )
    return problems


def _preset_problem(
    name: str, part: PartitionLimits, preset_name: str, limits: Mapping[str, PartitionLimits]
) -> list[str]:
    locked = part.presets.is_locked(preset_name)
    kind = "locked_fields" if locked else "field_defaults"
    value = (part.presets.locks if locked else part.presets.defaults)[preset_name]
    hub_wide = not part.presets.scopes.get(preset_name)
    if not locked and hub_wide and fitted_default(preset_name, value, part) is None:
        return []  # a hub-wide default that does not apply here (no GPUs, no such environment)
    # Checked as written, as a lock: a default beyond the admin's own limit is a mistake too.
    alone = replace(part, presets=FieldPresets(locks={preset_name: value}))
    try:
        parse_user_options({"partition": name}, {**limits, name: alone})
    except UserOptionsError as exc:
        if preset_name in exc.errors:
            setting = f"c.MOSlurmSpawner.{kind}" if hub_wide else f"partition {name!r}: {kind}"
            message = exc.errors[preset_name].split(": ", 1)[-1]
            return [f"{setting}: field {preset_name!r} = {value!r} on {name}: {message}"]
    return []
