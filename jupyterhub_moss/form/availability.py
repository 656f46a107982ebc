"""The availability table: read from the shared cluster snapshot only, never from Slurm."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..limits import PartitionLimits
from ..slurm.models import PartitionInfo
from ..slurm.nodes import node_state_usable
from ..slurm.view import ClusterSnapshot
from .choices import describe_duration
from .views import AvailabilityRow, AvailabilityView

_STATE_STYLES = {
    "up": ("up", "text-bg-success"),
    "down": ("down", "text-bg-danger"),
    "drain": ("drained", "text-bg-warning"),
    "inactive": ("inactive", "text-bg-secondary"),
}


def _unknown_row(part: PartitionLimits, selected: bool) -> AvailabilityRow:
    return AvailabilityRow(part.name, "—", "—", "—", "unknown", "text-bg-secondary", "", selected)


def _gpus_text(part: PartitionLimits, info: PartitionInfo) -> str:
    if not (part.has_gpus and info.gpus_total):
        return "—"
    if part.gpu_types:
        # free per type, the types the user chooses from: "fake 1 / 2, other 1 / 1"
        by_type = [_type_text(t.name, info) for t in part.gpu_types]
        return ", ".join(text for text in by_type if text) or "—"
    if info.gpus_used is None:
        return f"? / {info.gpus_total}"
    return f"{info.gpus_total - info.gpus_used} / {info.gpus_total}"


def _type_text(gpu_type: str, info: PartitionInfo) -> str:
    total = info.gpus_total_by_type.get(gpu_type, 0)
    if not total:
        return ""
    if info.gpus_used is None:
        return f"{gpu_type} ? / {total}"
    free = total - info.gpus_used_by_type.get(gpu_type, 0)
    return f"{gpu_type} {free} / {total}"


def _row(part: PartitionLimits, info: PartitionInfo, selected: bool) -> AvailabilityRow:
    label, style = _STATE_STYLES.get(info.state, (info.state or "unknown", "text-bg-secondary"))
    unusable = [s for s in info.node_states if not node_state_usable(s)]
    return AvailabilityRow(
        name=part.name,
        cpus=f"{info.cpus_idle} / {info.cpus_total}",
        nodes=f"{info.nodes_idle} / {info.nodes_total}",
        gpus=_gpus_text(part, info),
        state=label,
        state_style=style,
        note="some nodes unavailable" if info.state == "up" and unusable else "",
        selected=selected,
    )


def availability_status(snapshot: ClusterSnapshot | None, now: datetime) -> tuple[str, bool, str]:
    """The line under the table, whether the data is stale, and when it was taken."""
    if snapshot is None or snapshot.taken_at is None:
        status = "No data from Slurm yet: Slurm did not answer. Limits are the configured ones."
        return status, True, ""
    seconds = snapshot.age_seconds(now) or 0
    age = "moments" if seconds < 2 else describe_duration(seconds)
    if snapshot.is_stale:
        status = f"Showing data from {age} ago: Slurm did not answer."
    else:
        status = "Updated just now." if seconds < 2 else f"Updated {age} ago."
    return status, snapshot.is_stale, snapshot.taken_at.isoformat()


def availability_view(
    shown: Sequence[PartitionLimits],
    snapshot: ClusterSnapshot | None,
    selected: str,
    refresh_seconds: int,
    now: datetime,
) -> AvailabilityView:
    """The table for the partitions ``shown``, with ``selected`` highlighted."""
    rows = []
    for part in shown:
        info = snapshot.partitions.get(part.name) if snapshot else None
        chosen = part.name == selected
        rows.append(_unknown_row(part, chosen) if info is None else _row(part, info, chosen))
    status, stale, taken_at = availability_status(snapshot, now)
    return AvailabilityView(
        rows=rows,
        show_gpus=any(p.has_gpus for p in shown),
        status=status,
        stale=stale,
        taken_at=taken_at,
        refresh_seconds=refresh_seconds,
    )
