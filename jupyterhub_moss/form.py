"""The spawn page's form: what it shows, computed from the limits the validator uses.

:func:`render_options_form` is the spawner's ``options_form``: JupyterHub inserts its HTML into
``spawn.html`` with ``|safe``, so everything here goes through an autoescaping Jinja environment.
The htmx fragment handlers (:mod:`.handlers.fragments`) render single named blocks of the same
template (``templates/moss_form.html``) from the same :class:`FormView`, so the page and its
partial updates cannot drift apart.

Data flows one way: cluster snapshot + config → :class:`~.limits.PartitionLimits` → the values
to show (saved options, a rejected submission, or what the browser sent, each cleaned against
those limits) → :class:`FormView` → HTML.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pwd
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
from jinja2 import nodes

from ._version import __version__
from .batch_script import ScriptSettings, job_sbatch_arguments
from .limits import PartitionLimits
from .log_safe import log_safe
from .options import (
    FIELD_NAMES,
    OptionsPolicy,
    UserOptions,
    UserOptionsError,
    flatten_form,
    format_runtime,
    normalise_query,
    parse_runtime,
    parse_user_options,
    salvage_saved_options,
)
from .rejections import RejectedSubmissions
from .slurm.estimates import StartEstimator
from .slurm.models import StartEstimate
from .slurm.parsing import node_state_usable, usable_reservations
from .slurm.view import ClusterSnapshot

if TYPE_CHECKING:
    from .spawner import MOSlurmSpawner

__all__ = [
    "ADVANCED",
    "FRAGMENT_BLOCKS",
    "SIMPLE",
    "TEMPLATE_NAME",
    "FormTarget",
    "FormView",
    "carry_over",
    "remember_rejected_submission",
    "render_fragment",
    "render_options_form",
]

log = logging.getLogger(__name__)

TEMPLATE_NAME = "moss_form.html"
PACKAGE_TEMPLATES = Path(__file__).parent / "templates"
#: Admin templates reach ours under this prefix: ``{% extends "jupyterhub_moss/moss_form.html" %}``.
PACKAGE_TEMPLATE_PREFIX = "jupyterhub_moss"

SIMPLE, ADVANCED = "simple", "advanced"
TAB_LABELS = {SIMPLE: "Simple", ADVANCED: "Advanced"}

#: Fragment name in the URL → the template block it renders.
FRAGMENT_BLOCKS = {
    "body": "form_body",
    "partition": "partition_controls",
    "estimate": "estimate",
    "availability": "availability",
}

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
}
#: Keys a browser form or link may send that are not spawn options (the page's own state).
FORM_ONLY_KEYS = frozenset({"_xsrf", "moss_tab"})
SIMPLE_START_PAGES = (("/lab", "JupyterLab"), ("/tree", "Jupyter Notebook"))
_TRUE_WORDS = frozenset({"true", "on", "1", "yes"})

# ---------------------------------------------------------------------------------------------
# Whose server the form starts, and a rejected submission waiting to be shown


@dataclass(frozen=True)
class FormTarget:
    """The server a form is for: fragment URLs carry it, so an admin's view stays on it."""

    user_name: str
    server_name: str = ""


# One store for the hub, bounded (see :mod:`.rejections`).
_rejections = RejectedSubmissions()


def remember_rejected_submission(
    spawner: MOSlurmSpawner, values: Mapping[str, object], errors: Mapping[str, str]
) -> None:
    """Keep a rejected submission so the re-rendered form shows its values and messages."""
    shown = {str(k): _display_text(v) for k, v in values.items() if k in FIELD_NAMES}
    _rejections.remember(spawner.user.name, spawner.name or "", shown, errors, FIELD_NAMES)


def _display_text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


# ---------------------------------------------------------------------------------------------
# Which partitions a tab offers, and what values to show


def tab_partitions(limits: Mapping[str, PartitionLimits], tab: str) -> list[PartitionLimits]:
    """The Advanced tab offers every partition, the Simple tab the ``simple`` ones (or all,
    when the admin marked none)."""
    every = list(limits.values())
    if tab == ADVANCED:
        return every
    return [p for p in every if p.simple] or every


def _tab_default_partition(shown: Sequence[PartitionLimits], policy: OptionsPolicy) -> str:
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
    wanted = _display_text(raw.get("partition", ""))
    partition = (
        wanted if wanted in {p.name for p in shown} else _tab_default_partition(shown, policy)
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
    if values.get("output", "").strip().lower() in _TRUE_WORDS:
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
    nprocs = _int_or_none(values.get("nprocs", ""))
    if nprocs is not None and nprocs not in part.cpu_choices():
        return ADVANCED
    runtime = _seconds_or_none(values.get("runtime", ""))
    if runtime is not None and runtime not in part.runtime_choices():
        return ADVANCED
    return SIMPLE


def _int_or_none(text: str) -> int | None:
    try:
        return int(str(text).strip())
    except ValueError:
        return None


def _seconds_or_none(text: str) -> int | None:
    try:
        return parse_runtime(str(text)) if str(text).strip() else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# The view: plain data for the template


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    selected: bool = False


@dataclass(frozen=True)
class FieldView:
    """One control's value and message; ids tie the message to the control for screen readers."""

    name: str
    value: str
    error: str = ""

    @property
    def id(self) -> str:
        return "moss-" + self.name.replace("_", "-")

    @property
    def help_id(self) -> str:
        return self.id + "-help"

    @property
    def error_id(self) -> str:
        return self.id + "-error"

    @property
    def invalid(self) -> str:
        """Bootstrap's class for a control with a message."""
        return " is-invalid" if self.error else ""

    @property
    def checked(self) -> bool:
        return self.value.strip().lower() in _TRUE_WORDS

    def described_by(self, *ids: str) -> str:
        return " ".join([*ids, self.error_id] if self.error else ids)


@dataclass(frozen=True)
class PartitionCard:
    name: str
    description: str
    architecture: str
    summary: str
    state: str
    selected: bool


@dataclass(frozen=True)
class TabView:
    id: str
    label: str
    active: bool

    @property
    def hx_vals(self) -> str:
        return json.dumps({"moss_tab": self.id})


@dataclass(frozen=True)
class AvailabilityRow:
    name: str
    cpus: str  # "idle / total", or "—" when Slurm did not say
    nodes: str
    gpus: str
    state: str
    state_style: str  # Bootstrap badge classes
    note: str
    selected: bool


@dataclass(frozen=True)
class AvailabilityView:
    rows: list[AvailabilityRow]
    show_gpus: bool
    status: str
    stale: bool
    taken_at: str  # ISO 8601, "" when there is no data
    refresh_seconds: int

    @property
    def hx_trigger(self) -> str:
        # Poll only while the page is visible, and refresh at once when it becomes visible
        # again; a change in the form moves the highlighted row (all from the shared snapshot).
        visible = "[document.visibilityState === 'visible']"
        return (
            f"every {self.refresh_seconds}s {visible}, "
            f"visibilitychange{visible} from:document, "
            "change from:closest form"
        )


@dataclass(frozen=True)
class EstimateView:
    text: str
    starts_now: bool
    start: str  # ISO 8601


@dataclass(frozen=True)
class FormView:
    """Everything ``moss_form.html`` shows. Built by :func:`build_view`, never by hand."""

    target: FormTarget
    tab: str
    hub_prefix: str  # "{base_url}hub/"
    xsrf_token: str
    partition: PartitionLimits
    partition_cards: list[PartitionCard]
    partition_choices: list[Choice]
    fields: dict[str, FieldView]
    cpu_choices: list[Choice]
    gpu_choices: list[Choice]
    runtime_choices: list[Choice]
    environment_choices: list[Choice]
    start_page_choices: list[Choice]
    reservations: list[Choice]
    allow_custom_environments: bool
    availability: AvailabilityView
    estimate: EstimateView | None
    other_errors: list[str]
    not_in_simple: list[str]
    memory_hint: str
    runtime_hint: str
    #: Where a query spawn held for the user's click came from (see handlers.spawn_page), or "".
    link_came_from: str = ""

    @property
    def tabs(self) -> list[TabView]:
        return [TabView(tab, label, tab == self.tab) for tab, label in TAB_LABELS.items()]

    @property
    def hx_headers(self) -> str:
        """Plain JSON for ``hx-headers`` (never the ``js:`` form); "" without a token."""
        return json.dumps({"X-XSRFToken": self.xsrf_token}) if self.xsrf_token else ""

    @property
    def reset_vals(self) -> str:
        return json.dumps({"moss_tab": self.tab})

    def field(self, name: str) -> FieldView:
        return self.fields[name]

    def fragment_url(self, fragment: str) -> str:
        user = quote(self.target.user_name, safe="")
        server = quote(self.target.server_name, safe="")
        return f"{self.hub_prefix}moss/form/{fragment}/{user}/{server}"

    def static_url(self, name: str) -> str:
        return f"{self.hub_prefix}moss/static/{name}?v={quote(__version__)}"


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


def _memory_text(megabytes: int) -> str:
    if megabytes >= 1024 and megabytes % 1024 == 0:
        return f"{megabytes // 1024}G"
    return f"{megabytes}M"


def _summary(part: PartitionLimits) -> str:
    bits = [f"up to {part.max_nprocs} CPU{'s' if part.max_nprocs > 1 else ''}"]
    if part.has_gpus:
        bits.append(f"{part.max_ngpus} GPU{'s' if part.max_ngpus > 1 else ''}")
    if part.max_runtime is not None:
        bits.append(describe_duration(part.max_runtime))
    return ", ".join(bits)


def _number_choices(numbers: Sequence[int], current: str, minimum: int) -> list[Choice]:
    """Choices for a select; a valid current value outside them is kept as an extra choice,
    so the select shows (and submits) exactly what the user had."""
    wanted = _int_or_none(current)
    values = sorted(
        set(numbers) | ({wanted} if wanted is not None and wanted >= minimum else set())
    )
    chosen = wanted if wanted in values else values[0]
    return [Choice(str(n), str(n), n == chosen) for n in values]


def _gpu_numbers(part: PartitionLimits) -> list[int]:
    if part.max_ngpus <= 8:
        return list(range(part.max_ngpus + 1))
    return sorted({0, 1, 2, 4, part.max_ngpus // 2, part.max_ngpus})


def _runtime_choices(part: PartitionLimits, current: str) -> list[Choice]:
    wanted = _seconds_or_none(current)
    seconds = set(part.runtime_choices())
    if wanted is not None and wanted > 0:
        seconds.add(wanted)
    ordered = sorted(seconds)
    chosen = wanted if wanted in seconds else ordered[0]
    return [Choice(format_runtime(s), describe_duration(s), s == chosen) for s in ordered]


def _environment_choices(part: PartitionLimits, current: str) -> list[Choice]:
    chosen = current if current in part.environments else part.default_environment_id
    return [
        Choice(env_id, env.description or env_id, env_id == chosen)
        for env_id, env in part.environments.items()
    ]


def _start_page_choices(current: str) -> list[Choice]:
    chosen = current if current in {url for url, _ in SIMPLE_START_PAGES} else "/lab"
    return [Choice(url, label, url == chosen) for url, label in SIMPLE_START_PAGES]


def _reservation_choices(
    snapshot: ClusterSnapshot | None, user_name: str, now: datetime
) -> list[Choice]:
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


_STATE_STYLES = {
    "up": ("up", "text-bg-success"),
    "down": ("down", "text-bg-danger"),
    "drain": ("drained", "text-bg-warning"),
    "inactive": ("inactive", "text-bg-secondary"),
}


def availability_view(
    shown: Sequence[PartitionLimits],
    snapshot: ClusterSnapshot | None,
    selected: str,
    refresh_seconds: int,
    now: datetime,
) -> AvailabilityView:
    """The table: read from the shared snapshot only, never from Slurm directly."""
    rows = []
    for part in shown:
        info = snapshot.partitions.get(part.name) if snapshot else None
        if info is None:
            rows.append(
                AvailabilityRow(
                    part.name,
                    "—",
                    "—",
                    "—",
                    "unknown",
                    "text-bg-secondary",
                    "",
                    part.name == selected,
                )
            )
            continue
        label, style = _STATE_STYLES.get(info.state, (info.state or "unknown", "text-bg-secondary"))
        unusable = [s for s in info.node_states if not node_state_usable(s)]
        note = "some nodes unavailable" if info.state == "up" and unusable else ""
        if part.has_gpus and info.gpus_total:
            gpus = (
                f"{info.gpus_total - info.gpus_used} / {info.gpus_total}"
                if info.gpus_used is not None
                else f"? / {info.gpus_total}"
            )
        else:
            gpus = "—"
        rows.append(
            AvailabilityRow(
                name=part.name,
                cpus=f"{info.cpus_idle} / {info.cpus_total}",
                nodes=f"{info.nodes_idle} / {info.nodes_total}",
                gpus=gpus,
                state=label,
                state_style=style,
                note=note,
                selected=part.name == selected,
            )
        )
    if snapshot is None or snapshot.taken_at is None:
        status = "No data from Slurm yet: Slurm did not answer. Limits are the configured ones."
        stale, taken_at = True, ""
    else:
        seconds = snapshot.age_seconds(now) or 0
        age = "moments" if seconds < 2 else describe_duration(seconds)
        taken_at = snapshot.taken_at.isoformat()
        stale = snapshot.is_stale
        status = (
            f"Showing data from {age} ago: Slurm did not answer."
            if stale
            else ("Updated just now." if seconds < 2 else f"Updated {age} ago.")
        )
    return AvailabilityView(
        rows=rows,
        show_gpus=any(p.has_gpus for p in shown),
        status=status,
        stale=stale,
        taken_at=taken_at,
        refresh_seconds=refresh_seconds,
    )


def describe_estimate(estimate: StartEstimate, now: datetime) -> EstimateView:
    """ "Would start now", or "Expected to start at 14:05 (in about 20 min)" in the hub's time."""
    if estimate.starts_now(now):
        return EstimateView("Would start now", True, estimate.start.isoformat())
    local = estimate.start.astimezone()
    same_day = local.date() == now.astimezone().date()
    when = f"{local:%H:%M}" if same_day else f"{local:%a %d %b %H:%M}"
    wait = describe_duration((estimate.start - now).total_seconds())
    return EstimateView(
        f"Expected to start at {when} (in about {wait})", False, estimate.start.isoformat()
    )


def build_view(
    spawner: MOSlurmSpawner,
    target: FormTarget,
    snapshot: ClusterSnapshot | None,
    limits: Mapping[str, PartitionLimits],
    *,
    tab: str,
    values: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
    xsrf_token: str = "",
    hub_prefix: str = "/hub/",
    estimate: EstimateView | None = None,
    now: datetime | None = None,
    link_came_from: str = "",
) -> FormView:
    """The form for ``target`` showing ``values`` (already cleaned, or a rejected submission
    shown as typed) with ``errors`` next to their fields. Never raises for odd values."""
    now = now or datetime.now(timezone.utc)
    errors = dict(errors or {})
    policy = spawner.options_policy()
    shown = tab_partitions(limits, tab)
    by_name = {p.name: p for p in shown}
    partition = (
        by_name.get(values.get("partition", "")) or by_name[_tab_default_partition(shown, policy)]
    )
    fields = {
        name: FieldView(name, _display_text(values.get(name, "")), errors.get(name, ""))
        for name in FIELD_NAMES
    }
    fields["partition"] = FieldView("partition", partition.name, errors.get("partition", ""))
    on_tab = set(FIELD_NAMES) if tab == ADVANCED else set(FIELD_NAMES) - set(ADVANCED_ONLY_FIELDS)
    if not partition.has_gpus:
        on_tab.discard("ngpus")
    if tab == ADVANCED and not spawner.allow_custom_environments:
        on_tab -= {"environment_path", "environment_modules"}
    other_errors = [msg for name, msg in errors.items() if name not in on_tab]
    memory = partition.max_memory_mb
    return FormView(
        target=target,
        tab=tab,
        hub_prefix=hub_prefix,
        xsrf_token=xsrf_token,
        partition=partition,
        partition_cards=[
            PartitionCard(
                p.name,
                p.description,
                p.architecture,
                _summary(p),
                p.state,
                p.name == partition.name,
            )
            for p in shown
        ],
        partition_choices=[
            Choice(
                p.name,
                " — ".join(x for x in (p.name, p.description) if x),
                p.name == partition.name,
            )
            for p in shown
        ],
        fields=fields,
        cpu_choices=_number_choices(partition.cpu_choices(), fields["nprocs"].value, 1),
        gpu_choices=_number_choices(_gpu_numbers(partition), fields["ngpus"].value, 0),
        runtime_choices=_runtime_choices(partition, fields["runtime"].value),
        environment_choices=_environment_choices(partition, fields["environment_id"].value),
        start_page_choices=_start_page_choices(fields["default_url"].value),
        reservations=_reservation_choices(snapshot, target.user_name, now),
        allow_custom_environments=spawner.allow_custom_environments,
        availability=availability_view(
            shown, snapshot, partition.name, int(spawner.availability_refresh_interval), now
        ),
        estimate=estimate,
        other_errors=other_errors,
        not_in_simple=[FIELD_LABELS[f] for f in advanced_values_in(values)]
        if tab == SIMPLE
        else [],
        memory_hint=(
            f"Empty for Slurm's default; at most {_memory_text(memory)} (a whole node)."
            if memory
            else "Empty for Slurm's default. Examples: 512M, 16G."
        ),
        runtime_hint=(
            f"hh:mm:ss, at most {format_runtime(partition.max_runtime)}."
            if partition.max_runtime is not None
            else "hh:mm:ss."
        ),
        link_came_from=link_came_from,
    )


# ---------------------------------------------------------------------------------------------
# Start estimates (``sbatch --test-only`` as the user, cached by the Slurm layer)

ESTIMATE_SCRIPT = "#!/bin/sh\ntrue\n"
_estimators: dict[tuple, StartEstimator] = {}


def estimate_args(
    options: UserOptions, part: PartitionLimits, settings: ScriptSettings, *, home: str = ""
) -> list[str]:
    """The real submission's sbatch arguments (admin's included, in the script's order), plus
    what ``--test-only`` needs in place of the script's own ``#SBATCH`` lines."""
    fixed = [*([f"--chdir={home}"] if home else []), "--output=/dev/null"]
    return job_sbatch_arguments(options, part, settings, fixed=fixed)


def _home_of(user_name: str) -> str:
    # sbatch as the user needs a folder the user may enter, as the real submission has
    try:
        return pwd.getpwnam(user_name).pw_dir
    except KeyError:
        return ""


def _estimator(spawner: MOSlurmSpawner) -> StartEstimator:
    runner = spawner.slurm_runner()
    key = (runner.cache_key(), spawner.exec_prefix)
    if key not in _estimators:
        _estimators[key] = StartEstimator(runner, spawner.exec_prefix)
    return _estimators[key]


async def start_estimate(
    spawner: MOSlurmSpawner, user_name: str, values: Mapping[str, Any], now: datetime
) -> EstimateView | None:
    """When these options would start, or None (invalid options, or Slurm would not say)."""
    try:
        options = await spawner.validate_options(values)
        part = (await spawner.partition_limits())[options.partition]
        # only the admin's req_* values matter here, not the job's environment variables
        settings = spawner.script_settings({})
        args = estimate_args(options, part, settings, home=_home_of(user_name))
        estimator = _estimator(spawner)
        estimate = await estimator.estimate(user_name, args, ESTIMATE_SCRIPT)
        if estimate is None:
            # None is also the answer when this user asked for another estimate moments ago
            # (the Slurm layer spaces them out): ask once more when that spacing has passed.
            # A request that failed for real is then answered from the estimator's cache.
            await asyncio.sleep(estimator.min_spacing)
            estimate = await estimator.estimate(user_name, args, ESTIMATE_SCRIPT)
    except Exception as error:  # an estimate is a nicety: never an error on the page
        # Slurm's refusals are None above; reaching here is a bug worth seeing in the log
        log.warning("no start estimate for %s: %s", log_safe(user_name), log_safe(repr(error)))
        return None
    return describe_estimate(estimate, now) if estimate is not None else None


# ---------------------------------------------------------------------------------------------
# Templates


def _admin_template_paths(spawner: MOSlurmSpawner) -> tuple[str, ...]:
    section = spawner.config.get("JupyterHub", {})
    paths = section.get("template_paths", []) if hasattr(section, "get") else []
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, (list, tuple)):
        return ()
    return tuple(p for p in paths if isinstance(p, str))


@lru_cache(maxsize=8)
def template_environment(admin_paths: tuple[str, ...] = ()) -> jinja2.Environment:
    """Admin folders first (``c.JupyterHub.template_paths``), then the package's templates."""
    package = jinja2.FileSystemLoader(str(PACKAGE_TEMPLATES))
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(list(admin_paths)),
            package,
            jinja2.PrefixLoader({PACKAGE_TEMPLATE_PREFIX: package}),
        ]
    )
    return jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _extended_name(env: jinja2.Environment, name: str) -> str | None:
    """The name template ``name`` extends, when it gives one literally."""
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    return _extends_in_source(env, source)


@lru_cache(maxsize=32)
def _extends_in_source(env: jinja2.Environment, source: str) -> str | None:
    # Parsing the page's template takes ~20 ms: once per source text, not once per fragment
    # request (the source is still read each time, so an edited admin template is seen).
    extends = next(env.parse(source).find_all(nodes.Extends), None)
    if extends is None or not isinstance(extends.template, nodes.Const):
        return None
    return str(extends.template.value)


def render_block(env: jinja2.Environment, block: str, view: FormView) -> str:
    """One named block of the form template, with the context the full page uses.

    An admin template that extends ours may override some blocks: the others are looked up in
    the templates it extends, as Jinja itself does when rendering the whole page. Names are
    followed as written (a prefixed name loads a template whose own ``name`` is unprefixed).
    """
    template = env.get_template(TEMPLATE_NAME)
    context = template.new_context({"view": view})
    seen = {TEMPLATE_NAME}
    parent_name = _extended_name(env, TEMPLATE_NAME)
    while parent_name is not None and parent_name not in seen:
        seen.add(parent_name)
        for name, render in env.get_template(parent_name).blocks.items():
            context.blocks.setdefault(name, []).append(render)
        parent_name = _extended_name(env, parent_name)
    return "".join(context.blocks[block][0](context))


def render_page(env: jinja2.Environment, view: FormView) -> str:
    return env.get_template(TEMPLATE_NAME).render(view=view)


# ---------------------------------------------------------------------------------------------
# Entry points


def _live_xsrf_token(handler: Any) -> str:
    """The token of the request being served, or "" (JupyterHub re-renders a rejected form
    through a spawner whose ``handler`` may be another, finished request, or None)."""
    if handler is None or getattr(handler, "_finished", True):
        return ""
    try:
        token = handler.xsrf_token
    except Exception:  # no token is better than no page; htmx GETs do not need one
        return ""
    return token.decode("ascii") if isinstance(token, bytes) else str(token)


def _hub_prefix(spawner: MOSlurmSpawner) -> str:
    hub = getattr(spawner, "hub", None)
    base = getattr(hub, "base_url", None)
    return base if isinstance(base, str) and base else "/hub/"


async def render_options_form(spawner: MOSlurmSpawner) -> str:
    """The whole form, as JupyterHub's spawn page inserts it (the spawner's ``options_form``).

    Shows, in order of preference: a link's query spawn held for the user to confirm, checked,
    with its messages; a rejected submission as typed, with its messages; the user's saved
    ``user_options`` cleaned against today's limits; the defaults.
    """
    snapshot = await spawner.cluster_snapshot()
    limits = spawner.limits_from(snapshot)
    policy = spawner.options_policy()
    handler = getattr(spawner, "handler", None)
    link = getattr(handler, "moss_link_to_confirm", None)
    rejection = _rejections.take(spawner.user.name, spawner.name or "")
    came_from = ""
    if link is not None:
        server_name, came_from = spawner.name or "", link.came_from
        values, errors = _checked_link(link.options, limits, policy)
        tab = ADVANCED if any(values.get(k) for k in ADVANCED_ONLY_FIELDS) else SIMPLE
    elif rejection is not None:
        server_name, rejected = rejection
        # The Advanced tab always posts its memory field; the Simple tab has none.
        tab = ADVANCED if any(k in rejected.values for k in ADVANCED_ONLY_FIELDS) else SIMPLE
        values, errors = rejected.values, rejected.errors
    else:
        server_name, errors = spawner.name or "", {}
        orm_spawner = getattr(spawner, "orm_spawner", None)
        saved = salvage_saved_options(getattr(orm_spawner, "user_options", None), limits, policy)
        tab = infer_tab(saved, limits)
        values = carry_over(saved, limits, policy, tab)
    view = build_view(
        spawner,
        FormTarget(spawner.user.name, server_name),
        snapshot,
        limits,
        tab=tab,
        values=values,
        errors=errors,
        xsrf_token=_live_xsrf_token(handler),
        hub_prefix=_hub_prefix(spawner),
        link_came_from=came_from,
    )
    return render_page(template_environment(_admin_template_paths(spawner)), view)


def _checked_link(
    query: Mapping[str, Any],
    limits: Mapping[str, PartitionLimits],
    policy: OptionsPolicy,
) -> tuple[dict[str, str], dict[str, str]]:
    """A held link's values as it wrote them, and what the validator says of them.

    Shown as written, not cleaned: the user confirms what the link asks for, and the link's
    own words (an ``environment_path``, extra sbatch options) are what they must see.
    """
    raw = {k: v for k, v in normalise_query(query).items() if k not in FORM_ONLY_KEYS}
    values = {k: _display_text(v) for k, v in raw.items() if k in FIELD_NAMES}
    try:
        parse_user_options(raw, limits, policy)
    except UserOptionsError as exc:
        return values, dict(exc.errors)
    return values, {}


async def render_fragment(
    spawner: MOSlurmSpawner,
    fragment: str,
    target: FormTarget,
    query: Mapping[str, Any],
    *,
    xsrf_token: str = "",
    hub_prefix: str = "/hub/",
) -> str:
    """One fragment (a key of :data:`FRAGMENT_BLOCKS`) for what the browser sent in ``query``.

    Lenient by design: unknown partitions fall back to the tab's default, values the partition
    cannot take are reset; nothing here raises for what a browser sends.
    """
    raw = flatten_form(query)
    tab = raw.get("moss_tab") if raw.get("moss_tab") in TAB_LABELS else SIMPLE
    sent = {k: v for k, v in raw.items() if k in FIELD_NAMES}
    now = datetime.now(timezone.utc)
    estimate = None
    if fragment == "estimate":
        estimate = await start_estimate(spawner, target.user_name, sent, now)
    snapshot = await spawner.cluster_snapshot()
    limits = spawner.limits_from(snapshot)
    values = carry_over(sent, limits, spawner.options_policy(), tab)
    view = build_view(
        spawner,
        target,
        snapshot,
        limits,
        tab=tab,
        values=values,
        xsrf_token=xsrf_token,
        hub_prefix=hub_prefix,
        estimate=estimate,
        now=now,
    )
    env = template_environment(_admin_template_paths(spawner))
    return render_block(env, FRAGMENT_BLOCKS[fragment], view)
