"""The form as plain data: what ``moss_form.html`` and its fragment blocks show.

Built by :mod:`.build` and rendered by :mod:`.templates`; nothing here reads the hub or Slurm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote

from .._version import __version__
from ..limits import PartitionLimits
from ..live_refresh import visible_poll_trigger
from ..sessions import SessionsView
from .values import ADVANCED, SIMPLE, TAB_LABELS, TRUE_WORDS


@dataclass(frozen=True)
class FormTarget:
    """The server a form is for: fragment URLs carry it, so an admin's view stays on it."""

    user_name: str
    server_name: str = ""


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
    #: Set when the admin locked the field: the page shows ``fixed_text`` and sends nothing.
    locked: bool = False
    fixed_text: str = ""

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
        return self.value.strip().lower() in TRUE_WORDS

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
        # a change in the form moves the highlighted row (all from the shared snapshot)
        return visible_poll_trigger(self.refresh_seconds, "change from:closest form")


@dataclass(frozen=True)
class StartSoonerView:
    """Another partition where the same request would start sooner ("Start sooner on…").

    Its button asks for the form body with only ``partition`` changed: hx-vals win over the
    form's own value, and every other value is sent as it is.
    """

    partition: str
    when: str  # "would start now", "in about 20 min"
    start: str  # ISO 8601
    #: Whether the Simple tab offers it; from there, a partition it does not goes to Advanced.
    on_simple_tab: bool = True

    def moves_to_advanced(self, tab: str) -> bool:
        return tab == SIMPLE and not self.on_simple_tab

    def hx_vals(self, tab: str) -> str:
        """Plain JSON (``json.dumps``, never concatenated text) for the button's hx-vals."""
        values = {"partition": self.partition}
        if self.moves_to_advanced(tab):
            values["moss_tab"] = ADVANCED
        return json.dumps(values)

    def button_text(self, tab: str) -> str:
        where = " (Advanced tab)" if self.moves_to_advanced(tab) else ""
        return f"Switch to {self.partition}{where}"


@dataclass(frozen=True)
class EstimateView:
    text: str
    starts_now: bool
    start: str  # ISO 8601
    #: The chosen partition, and its wait in the words of the suggestions ("in about 2 h").
    partition: str = ""
    when: str = ""
    #: Other partitions where the same request would start sooner, soonest first.
    sooner: tuple[StartSoonerView, ...] = ()

    @property
    def sooner_summary(self) -> str:
        """ "gpu would start now; debug in about 5 min; cpu (chosen) in about 2 h"."""
        others = [f"{s.partition} {s.when}" for s in self.sooner]
        return "; ".join([*others, f"{self.partition} (chosen) {self.when}"])


@dataclass(frozen=True)
class FormView:
    """Everything ``moss_form.html`` shows. Built by :func:`.build.build_view`, never by hand."""

    target: FormTarget
    tab: str
    hub_prefix: str  # "{base_url}hub/"
    xsrf_token: str
    partition: PartitionLimits
    fields: dict[str, FieldView]
    environment_choices: list[Choice]
    start_page_choices: list[Choice]
    allow_custom_environments: bool
    availability: AvailabilityView
    estimate: EstimateView | None
    other_errors: list[str]
    not_in_simple: list[str]
    #: Only the tab that shows them has them (the others are left empty): the Simple tab's
    #: partition cards and CPU, GPU and run-time selects...
    partition_cards: list[PartitionCard] = field(default_factory=list)
    cpu_choices: list[Choice] = field(default_factory=list)
    gpu_choices: list[Choice] = field(default_factory=list)
    runtime_choices: list[Choice] = field(default_factory=list)
    #: ...and the Advanced tab's partition select, reservations and hints.
    partition_choices: list[Choice] = field(default_factory=list)
    reservations: list[Choice] = field(default_factory=list)
    memory_hint: str = ""
    runtime_hint: str = ""
    #: Where a query spawn held for the user's click came from (see handlers.spawn_page), or "".
    link_came_from: str = ""
    #: The user's accounts and the chosen account's QOS on this partition ([] when the hub
    #: does not know them), and the admin's req_account / req_qos, shown as fixed.
    account_choices: list[Choice] = field(default_factory=list)
    qos_choices: list[Choice] = field(default_factory=list)
    fixed_account: str = ""
    fixed_qos: str = ""
    #: "Your sessions": the user's servers (None where the request does not show them).
    sessions: SessionsView | None = None
    #: The GPU type select's choices ([] when the partition offers no type choice), and the
    #: type chosen ("" = any type): the GPU count's maximum is that type's.
    gpu_type_choices: list[Choice] = field(default_factory=list)
    gpu_type: str = ""

    @property
    def max_ngpus(self) -> int:
        return self.partition.max_ngpus_for(self.gpu_type)

    @property
    def ngpus_note(self) -> str:
        return self.partition.gpu_limit_note(self.gpu_type)

    @property
    def shows_charge(self) -> bool:
        return bool(self.account_choices or self.fixed_account or self.fixed_qos)

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
