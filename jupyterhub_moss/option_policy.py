"""The admin's rules for user options: :class:`OptionsPolicy`, filled from the spawner's traits.

The parser (:mod:`.options`) and the field checks (:mod:`.option_fields`) both read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sbatch_options import DEFAULT_DENIED_SBATCH_OPTIONS, admin_locked_options

__all__ = ["OptionsPolicy"]


@dataclass(frozen=True)
class OptionsPolicy:
    """The admin's rules for user options (filled from the spawner's traits)."""

    allow_custom_environments: bool = True
    denied_sbatch_options: frozenset[str] = DEFAULT_DENIED_SBATCH_OPTIONS
    #: When set, only these options are accepted in ``options`` (strict sites).
    allowed_sbatch_options: frozenset[str] | None = None
    #: sbatch options the admin sets (``req_account``, ``req_qos``, ``req_reservation``, every
    #: option of ``req_options``): users may not replace them, in ``options`` or (for
    #: ``reservation``) in the reservation field.
    locked_sbatch_options: frozenset[str] = frozenset()
    #: Used when the request names no partition; "" makes ``partition`` required.
    default_partition: str = ""
    #: CPUs when none are requested; capped at the partition's maximum.
    default_nprocs: int = 1
    #: Seconds when no run time is requested; capped at the partition's maximum.
    default_runtime: int = 3600
    #: The admin's ``req_account`` / ``req_qos``: the only value the field accepts ("" = the
    #: user chooses among their own).
    fixed_account: str = ""
    fixed_qos: str = ""
    #: Configured partitions this user may not use, with the reason: (name, reason) pairs.
    refused_partitions: tuple[tuple[str, str], ...] = ()

    def partition_refusal(self, name: str) -> str | None:
        return dict(self.refused_partitions).get(name)

    @staticmethod
    def admin_locks(options: str, *, account: str, qos: str, reservation: str) -> frozenset[str]:
        """:attr:`locked_sbatch_options` from batchspawner's ``req_options``, ``req_account``,
        ``req_qos`` and ``req_reservation``."""
        return admin_locked_options(options, account=account, qos=qos, reservation=reservation)
