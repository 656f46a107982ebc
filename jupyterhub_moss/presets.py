"""The admin's defaults and locks per field, resolved for one partition.

An admin presets fields hub-wide (``c.MOSlurmSpawner.field_defaults`` / ``locked_fields``) and per
partition (the partition's ``field_defaults`` / ``locked_fields``). For each field, a partition's
entry, default or lock, replaces the hub's: a run time locked to one hour everywhere can be left
free, with a default of four hours, on one partition.

- A **default** is what a request that leaves the field out gets, and what the form shows first.
  It is fitted to the limits the user is charged under (a default of 8 CPUs on a 4-CPU QOS
  gives 4), because a default must never be the reason a request is refused.
- A **lock** is the only value the field takes: a request that sends another one is refused,
  naming the field, and the locked value is validated like any other (a lock beyond Slurm's
  limit refuses every request on the partition rather than reaching Slurm).

This module is plain data; the parser (:mod:`.options`) applies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .config import PRESET_FIELDS, FieldValues, PartitionConfig

__all__ = ["HUB_SCOPE", "FieldPresets", "partition_presets", "preset_conflicts"]

#: The scope of a hub-wide setting (a partition's scope is its name).
HUB_SCOPE = ""

PresetValue = str | int | bool


@dataclass(frozen=True)
class FieldPresets:
    """One partition's defaults and locks, by field name (documented option names)."""

    defaults: Mapping[str, PresetValue] = field(default_factory=dict)
    locks: Mapping[str, PresetValue] = field(default_factory=dict)
    #: Where each default and lock was set: :data:`HUB_SCOPE`, or the partition's name.
    scopes: Mapping[str, str] = field(default_factory=dict)

    def is_locked(self, name: str) -> bool:
        return name in self.locks

    def where(self, name: str) -> str:
        """Words for where the admin set ``name``'s preset: " on gpu" or "" (hub-wide)."""
        scope = self.scopes.get(name, HUB_SCOPE)
        return f" on {scope}" if scope else ""


def partition_presets(
    name: str, config: PartitionConfig, hub_defaults: FieldValues, hub_locks: FieldValues
) -> FieldPresets:
    """The presets of partition ``name``: the hub's, with the partition's own entries replacing
    them field by field. A field both defaulted and locked is locked."""
    defaults: dict[str, PresetValue] = {}
    locks: dict[str, PresetValue] = {}
    scopes: dict[str, str] = {}
    own_defaults, own_locks = config.field_defaults.given(), config.locked_fields.given()
    for field_name in PRESET_FIELDS:
        if field_name in own_defaults or field_name in own_locks:
            chosen = (own_defaults, own_locks, name)
        else:
            chosen = (hub_defaults.given(), hub_locks.given(), HUB_SCOPE)
        its_defaults, its_locks, scope = chosen
        if field_name in its_locks:
            locks[field_name] = its_locks[field_name]
            scopes[field_name] = scope
        elif field_name in its_defaults:
            defaults[field_name] = its_defaults[field_name]
            scopes[field_name] = scope
    return FieldPresets(defaults, locks, scopes)


def preset_conflicts(
    configs: Mapping[str, PartitionConfig], hub_defaults: FieldValues, hub_locks: FieldValues
) -> list[str]:
    """A default and a lock of the same field, at the same level, with different values: the
    default could never apply, so the admin meant something else."""
    problems = []
    levels = [("field_defaults / locked_fields", hub_defaults, hub_locks)]
    levels += [(f"partition {n!r}", c.field_defaults, c.locked_fields) for n, c in configs.items()]
    for where, defaults, locks in levels:
        locked = locks.given()
        for field_name, value in defaults.given().items():
            if field_name in locked and locked[field_name] != value:
                problems.append(
                    f"{where}: field {field_name!r} has a default ({value!r}) and a lock "
                    f"({locked[field_name]!r}); a locked field takes only its lock"
                )
    return problems
