"""Which tab and which values the form shows: the user's input, cleaned against the limits.

Everything here is lenient: a value the partition cannot take is reset, never reported, because
switching tabs or partitions submits nothing. What a submission gets wrong is the validator's
business (:func:`~jupyterhub_moss.options.parse_user_options`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..limits import PartitionLimits
from ..option_fields import parse_runtime
from ..options import (
    FIELD_NAMES,
    OptionsPolicy,
    UserOptionsError,
    parse_user_options,
    salvage_saved_options,
)
from ..request_values import normalise_query

SIMPLE, ADVANCED = "simple", "advanced"
TAB_LABELS = {SIMPLE: "Simple", ADVANCED: "Advanced"}

#: Fields only the Advanced tab has: the Simple tab neither shows nor submits them.
ADVANCED_ONLY_FIELDS = (
    "memory",
    "reservation",
    "options",
    "output",
    "root_dir",
    "environment_path",
    "environment_modules",
)
FIELD_LABELS = {
    "partition": "partition",
    "nprocs": "CPUs",
    "ngpus": "GPUs",
    "gpu_type": "GPU type",
    "memory": "memory",
    "runtime": "run time",
    "reservation": "reservation",
    "options": "extra sbatch options",
    "output": "saving logs",
    "default_url": "start page",
    "root_dir": "root folder",
    "environment_id": "environment",
    "environment_path": "custom environment path",
    "environment_modules": "custom environment modules",
    "account": "account",
    "qos": "QOS",
}
#: Keys a browser form or link may send that are not spawn options (the page's own state).
FORM_ONLY_KEYS = frozenset({"_xsrf", "moss_tab"})
SIMPLE_START_PAGES = (("/lab", "JupyterLab"), ("/tree", "Jupyter Notebook"))
TRUE_WORDS = frozenset({"true", "on", "1", "yes"})


def display_text(value: object) -> str:
    """One value as a control shows it: the last of a list, bytes decoded, None as ""."""
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def shown_values(values: Mapping[str, object]) -> dict[str, str]:
    """The spawn options among ``values``, as text (what a rejected submission shows again)."""
    return {str(k): display_text(v) for k, v in values.items() if k in FIELD_NAMES}


def int_or_none(text: str) -> int | None:
    try:
        return int(str(text).strip())
    except ValueError:
        return None


def seconds_or_none(text: str) -> int | None:
    try:
        return parse_runtime(str(text)) if str(text).strip() else None
    except ValueError:
        return None


def tab_partitions(limits: Mapping[str, PartitionLimits], tab: str) -> list[PartitionLimits]:
    """The Advanced tab offers every partition, the Simple tab the ``simple`` ones (or all,
    when the admin marked none)."""
    every = list(limits.values())
    if tab == ADVANCED:
        return every
    return [p for p in every if p.simple] or every


def tab_default_partition(shown: Sequence[PartitionLimits], policy: OptionsPolicy) -> str:
    names = [p.name for p in shown]
    return policy.default_partition if policy.default_partition in names else names[0]


def carry_over(
    raw: Mapping[str, Any],
    limits: Mapping[str, PartitionLimits],
    policy: OptionsPolicy,
    tab: str,
) -> dict[str, str]:
    """What the browser sent, cleaned for ``tab``: valid values kept, the rest reset to defaults.

    Used when switching tabs or partitions: a value the new partition cannot take (8 GPUs on a
    CPU partition) is dropped rather than reported, because the user did not submit anything.
    """
    shown = tab_partitions(limits, tab)
    wanted = display_text(raw.get("partition", ""))
    partition = (
        wanted if wanted in {p.name for p in shown} else tab_default_partition(shown, policy)
    )
    candidate = {k: v for k, v in raw.items() if k in FIELD_NAMES}
    candidate["partition"] = partition
    return salvage_saved_options(candidate, limits, policy) or salvage_saved_options(
        {"partition": partition}, limits, policy
    )


def advanced_values_in(values: Mapping[str, str]) -> list[str]:
    """Fields holding something the Simple tab cannot show (and would therefore not submit)."""
    found = [
        name for name in ADVANCED_ONLY_FIELDS if name != "output" and values.get(name, "").strip()
    ]
    if values.get("output", "").strip().lower() in TRUE_WORDS:
        found.append("output")
    if values.get("default_url", "") not in ("", *(url for url, _ in SIMPLE_START_PAGES)):
        found.append("default_url")
    return found


def infer_tab(values: Mapping[str, str], limits: Mapping[str, PartitionLimits]) -> str:
    """Open the tab that can show saved options as they are."""
    part = limits.get(values.get("partition", ""))
    if part is None:
        return SIMPLE
    simple_names = {p.name for p in tab_partitions(limits, SIMPLE)}
    if part.name not in simple_names or advanced_values_in(values):
        return ADVANCED
    nprocs = int_or_none(values.get("nprocs", ""))
    if nprocs is not None and nprocs not in part.cpu_choices():
        return ADVANCED
    runtime = seconds_or_none(values.get("runtime", ""))
    if runtime is not None and runtime not in part.runtime_choices():
        return ADVANCED
    return SIMPLE


def checked_link(
    query: Mapping[str, Any],
    limits: Mapping[str, PartitionLimits],
    policy: OptionsPolicy,
) -> tuple[dict[str, str], dict[str, str]]:
    """A held link's values as it wrote them, and what the validator says of them.

    Shown as written, not cleaned: the user confirms what the link asks for, and the link's
    own words (an ``environment_path``, extra sbatch options) are what they must see.
    """
    raw = {k: v for k, v in normalise_query(query).items() if k not in FORM_ONLY_KEYS}
    values = shown_values(raw)
    try:
        parse_user_options(raw, limits, policy)
    except UserOptionsError as exc:
        return values, dict(exc.errors)
    return values, {}
