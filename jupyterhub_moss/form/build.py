"""Build the :class:`~.views.FormView` for a context, a tab and the values to show."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..context import FormContext
from ..limits import PartitionLimits, charged_limits
from ..options import FIELD_NAMES
from ..sessions import sessions_view
from . import choices
from .availability import availability_view
from .values import (
    ADVANCED,
    ADVANCED_ONLY_FIELDS,
    FIELD_LABELS,
    SIMPLE,
    advanced_values_in,
    display_text,
    tab_default_partition,
    tab_partitions,
)
from .views import EstimateView, FieldView, FormTarget, FormView


def _chosen_partition(
    ctx: FormContext, shown: list[PartitionLimits], values: Mapping[str, str]
) -> PartitionLimits:
    by_name = {p.name: p for p in shown}
    wanted = by_name.get(values.get("partition", ""))
    return wanted or by_name[tab_default_partition(shown, ctx.policy)]


def _fields(
    values: Mapping[str, str], errors: Mapping[str, str], partition: PartitionLimits
) -> dict[str, FieldView]:
    fields = {
        name: FieldView(name, display_text(values.get(name, "")), errors.get(name, ""))
        for name in FIELD_NAMES
    }
    for name, locked in partition.presets.locks.items():
        fields[name] = FieldView(
            name,
            display_text(values.get(name, "")),
            errors.get(name, ""),
            locked=True,
            fixed_text=choices.fixed_text(partition, name, locked),
        )
    fields["partition"] = FieldView("partition", partition.name, errors.get("partition", ""))
    return fields


def _fields_on_tab(ctx: FormContext, tab: str, partition: PartitionLimits) -> set[str]:
    """The fields the tab shows: a message for any other goes at the top of the form."""
    on_tab = set(FIELD_NAMES) if tab == ADVANCED else set(FIELD_NAMES) - set(ADVANCED_ONLY_FIELDS)
    if not partition.has_gpus:
        on_tab.discard("ngpus")
    if not (partition.has_gpus and partition.gpu_types):
        on_tab.discard("gpu_type")
    if tab == ADVANCED and not ctx.policy.allow_custom_environments:
        on_tab -= {"environment_path", "environment_modules"}
    return on_tab


def _tab_controls(
    ctx: FormContext,
    tab: str,
    shown: list[PartitionLimits],
    partition: PartitionLimits,
    fields: Mapping[str, FieldView],
    now: datetime,
) -> dict[str, Any]:
    """What only one tab shows, built for that tab alone: the Simple tab's cards and selects,
    or the Advanced tab's partition select, reservations and hints."""
    if tab == SIMPLE:
        gpu_type = choices.chosen_gpu_type(partition, fields["gpu_type"].value)
        return dict(
            partition_cards=choices.partition_cards(shown, partition.name),
            cpu_choices=choices.number_choices(partition.cpu_choices(), fields["nprocs"].value, 1),
            gpu_choices=choices.number_choices(
                choices.gpu_numbers(partition, gpu_type), fields["ngpus"].value, 0
            ),
            runtime_choices=choices.runtime_choices(partition, fields["runtime"].value),
        )
    return dict(
        partition_choices=choices.partition_choices(shown, partition.name),
        reservations=choices.reservation_choices(ctx.snapshot, ctx.user_name, now),
        memory_hint=choices.memory_hint(partition),
        runtime_hint=choices.runtime_hint(partition),
    )


def build_view(
    ctx: FormContext,
    *,
    tab: str,
    values: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
    estimate: EstimateView | None = None,
    now: datetime | None = None,
    link_came_from: str = "",
) -> FormView:
    """The form of ``ctx`` showing ``values`` (already cleaned, or a rejected submission shown
    as typed) with ``errors`` next to their fields. Never raises for odd values."""
    now = now or datetime.now(timezone.utc)
    errors = dict(errors or {})
    shown = tab_partitions(ctx.limits, tab)
    offered = _chosen_partition(ctx, shown, values)
    # the form's maxima and hints are those of the chosen account and QOS
    partition = charged_limits(offered, values.get("account", ""), values.get("qos", ""))
    fields = _fields(values, errors, partition)
    on_tab = _fields_on_tab(ctx, tab, partition)
    return FormView(
        target=FormTarget(ctx.user_name, ctx.server_name),
        tab=tab,
        hub_prefix=ctx.hub_prefix,
        xsrf_token=ctx.xsrf_token,
        partition=partition,
        fields=fields,
        **_tab_controls(ctx, tab, shown, partition, fields, now),
        environment_choices=choices.environment_choices(partition, fields["environment_id"].value),
        gpu_type_choices=choices.gpu_type_choices(partition, fields["gpu_type"].value),
        gpu_type=choices.chosen_gpu_type(partition, fields["gpu_type"].value),
        start_page_choices=choices.start_page_choices(fields["default_url"].value),
        allow_custom_environments=ctx.policy.allow_custom_environments,
        availability=availability_view(
            shown, ctx.snapshot, partition.name, ctx.refresh_seconds, now
        ),
        estimate=estimate,
        other_errors=[msg for name, msg in errors.items() if name not in on_tab],
        not_in_simple=[FIELD_LABELS[f] for f in advanced_values_in(values)]
        if tab == SIMPLE
        else [],
        link_came_from=link_came_from,
        account_choices=choices.account_choices(partition, fields["account"].value),
        qos_choices=choices.qos_choices(partition, fields["account"].value, fields["qos"].value),
        fixed_account=ctx.policy.fixed_account,
        fixed_qos=ctx.policy.fixed_qos,
        sessions=sessions_view(
            ctx.sessions,
            now,
            warning_minutes=ctx.session_warning_minutes,
            refresh_seconds=ctx.refresh_seconds,
            hub_prefix=ctx.hub_prefix,
        ),
    )
