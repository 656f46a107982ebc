"""Plain data the spawner hands to the rest of the package, built once per request or spawn.

The spawner is the only module that reads traits, the hub and the handler. It builds:

- a :class:`SpawnRequest` once per spawn: the validated options and the partition limits they
  were checked against, which ``start()`` and the batch script use as they are (no second parse,
  so validation and the script cannot see two different snapshots);
"""

from __future__ import annotations

from dataclasses import dataclass

from .limits import PartitionLimits
from .options import UserOptions

__all__ = ["SpawnRequest"]


@dataclass(frozen=True)
class SpawnRequest:
    """One spawn's validated options, and the limits of its partition they were checked against."""

    options: UserOptions
    partition: PartitionLimits
