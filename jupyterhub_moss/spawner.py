"""MOSlurmSpawner: the JupyterHub face of the package.

It stays thin: the admin's partitions are checked by :mod:`.config`, merged with what Slurm says
by :mod:`.limits`, every spawn request from the form, the query string or the REST API goes
through the one parser of :mod:`.options`, the batch script comes from :mod:`.batch_script`, and
Slurm is read through the hub's shared services (:mod:`.slurm.services`).

The spawner is the one place that reads traits, the hub and the request handler. It hands the
rest of the package plain data (:mod:`.context`): a :class:`~.context.FormContext` per page or
fragment request (one snapshot, one merge of the limits) and a :class:`~.context.SpawnRequest`
per spawn (the options validated once, which ``start()`` uses as they are).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchspawner import SlurmSpawner
from tornado import web
from traitlets import Bool, Dict, Float, Integer, List, TraitError, Unicode, default, validate

from .config import (
    FieldValues,
    PartitionConfig,
    PartitionConfigError,
    load_field_values,
    load_partitions,
)
from .context import SpawnRequest
from .form import FORM_ONLY_KEYS
from .lifecycle import SlurmJobLifecycle
from .limits import (
    DEFAULT_RUNTIME_HOURS,
    PartitionLimits,
    SimpleChoices,
    merge_partition_limits,
    partition_refusals,
)
from .options import (
    OptionsPolicy,
    UserOptions,
    UserOptionsError,
    parse_user_options,
)
from .presets import FieldPresets, partition_presets
from .request_values import flatten_form, normalise_query
from .sbatch_options import DEFAULT_DENIED_SBATCH_OPTIONS
from .slurm.view import ClusterSnapshot
from .slurm_access import SlurmAccess
from .spawn_page_hooks import SpawnPageHooks
from .user_access import UserAccess


class InvalidUserOptions(web.HTTPError):
    """A rejected spawn request: a 400 whose message names every bad field.

    JupyterHub shows the message on the re-rendered form and returns it from the REST API.
    """

    def __init__(self, error: UserOptionsError) -> None:
        self.errors = error.errors
        message = "; ".join(error.errors.values())
        # log_message is what JupyterHub shows on the re-rendered form and in the API answer
        super().__init__(400, message, reason="Invalid spawn options")


async def _apply_moss_user_options(spawner: MOSlurmSpawner, user_options: Mapping) -> None:
    """JupyterHub >= 5.3 runs this before every spawn, whichever way the request came in."""
    await spawner.prepare_spawn_request(user_options)


class MOSlurmSpawner(SpawnPageHooks, SlurmJobLifecycle, SlurmAccess, SlurmSpawner):
    """A Slurm spawner configured by the admin's partitions, with a live spawn page."""

    # -- the admin's partitions ------------------------------------------------------------

    partitions = Dict(
        help="""
        The partitions users may spawn on, by Slurm partition name, in the order the page
        lists them.

        Each value is a dict with these fields (all optional but ``jupyter_environments``):

        - ``architecture``, ``description``: shown on the page.
        - ``gpu``: a ``--gres`` template containing ``{}``, e.g. ``"gpu:V100:{}"``; ``""`` means
          the partition offers no GPUs; left out, it is built from the GPUs Slurm reports.
        - ``max_ngpus``, ``max_nprocs``, ``max_runtime`` (seconds): the most a user may ask for;
          left out, they are read from Slurm (largest node, partition time limit).
        - ``gpu_types``: GPU type -> ``{"description", "max_ngpus"}``, the types the user
          chooses from (asked for as ``gpu:TYPE:N``); left out, a choice is offered when Slurm
          reports several types on the partition's nodes. Not with a ``gpu`` template that
          fixes a type.
        - ``gpu_any_type``: whether "any type" (``gpu:N``) is offered next to the types
          (default True); without it, a request with no type gets the first type.
        - ``simple``: whether the partition shows in the Simple tab (default True).
        - ``field_defaults``, ``locked_fields``: this partition's defaults and locks, as in the
          traits of the same names; each field given replaces the hub-wide setting for it.
        - ``groups``: a list of JupyterHub groups; when set, only their members (and the hub's
          admins) are offered the partition, and anyone else asking for it, by the form, a
          link or the REST API, is refused. Left out, the partition is for everyone.
        - ``jupyter_environments``: id -> ``{"description", "path", "modules", "add_to_path",
          "prologue", "groups"}``. ``path`` is a ``bin/`` folder holding
          ``jupyterhub-singleuser``, or an Apptainer/Singularity image ending in ``.sif``;
          ``modules`` is a space-separated list of modules to load. At least one of them must
          be set. ``groups`` limits the environment as it does a partition. The first
          environment the user may use is their default; a partition with none for them is not
          offered to them (even where custom environments are allowed).

        A bad value stops the hub at start-up with a message naming the partition and field.
        """,
    ).tag(config=True)

    @validate("partitions")
    def _check_partitions(self, proposal: dict) -> dict:
        try:
            self._partition_configs = load_partitions(proposal["value"])
        except PartitionConfigError as exc:
            raise TraitError(str(exc)) from exc
        return proposal["value"]

    @property
    def partition_configs(self) -> dict[str, PartitionConfig]:
        if not hasattr(self, "_partition_configs"):
            self._partition_configs = load_partitions(self.partitions)
        return self._partition_configs

    # -- the admin's defaults and locks -------------------------------------------------------

    field_defaults = Dict(
        help="""
        Hub-wide defaults of the spawn fields: what a request that leaves a field out gets,
        and what the page shows first. Keys are the option names: ``runtime`` (Slurm's
        syntax, e.g. ``"2:00:00"``), ``nprocs``, ``ngpus`` (ints), ``memory`` (e.g. ``"4G"``),
        ``environment_id``, ``default_url`` (e.g. ``"/lab"``) and ``output`` (bool).

        A default is fitted to what the user may ask for (a QOS allowing 4 CPUs turns a
        default of 8 into 4); an ``ngpus`` default applies where there are GPUs and an
        ``environment_id`` one where the partition has that environment. A partition's own
        ``field_defaults`` or ``locked_fields`` entry replaces this for that field.
        A default that breaks the admin's own limits stops the hub at start-up.
        """,
    ).tag(config=True)

    locked_fields = Dict(
        help="""
        Hub-wide locks, with the keys of ``field_defaults``: the only value the field takes.
        The page shows a locked field as fixed, and a request that sends another value, from
        the form, a link or the REST API, is refused naming the field. The lock is validated
        like any value (a lock beyond a limit refuses requests rather than reaching Slurm,
        and one beyond the admin's own limits stops the hub at start-up). A partition's own
        ``field_defaults`` or ``locked_fields`` entry replaces it for that field, e.g.
        ``{"runtime": "1:00:00"}`` here and ``"field_defaults": {"runtime": "8:00:00"}`` on
        one partition.
        """,
    ).tag(config=True)

    @validate("field_defaults", "locked_fields")
    def _check_field_values(self, proposal: dict) -> dict:
        try:
            load_field_values(proposal["value"], proposal["trait"].name)
        except PartitionConfigError as exc:
            raise TraitError(str(exc)) from exc
        return proposal["value"]

    def field_presets(self) -> dict[str, FieldPresets]:
        """Each partition's defaults and locks (the hub's, and the partition's own)."""
        configs = self.partition_configs
        key = (id(configs), repr(self.field_defaults), repr(self.locked_fields))
        cached = getattr(self, "_field_presets", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        hub_defaults: FieldValues = load_field_values(self.field_defaults, "field_defaults")
        hub_locks: FieldValues = load_field_values(self.locked_fields, "locked_fields")
        presets = {
            name: partition_presets(name, config, hub_defaults, hub_locks)
            for name, config in configs.items()
        }
        self._field_presets = (key, presets)
        return presets

    # -- what users may ask for --------------------------------------------------------------

    default_partition = Unicode(
        "",
        help="""
        Partition used when a request names none (e.g. a REST API spawn without options).
        Empty means the first configured partition.
        """,
    ).tag(config=True)

    allow_custom_environments = Bool(
        True,
        help="""
        Whether users may run their own Jupyter environment (``environment_path`` and/or
        ``environment_modules``) instead of one of the admin's ``jupyter_environments``.
        """,
    ).tag(config=True)

    denied_sbatch_options = List(
        Unicode(),
        default_value=sorted(DEFAULT_DENIED_SBATCH_OPTIONS),
        help="""
        sbatch options users may not put in the ``options`` field, as long names (``--uid``).

        The default is every option of Slurm's own table (sbatch 22.05 to 25.11, see
        ``jupyterhub_moss/slurm_option_table.py`` for each one's reason) that changes the
        resources (CPUs, tasks, nodes, memory, GPUs, time), identity, files, environment, the
        cluster, what runs, what sbatch prints, or what the site decides (priority, mail to
        other addresses, accounting keys). Names are matched as sbatch reads them: any prefix,
        alias (``--tasks-per-node``) or short form (``-p``) of a denied option is refused. A
        list set here replaces the default; to allow one option, filter it out of
        ``jupyterhub_moss.sbatch_options.DEFAULT_DENIED_SBATCH_OPTIONS``.
        """,
    ).tag(config=True)

    allowed_sbatch_options = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        help="""
        For strict sites: when set, the only sbatch options users may put in ``options``
        (long names such as ``--mail-type``), in any spelling sbatch reads as them. It may name
        options of a newer sbatch than the table knows. The deny list and the admin's
        ``req_account``, ``req_qos``, ``req_reservation`` and ``req_options`` still win: a user
        option that would replace one of them is refused.
        """,
    ).tag(config=True)

    simple_cpu_counts = List(
        Integer(),
        default_value=[1, 2, 4],
        help="""
        CPU counts the Simple tab offers on every partition, besides the fractions of a node
        in ``simple_node_fractions``. Counts above a partition's ``max_nprocs`` are left out.
        """,
    ).tag(config=True)

    simple_node_fractions = List(
        Float(),
        default_value=[0.25, 0.5, 1.0],
        help="""
        Fractions of the partition's largest node the Simple tab offers as CPU counts (by
        default a quarter, a half and the whole node), rounded down.
        """,
    ).tag(config=True)

    simple_runtime_hours = List(
        Float(),
        default_value=list(DEFAULT_RUNTIME_HOURS),
        help="""
        Job durations, in hours, the Simple tab offers. Those above a partition's
        ``max_runtime`` are left out; when all are, the maximum itself is offered.
        """,
    ).tag(config=True)

    # -- the cluster view and the limits ----------------------------------------------------

    def limits_from(
        self, snapshot: ClusterSnapshot | None, access: UserAccess | None = None
    ) -> dict[str, PartitionLimits]:
        """The admin's partitions merged with ``snapshot``, for the user ``access`` describes
        (the partitions they may use, their accounts): once per request or spawn."""
        choices = SimpleChoices(
            cpu_counts=tuple(self.simple_cpu_counts),
            node_fractions=tuple(self.simple_node_fractions),
            runtime_hours=tuple(self.simple_runtime_hours),
        )
        return merge_partition_limits(
            self.partition_configs,
            snapshot.partitions if snapshot else None,
            choices,
            access=access,
            rules=snapshot.access if snapshot else None,
            presets=self.field_presets(),
        )

    async def partition_limits(self) -> dict[str, PartitionLimits]:
        """Per-partition limits for this user: the admin's config on the latest snapshot."""
        return self.limits_from(await self.cluster_snapshot(), await self.user_access())

    def options_policy(
        self, snapshot: ClusterSnapshot | None = None, access: UserAccess | None = None
    ) -> OptionsPolicy:
        """The admin's rules, and (given the user's ``access``) the partitions refused to them."""
        allowed = self.allowed_sbatch_options
        refused = partition_refusals(
            self.partition_configs, access, snapshot.access if snapshot else None
        )
        return OptionsPolicy(
            allow_custom_environments=self.allow_custom_environments,
            denied_sbatch_options=frozenset(self.denied_sbatch_options),
            allowed_sbatch_options=frozenset(allowed) if allowed is not None else None,
            default_partition=self._default_partition_for(refused),
            fixed_account=self.req_account,
            fixed_qos=self.req_qos,
            refused_partitions=tuple(refused.items()),
            # the admin's req_* must win: users may not replace them through `options`
            locked_sbatch_options=OptionsPolicy.admin_locks(
                self.req_options,
                account=self.req_account,
                qos=self.req_qos,
                reservation=self.req_reservation,
            ),
        )

    def _default_partition_for(self, refused: Mapping[str, str]) -> str:
        """The admin's default partition, or the first configured one, if the user may use it;
        else the first they may use (the admin's when there is none, so the refusal says why)."""
        configured = self.default_partition or next(iter(self.partition_configs), "")
        if configured not in refused:
            return configured
        return next((name for name in self.partition_configs if name not in refused), configured)

    # -- user options: one path for form, query string and REST API -------------------------

    async def check_options(self, raw: Mapping[str, Any]) -> SpawnRequest:
        """Parse and check one request against one merge of the limits; raise
        :class:`InvalidUserOptions` (a 400) if it is bad."""
        snapshot = await self.cluster_snapshot()
        access = await self.user_access()
        limits = self.limits_from(snapshot, access)
        try:
            options = parse_user_options(raw, limits, self.options_policy(snapshot, access))
        except UserOptionsError as exc:
            raise InvalidUserOptions(exc) from exc
        return SpawnRequest(options, limits[options.partition])

    async def validate_options(self, raw: Mapping[str, Any]) -> UserOptions:
        """The options of one request, checked (see :meth:`check_options`)."""
        return (await self.check_options(raw)).options

    async def options_from_form(self, formdata: Mapping[str, list[str]]) -> dict[str, str]:
        raw = {k: v for k, v in flatten_form(formdata).items() if k not in FORM_ONLY_KEYS}
        # JupyterHub re-renders the form after a 400: let it show the values and messages
        return await self._options_for_spawn(raw)

    async def options_from_query(self, query_data: Mapping[str, Any]) -> dict[str, str]:
        raw = {k: v for k, v in normalise_query(query_data).items() if k not in FORM_ONLY_KEYS}
        # JupyterHub falls back to the form after a 400: the messages show next to their fields
        return await self._options_for_spawn(raw)

    async def _options_for_spawn(self, raw: Mapping[str, Any]) -> dict[str, str]:
        try:
            request = await self.check_options(raw)
        except InvalidUserOptions as exc:
            self.remember_rejected_submission(raw, exc.errors)
            raise
        saved = request.options.to_saved()
        # JupyterHub passes these very options to apply_user_options and start(): keep the
        # request, so the spawn is not validated again against another snapshot.
        self._held_request = (dict(saved), request)
        return saved

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return _apply_moss_user_options

    _held_request: tuple[dict[str, Any], SpawnRequest] | None = None

    async def prepare_spawn_request(self, user_options: Mapping[str, Any] | None) -> SpawnRequest:
        """The validated request of the spawn about to start, whichever way it came in.

        REST API spawns never pass through ``options_from_form``, so this is where they are
        checked. Options already checked in this spawn (the form, the query string) are not
        checked again. Nothing persistent (such as ``default_url``) is changed, so no value
        leaks into the next spawn.
        """
        raw = {k: v for k, v in (user_options or {}).items() if k not in FORM_ONLY_KEYS}
        held = self._held_request
        if held is not None and held[0] == raw:
            return held[1]
        request = await self.check_options(raw)
        self._held_request = (raw, request)
        return request

    async def spawn_request(self) -> SpawnRequest:
        """The request ``start()`` submits: the one prepared for this spawn (JupyterHub >= 5.3
        prepares it through ``apply_user_options``), else ``user_options`` checked now. It is
        handed over once: the next spawn is checked afresh."""
        request = await self.prepare_spawn_request(self.user_options)
        self._held_request = None
        return request
