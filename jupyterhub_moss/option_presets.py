"""The admin's defaults and locks (:mod:`.presets`) as the user-options parser applies them.

:func:`apply_presets` runs once the partition (and the account and QOS it charges) is known,
before the fields are checked: a lock replaces what was sent, and refuses a different value; a
default fills a field left out, fitted to the user's limits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .limits import PartitionLimits
from .option_fields import (
    InvalidField,
    as_text,
    check_output,
    normalise_memory,
    parse_runtime,
    whole_number,
)
from .option_paths import check_default_url
from .presets import PresetValue
from .slurm.times import format_slurm_duration

__all__ = ["apply_presets", "fitted_default", "locked_value_text"]


def apply_presets(
    raw: Mapping[str, Any], part: PartitionLimits, get: Callable[[str], Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``raw`` with the partition's defaults and locks filled in, and the fields refused for
    sending another value than their lock. ``get(name)`` reads one sent value.

    A locked field takes its lock whatever was sent. The lock then goes through the field's
    check like any value, so nothing invalid reaches Slurm because an admin wrote it. A default
    fills a field left out, fitted to ``part``.
    """
    presets = part.presets
    filled = dict(raw)
    errors: dict[str, str] = {}
    for name, locked in presets.locks.items():
        sent = get(name)
        if _is_set(sent) and not _same_value(name, sent, locked):
            errors[name] = (
                f"{name}: set to {locked_value_text(name, locked)} by this hub's administrators"
                f"{presets.where(name)}; leave it out or send that value"
            )
        filled[name] = locked
    for name, default in presets.defaults.items():
        if not _is_set(get(name)):
            fitted = fitted_default(name, default, part, _gpu_type_of(filled))
            if fitted is not None:
                filled[name] = fitted
    return filled, errors


def _gpu_type_of(filled: Mapping[str, Any]) -> str:
    """The GPU type a request has so far (sent, locked or defaulted), for fitting its count."""
    value = filled.get("gpu_type") or ""
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else ""
    return value.strip() if isinstance(value, str) else ""


def _is_set(value: Any) -> bool:
    return not (value is None or (isinstance(value, str) and not value.strip(" \t")))


def _normalised(name: str, value: Any) -> Any:
    """A field's value in the one form the parser keeps, to compare a sent value with a lock."""
    if name == "runtime":
        return format_slurm_duration(parse_runtime(as_text(value)))
    if name in ("nprocs", "ngpus"):
        return whole_number(value)
    if name == "memory":
        return normalise_memory(as_text(value))[1]  # megabytes: 4G is 4096M
    if name == "default_url":
        return check_default_url(value)
    if name == "output":
        return check_output(value)
    return as_text(value)


def _same_value(name: str, sent: Any, locked: PresetValue) -> bool:
    try:
        return _normalised(name, sent) == _normalised(name, locked)
    except (InvalidField, ValueError):
        return False  # not even valid: certainly not the lock


def locked_value_text(name: str, value: PresetValue) -> str:
    """A lock as the page and the messages show it: normalised when it parses."""
    if name == "output":
        return "saving logs" if value else "not saving logs"
    if name == "memory":
        try:
            return normalise_memory(as_text(value))[0]
        except (InvalidField, ValueError):
            return str(value)
    try:
        return str(_normalised(name, value))
    except (InvalidField, ValueError):
        return str(value)


def fitted_default(
    name: str, value: PresetValue, part: PartitionLimits, gpu_type: str = ""
) -> PresetValue | None:
    """A default cut to what ``part`` allows the user now (None: it does not apply here);
    a GPU count to the limit of ``gpu_type``, the type the request has (sent or preset).

    Slurm, a QOS or an account may allow less than the admin's default assumed; the default
    then gives the most that is allowed, so leaving a field out is never refused.
    """
    if name == "nprocs":
        return min(int(value), part.max_nprocs)
    if name == "ngpus":
        return min(int(value), part.max_ngpus_for(gpu_type)) if part.has_gpus else None
    if name == "gpu_type":
        return value if value == "" or part.gpu_type(str(value)) is not None else None
    if name == "environment_id":
        return value if value in part.environments else None
    if name == "runtime" and part.max_runtime is not None:
        try:
            seconds = parse_runtime(str(value))
        except ValueError:
            return value  # the check says why
        return format_slurm_duration(min(seconds, part.max_runtime))
    if name == "memory" and part.max_memory_mb is not None:
        try:
            _, megabytes = normalise_memory(str(value))
        except ValueError:
            return value
        return f"{part.max_memory_mb}M" if megabytes > part.max_memory_mb else value
    return value
