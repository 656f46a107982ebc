"""What the fields that shape the Slurm job accept, one check per field: partition, CPUs, GPUs,
memory, run time, reservation, extra sbatch options and the output flag.

Each ``check_*`` takes the raw value and returns the clean one, or raises :class:`InvalidField`
with a message for the user (the caller prefixes the field's name). The text helpers here
(:func:`as_text`, :func:`whole_number`, :func:`shown_value`) are shared with the checks of the
fields that name a place, in :mod:`.option_paths`. Every value that may reach the batch script is
checked against a character set that cannot break out of its place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .limits import PartitionLimits
from .option_policy import OptionsPolicy
from .sbatch_options import (
    MAX_OPTIONS_TEXT,
    SbatchOptionError,
    normalise_option_names,
    parse_sbatch_options,
)
from .slurm.times import format_slurm_duration, slurm_duration_seconds

__all__ = [
    "InvalidField",
    "as_text",
    "check_account",
    "check_gpu_type",
    "check_memory",
    "check_ngpus",
    "check_nprocs",
    "check_options",
    "check_output",
    "check_partition",
    "check_qos",
    "check_reservation",
    "check_runtime",
    "normalise_memory",
    "parse_runtime",
    "refuse_dot_dot",
    "shown_value",
    "whole_number",
]


class InvalidField(Exception):
    """Raised by a field check; the message is shown to the user, prefixed by the field."""


# ---------------------------------------------------------------------------------------------
# Text: what every field's value must be first


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_TEXT = 1024


def as_text(value: Any, *, limit: int = _MAX_TEXT) -> str:
    """The value as text with surrounding spaces removed; control characters refused outright
    (a stray newline is never silently trimmed into validity)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidField(f"expected text, got {type(value).__name__}")
    text = str(value)
    if _CONTROL_RE.search(text.replace("\t", " ")):
        raise InvalidField("control characters such as newlines are not allowed")
    text = text.strip(" \t")
    if len(text) > limit:
        raise InvalidField(f"at most {limit} characters")
    return text


def whole_number(value: Any) -> int | None:
    """An int from an int or a string of digits; None for "not set"."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidField(f"expected a whole number, got {type(value).__name__}")
    if isinstance(value, int):
        return value
    text = as_text(value)
    if not text:
        return None
    if not re.fullmatch(r"-?[0-9]{1,9}", text):
        raise InvalidField(f"expected a whole number, got {shown_value(text)}")
    return int(text)


def shown_value(text: str, limit: int = 40) -> str:
    """A bad value, echoed safely: repr escapes control characters; long values are cut."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def refuse_dot_dot(path: str) -> None:
    if ".." in path.split("/"):
        raise InvalidField("must not contain '..' segments")


# ---------------------------------------------------------------------------------------------
# Slurm value syntax

#: A user's ``--time`` in seconds: Slurm's own grammar, with field lengths bounded. Note
#: ``"2:00"`` is two *minutes* to Slurm, not two hours. The same function as
#: :func:`~jupyterhub_moss.slurm.times.slurm_duration_seconds`, under the options' name.
parse_runtime = slurm_duration_seconds


_MEMORY_RE = re.compile(r"^(?P<amount>[0-9]{1,12}) *(?P<unit>[KMGT])?B?$", re.IGNORECASE | re.ASCII)
_MB_PER_UNIT = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


def normalise_memory(text: str) -> tuple[str, float]:
    match = _MEMORY_RE.fullmatch(text.strip())
    if not match:
        raise ValueError(text)
    amount = int(match["amount"])
    unit = (match["unit"] or "M").upper()
    normalised = "0" if amount == 0 else f"{amount}{unit}"
    return normalised, amount * _MB_PER_UNIT[unit]


# ---------------------------------------------------------------------------------------------
# The resource fields

_RESERVATION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_BOOL_WORDS = {
    "true": True,
    "on": True,
    "1": True,
    "yes": True,
    "false": False,
    "off": False,
    "0": False,
    "no": False,
    "": False,
}


def check_partition(
    value: Any, limits: Mapping[str, PartitionLimits], policy: OptionsPolicy
) -> PartitionLimits:
    name = as_text(value) or policy.default_partition
    if not name:
        raise InvalidField(f"required; one of: {', '.join(limits) or 'none configured'}")
    if name not in limits:
        refusal = policy.partition_refusal(name)
        if refusal:
            raise InvalidField(f"you may not use {name}: {refusal}")
        raise InvalidField(f"unknown partition {shown_value(name)}; one of: {', '.join(limits)}")
    return limits[name]


_SLURM_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def _slurm_name(text: str) -> str:
    if text and not _SLURM_NAME_RE.fullmatch(text):
        raise InvalidField(
            f"not a Slurm name (letters, digits, '_', '.', '-'): {shown_value(text)}"
        )
    return text


def _fixed(text: str, fixed: str) -> str:
    if text and text != fixed:
        raise InvalidField(f"set to {fixed} by this hub's administrator")
    return fixed


def check_account(value: Any, part: PartitionLimits | None, policy: OptionsPolicy) -> str:
    """The account to charge: the admin's ``req_account`` if set; else one of the user's
    accounts allowed on the partition (their default when empty). When the hub does not know
    the user's accounts (no accounting database), a well-formed name goes to Slurm as it is."""
    text = _slurm_name(as_text(value))
    if part is not None and part.no_account:
        raise InvalidField(part.no_account)
    if policy.fixed_account:
        return _fixed(text, policy.fixed_account)
    if part is None or not part.accounts:
        return text
    if not text:
        return part.accounts[0].name
    if part.account(text) is None:
        yours = ", ".join(choice.name for choice in part.accounts)
        raise InvalidField(f"you cannot charge {shown_value(text)} on {part.name}; yours: {yours}")
    return text


def check_qos(value: Any, part: PartitionLimits | None, account: str, policy: OptionsPolicy) -> str:
    """The QOS: the admin's ``req_qos`` if set; else one the account may use on the partition
    (the association's default when empty)."""
    text = _slurm_name(as_text(value))
    if policy.fixed_qos:
        return _fixed(text, policy.fixed_qos)
    choice = part.account(account) if part is not None else None
    if choice is None:
        return text
    if not text:
        return choice.default_qos
    if text not in choice.qos:
        allowed = ", ".join(choice.qos) or "none"
        raise InvalidField(
            f"account {account} may not use QOS {shown_value(text)} on {part.name}; "
            f"allowed: {allowed}"
        )
    return text


def check_nprocs(value: Any, part: PartitionLimits | None, policy: OptionsPolicy) -> int:
    nprocs = whole_number(value)
    if part is None:
        return nprocs or 1
    if nprocs is None:
        return max(1, min(policy.default_nprocs, part.max_nprocs))
    if nprocs < 1:
        raise InvalidField(f"at least 1 CPU (up to {part.max_nprocs} on {part.name})")
    if nprocs > part.max_nprocs:
        raise InvalidField(
            f"at most {part.max_nprocs} CPUs on {part.name}{part.limit_note('nprocs')}"
        )
    return nprocs


def check_gpu_type(value: Any, part: PartitionLimits | None) -> str:
    """One of the partition's GPU types, or "" for any type (or the partition's default type,
    when it offers no "any type"). A partition without a type choice takes no type."""
    text = as_text(value)
    if not text or part is None:
        return text or (part.default_gpu_type if part is not None else "")
    if not part.gpu_types:
        raise InvalidField(f"{part.name} offers no choice of GPU type; leave it empty")
    if part.gpu_type(text) is None:
        names = ", ".join(gpu_type.name for gpu_type in part.gpu_types)
        any_type = " (or empty for any type)" if part.gpu_any_type else ""
        raise InvalidField(
            f"{part.name} has no GPU type {shown_value(text)}; one of: {names}{any_type}"
        )
    return text


def check_ngpus(value: Any, part: PartitionLimits | None, gpu_type: str = "") -> int:
    """A GPU count within the limit of ``gpu_type`` ("" = any type) on the partition."""
    ngpus = whole_number(value) or 0
    if ngpus < 0:
        raise InvalidField("cannot be negative")
    if part is None or ngpus == 0:
        return ngpus
    if not part.has_gpus:
        raise InvalidField(f"{part.name} has no GPUs; use 0")
    limit = part.max_ngpus_for(gpu_type)
    if ngpus > limit:
        what = f"{gpu_type} GPUs" if part.gpu_type(gpu_type) else "GPUs"
        raise InvalidField(f"at most {limit} {what} on {part.name}{part.gpu_limit_note(gpu_type)}")
    return ngpus


def check_memory(value: Any, part: PartitionLimits | None) -> str:
    text = as_text(value)
    if not text:
        return ""
    try:
        normalised, megabytes = normalise_memory(text)
    except ValueError:
        raise InvalidField(
            "expected a Slurm size such as 512M or 16G (0 = all of the node's), "
            f"got {shown_value(text)}"
        ) from None
    if part is not None and part.max_memory_mb is not None and megabytes > part.max_memory_mb:
        raise InvalidField(
            f"at most {part.max_memory_mb}M on {part.name}{part.limit_note('memory')}"
        )
    return normalised


def check_runtime(value: Any, part: PartitionLimits | None, policy: OptionsPolicy) -> str:
    text = as_text(value)
    limit = part.max_runtime if part else None
    if not text:
        seconds = policy.default_runtime if limit is None else min(policy.default_runtime, limit)
        return format_slurm_duration(seconds)
    try:
        seconds = parse_runtime(text)
    except ValueError:
        raise InvalidField(
            "expected hh:mm:ss, d-hh:mm:ss or minutes (Slurm reads 2:00 as 2 minutes), "
            f"got {shown_value(text)}"
        ) from None
    if seconds <= 0:
        raise InvalidField("must be longer than 0")
    if limit is not None and seconds > limit:
        raise InvalidField(
            f"at most {format_slurm_duration(limit)} on {part.name}{part.limit_note('runtime')}"
        )
    return format_slurm_duration(seconds)


def check_reservation(value: Any, policy: OptionsPolicy) -> str:
    text = as_text(value)
    if text and not _RESERVATION_RE.fullmatch(text):
        raise InvalidField(
            f"not a Slurm reservation name (letters, digits, '_', '.', '-'): {shown_value(text)}"
        )
    if text and "reservation" in normalise_option_names(policy.locked_sbatch_options):
        raise InvalidField("set by this hub's administrator; leave it empty")
    return text


def check_options(value: Any, policy: OptionsPolicy) -> list[str]:
    text = as_text(value, limit=MAX_OPTIONS_TEXT)
    try:
        return parse_sbatch_options(
            text,
            denied=policy.denied_sbatch_options,
            allowed=policy.allowed_sbatch_options,
            locked=policy.locked_sbatch_options,
        )
    except SbatchOptionError as exc:
        raise InvalidField(str(exc)) from None


def check_output(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = as_text(value).lower()
    if text not in _BOOL_WORDS:
        raise InvalidField(f"expected true or false, got {shown_value(text)}")
    return _BOOL_WORDS[text]
