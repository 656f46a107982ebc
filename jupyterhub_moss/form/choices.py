"""The choices the form's controls offer, and the words they use, from a partition's limits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..limits import PartitionLimits
from ..option_presets import locked_value_text
from ..slurm.reservations import usable_reservations
from ..slurm.times import format_slurm_duration
from ..slurm.view import ClusterSnapshot
from .values import SIMPLE_START_PAGES, int_or_none, seconds_or_none
from .views import Choice, PartitionCard


def describe_duration(seconds: float) -> str:
    """``90`` → "1 min", ``5400`` → "1 h 30 min", ``86400`` → "1 day"."""
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} day{'s' if days > 1 else ''}"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes and not days:
        parts.append(f"{minutes} min")
    return " ".join(parts)


def memory_text(megabytes: int) -> str:
    if megabytes >= 1024 and megabytes % 1024 == 0:
        return f"{megabytes // 1024}G"
    return f"{megabytes}M"


def partition_summary(part: PartitionLimits) -> str:
    bits = [f"up to {part.max_nprocs} CPU{'s' if part.max_nprocs > 1 else ''}"]
    if part.has_gpus:
        bits.append(f"{part.max_ngpus} GPU{'s' if part.max_ngpus > 1 else ''}")
        if part.gpu_types:
            bits[-1] += f" ({', '.join(t.name for t in part.gpu_types)})"
    if part.max_runtime is not None:
        bits.append(describe_duration(part.max_runtime))
    return ", ".join(bits)


def partition_cards(shown: Sequence[PartitionLimits], selected: str) -> list[PartitionCard]:
    return [
        PartitionCard(
            p.name, p.description, p.architecture, partition_summary(p), p.state, p.name == selected
        )
        for p in shown
    ]


def partition_choices(shown: Sequence[PartitionLimits], selected: str) -> list[Choice]:
    return [
        Choice(p.name, " — ".join(x for x in (p.name, p.description) if x), p.name == selected)
        for p in shown
    ]


def number_choices(numbers: Sequence[int], current: str, minimum: int) -> list[Choice]:
    """Choices for a select; a valid current value outside them is kept as an extra choice,
    so the select shows (and submits) exactly what the user had."""
    wanted = int_or_none(current)
    values = sorted(
        set(numbers) | ({wanted} if wanted is not None and wanted >= minimum else set())
    )
    chosen = wanted if wanted in values else values[0]
    return [Choice(str(n), str(n), n == chosen) for n in values]


def gpu_numbers(part: PartitionLimits, gpu_type: str = "") -> list[int]:
    """Simple-tab GPU counts, up to the limit of ``gpu_type`` ("" = any type)."""
    most = part.max_ngpus_for(gpu_type)
    if most <= 8:
        return list(range(most + 1))
    return sorted({0, 1, 2, 4, most // 2, most})


def chosen_gpu_type(part: PartitionLimits, current: str) -> str:
    """The GPU type the form shows as chosen: ``current`` if the partition has it, else its
    default (any type, or the first type)."""
    return current if part.gpu_type(current) is not None else part.default_gpu_type


def gpu_type_choices(part: PartitionLimits, current: str) -> list[Choice]:
    """ "Any type" (where offered), then each type with its limit; [] without a type choice."""
    if not part.gpu_types:
        return []
    chosen = chosen_gpu_type(part, current)
    shown = [Choice("", "Any type", chosen == "")] if part.gpu_any_type else []
    for gpu_type in part.gpu_types:
        words = " — ".join(x for x in (gpu_type.name, gpu_type.description) if x)
        label = f"{words} (up to {gpu_type.max_ngpus})"
        shown.append(Choice(gpu_type.name, label, gpu_type.name == chosen))
    return shown


def runtime_choices(part: PartitionLimits, current: str) -> list[Choice]:
    wanted = seconds_or_none(current)
    seconds = set(part.runtime_choices())
    if wanted is not None and wanted > 0:
        seconds.add(wanted)
    ordered = sorted(seconds)
    chosen = wanted if wanted in seconds else ordered[0]
    return [Choice(format_slurm_duration(s), describe_duration(s), s == chosen) for s in ordered]


def environment_choices(part: PartitionLimits, current: str) -> list[Choice]:
    chosen = current if current in part.environments else part.default_environment_id
    return [
        Choice(env_id, env.description or env_id, env_id == chosen)
        for env_id, env in part.environments.items()
    ]


def start_page_choices(current: str) -> list[Choice]:
    chosen = current if current in {url for url, _ in SIMPLE_START_PAGES} else "/lab"
    return [Choice(url, label, url == chosen) for url, label in SIMPLE_START_PAGES]


def reservation_choices(
    snapshot: ClusterSnapshot | None, user_name: str, now: datetime
) -> list[Choice]:
    """The reservations ``user_name`` may use now or later, in words."""
    if snapshot is None:
        return []
    choices = []
    for reservation in usable_reservations(snapshot.reservations, user_name, now):
        when = []
        if reservation.start is not None:
            when.append(f"from {reservation.start.astimezone():%a %d %b %H:%M}")
        if reservation.end is not None:
            when.append(f"until {reservation.end.astimezone():%a %d %b %H:%M}")
        if reservation.partition:
            when.append(f"on {reservation.partition}")
        choices.append(Choice(reservation.name, " ".join(when) or reservation.name))
    return choices


def memory_hint(part: PartitionLimits) -> str:
    memory = part.max_memory_mb
    if memory:
        why = part.limit_note("memory") or " (a whole node)"
        return f"Empty for Slurm's default; at most {memory_text(memory)}{why}."
    return "Empty for Slurm's default. Examples: 512M, 16G."


def runtime_hint(part: PartitionLimits) -> str:
    if part.max_runtime is not None:
        at_most = format_slurm_duration(part.max_runtime)
        return f"hh:mm:ss, at most {at_most}{part.limit_note('runtime')}."
    return "hh:mm:ss."


def account_choices(part: PartitionLimits, current: str) -> list[Choice]:
    """The user's accounts on this partition, their default account first and marked."""
    return [
        Choice(
            choice.name,
            f"{choice.name} (your default)" if index == 0 else choice.name,
            choice.name == current,
        )
        for index, choice in enumerate(part.accounts)
    ]


def qos_choices(part: PartitionLimits, account: str, current: str) -> list[Choice]:
    """The QOS the account may use on this partition, each with its run-time limit."""
    choice = part.account(account)
    if choice is None:
        return []
    shown = []
    for name in choice.qos:
        limits = part.qos_limits.get(name)
        words = [name]
        if limits is not None and limits.max_runtime is not None:
            words.append(f"up to {format_slurm_duration(limits.max_runtime)}")
        if name == choice.default_qos:
            words.append("default")
        label = words[0] + (f" ({', '.join(words[1:])})" if len(words) > 1 else "")
        shown.append(Choice(name, label, name == current))
    return shown


def fixed_text(part: PartitionLimits, name: str, locked: object) -> str:
    """What the page shows for a field the admin locked: the value in the words of its
    control (an environment's description, the run time as Slurm prints it)."""
    if name == "environment_id":
        env = part.environments.get(str(locked))
        return (env.description or str(locked)) if env is not None else str(locked)
    if name == "output":
        return "Saved to slurm-<job id>.out in your home folder" if locked else "Not saved"
    if name == "gpu_type":
        chosen = part.gpu_type(str(locked))
        return (chosen.description or chosen.name) if chosen is not None else "Any type"
    if name == "runtime":
        seconds = seconds_or_none(str(locked))
        return describe_duration(seconds) if seconds is not None else str(locked)
    return locked_value_text(name, locked)  # type: ignore[arg-type]
