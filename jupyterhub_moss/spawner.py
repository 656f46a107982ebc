"""MOSlurmSpawner: the JupyterHub face of the package.

It stays thin: the admin's partitions are checked by :mod:`.config`, merged with what Slurm says
by :mod:`.limits`, every spawn request from the form, the query string or the REST API goes
through the one parser of :mod:`.options`, the batch script comes from :mod:`.batch_script`, and
Slurm is read through the hub-wide :class:`~.slurm.view.ClusterView`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from batchspawner import SlurmSpawner
from tornado import web
from traitlets import Bool, Dict, Float, Integer, List, TraitError, Unicode, default, validate

from . import form
from .config import PartitionConfig, PartitionConfigError, load_partitions
from .form import FORM_ONLY_KEYS
from .lifecycle import SlurmJobLifecycle
from .limits import DEFAULT_RUNTIME_HOURS, PartitionLimits, SimpleChoices, merge_partition_limits
from .options import (
    OptionsPolicy,
    UserOptions,
    UserOptionsError,
    flatten_form,
    normalise_query,
    parse_user_options,
)
from .sbatch_options import DEFAULT_DENIED_SBATCH_OPTIONS
from .slurm.commands import SlurmRunner, expand_prefix
from .slurm.view import ClusterSnapshot, ClusterUnavailable, ClusterView


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
    await spawner.load_user_options(user_options)


class MOSlurmSpawner(SlurmJobLifecycle, SlurmSpawner):
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
        - ``simple``: whether the partition shows in the Simple tab (default True).
        - ``jupyter_environments``: id -> ``{"description", "path", "modules", "add_to_path",
          "prologue"}``. ``path`` is a ``bin/`` folder holding ``jupyterhub-singleuser``, or an
          Apptainer/Singularity image ending in ``.sif``; ``modules`` is a space-separated list
          of modules to load. At least one of them must be set. The first environment is the
          default.

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

    # -- talking to Slurm ----------------------------------------------------------------------

    slurm_bin_dir = Unicode(
        "",
        help="""
        Folder holding Slurm's commands (``sbatch``, ``sinfo``, ...). Empty looks them up on
        the hub's ``PATH`` (JupyterHub 6 passes no ``PATH`` to the environment of spawned
        commands, so set this, or ``slurm_commands``, when Slurm lives outside the usual
        folders).
        """,
    ).tag(config=True)

    slurm_commands = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="""
        Per-command overrides, e.g. ``{"sinfo": "/opt/slurm/22.05/bin/sinfo"}``.
        """,
    ).tag(config=True)

    slurm_timeout = Float(
        20.0,
        help="""
        Seconds a Slurm command may take before the hub gives up on it. A query that times
        out leaves the page with its last data and a "Slurm did not answer" banner.
        """,
    ).tag(config=True)

    slurm_query_prefix = Unicode(
        "",
        help="""
        Prefix for read-only cluster queries (``sinfo``, ``squeue``, ``scontrol show``), e.g.
        ``"sudo -u slurmreader"``. Empty runs them as the hub's own account; commands that act
        for a user (``sbatch``, ``scancel``, estimates) use ``exec_prefix`` instead.
        """,
    ).tag(config=True)

    cluster_refresh_interval = Float(
        30.0,
        help="""
        Seconds between two reads of the cluster (one ``sinfo`` and one ``scontrol show
        reservation`` for the whole hub, however many people view the page). Values below 5
        are raised to 5. Nothing is read while nobody looks.
        """,
    ).tag(config=True)

    availability_refresh_interval = Integer(
        30,
        help="""
        Seconds between two refreshes of the spawn page's availability table in the browser.
        They read the hub's shared view of the cluster, never Slurm itself.
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

    def slurm_runner(self) -> SlurmRunner:
        """How this spawner runs Slurm commands (built from the traits above)."""
        env = {k: v for k, v in os.environ.items() if k in self.env_keep or k == "SLURM_CONF"}
        return SlurmRunner(
            bin_dir=self.slurm_bin_dir or None,
            commands=dict(self.slurm_commands),
            timeout=self.slurm_timeout,
            env=env,
            query_prefix=expand_prefix(self.slurm_query_prefix) if self.slurm_query_prefix else [],
        )

    def cluster_view(self) -> ClusterView:
        """The hub-wide view of the cluster (one per configuration, shared by every spawner)."""
        return ClusterView.shared(self.slurm_runner(), self.cluster_refresh_interval)

    def user_prefix(self) -> list[str]:
        """``exec_prefix`` as an argument list, for commands run as the user."""
        return expand_prefix(self.exec_prefix, username=self.user.name) if self.exec_prefix else []

    async def cluster_snapshot(self) -> ClusterSnapshot | None:
        """The latest snapshot, or None when Slurm has never answered this hub."""
        try:
            return await self.cluster_view().snapshot()
        except ClusterUnavailable:
            return None

    def limits_from(self, snapshot: ClusterSnapshot | None) -> dict[str, PartitionLimits]:
        choices = SimpleChoices(
            cpu_counts=tuple(self.simple_cpu_counts),
            node_fractions=tuple(self.simple_node_fractions),
            runtime_hours=tuple(self.simple_runtime_hours),
        )
        return merge_partition_limits(
            self.partition_configs, snapshot.partitions if snapshot else None, choices
        )

    async def partition_limits(self) -> dict[str, PartitionLimits]:
        """Per-partition limits: the admin's config on top of the latest snapshot."""
        return self.limits_from(await self.cluster_snapshot())

    def options_policy(self) -> OptionsPolicy:
        allowed = self.allowed_sbatch_options
        return OptionsPolicy(
            allow_custom_environments=self.allow_custom_environments,
            denied_sbatch_options=frozenset(self.denied_sbatch_options),
            allowed_sbatch_options=frozenset(allowed) if allowed is not None else None,
            default_partition=self.default_partition or next(iter(self.partition_configs), ""),
            # the admin's req_* must win: users may not replace them through `options`
            locked_sbatch_options=OptionsPolicy.admin_locks(
                self.req_options,
                account=self.req_account,
                qos=self.req_qos,
                reservation=self.req_reservation,
            ),
        )

    # -- user options: one path for form, query string and REST API -------------------------

    async def validate_options(self, raw: Mapping[str, Any]) -> UserOptions:
        """Parse and check one request; raise :class:`InvalidUserOptions` (a 400) if it is bad."""
        limits = await self.partition_limits()
        try:
            return parse_user_options(raw, limits, self.options_policy())
        except UserOptionsError as exc:
            raise InvalidUserOptions(exc) from exc

    @default("options_form")
    def _default_options_form(self):
        return form.render_options_form

    async def options_from_form(self, formdata: Mapping[str, list[str]]) -> dict[str, str]:
        raw = {k: v for k, v in flatten_form(formdata).items() if k not in FORM_ONLY_KEYS}
        try:
            return (await self.validate_options(raw)).to_saved()
        except InvalidUserOptions as exc:
            # JupyterHub re-renders the form after this; let it show the values and messages
            form.remember_rejected_submission(self, raw, exc.errors)
            raise

    async def options_from_query(self, query_data: Mapping[str, Any]) -> dict[str, str]:
        raw = {k: v for k, v in normalise_query(query_data).items() if k not in FORM_ONLY_KEYS}
        try:
            return (await self.validate_options(raw)).to_saved()
        except InvalidUserOptions as exc:
            # JupyterHub falls back to the form: show the messages next to their fields there
            form.remember_rejected_submission(self, raw, exc.errors)
            raise

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return _apply_moss_user_options

    moss_options: UserOptions | None = None

    async def load_user_options(self, user_options: Mapping[str, Any] | None) -> UserOptions:
        """Validate the options of the spawn about to start, whichever way they came in.

        REST API spawns never pass through ``options_from_form``, so this is where they are
        checked. It sets :attr:`moss_options` for this spawn only: nothing persistent (such as
        ``default_url``) is changed, so no value leaks into the next spawn.
        """
        raw = {k: v for k, v in (user_options or {}).items() if k not in FORM_ONLY_KEYS}
        self.moss_options = await self.validate_options(raw)
        return self.moss_options
