"""How the hub talks to Slurm: the commands, their timeout and prefixes, and the shared services.

A mixin of :class:`~.spawner.MOSlurmSpawner`: its traits configure one
:class:`~.slurm.commands.SlurmRunner`, and every spawner of the hub with the same configuration
shares one cluster view and one estimate cache through :mod:`.slurm.services`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timezone

from batchspawner import SlurmSpawner
from traitlets import Bool, Dict, Float, Unicode

from .slurm import services
from .slurm.accounting import UserAssociations
from .slurm.accounts_view import AccountsView, UserAccounting
from .slurm.commands import SlurmRunner, expand_prefix
from .slurm.estimates import StartEstimator
from .slurm.view import ClusterSnapshot, ClusterUnavailable, ClusterView
from .user_access import UserAccess, jupyterhub_groups, unix_groups


class SlurmAccess(SlurmSpawner):
    """The traits and hooks through which a spawner reaches Slurm."""

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
        Seconds between two reads of the cluster (one ``sinfo``, one ``scontrol show
        reservation`` and one ``scontrol show partition`` for the whole hub, however many
        people view the page). Values below 5
        are raised to 5. Nothing is read while nobody looks.
        """,
    ).tag(config=True)

    slurm_accounting = Bool(
        True,
        help="""
        Whether to read users' accounts and QOS from Slurm's accounting database (slurmdbd,
        through ``sacctmgr``), to offer them as choices, apply their limits and hide partitions
        a user may not use. On a cluster without slurmdbd this finds out by itself and offers
        no accounts; set False to never run ``sacctmgr``.
        """,
    ).tag(config=True)

    accounting_refresh_interval = Float(
        60.0,
        help="""
        Seconds between two reads of the accounting database: one ``sacctmgr show qos`` and
        one ``sacctmgr show user`` for every user who viewed the spawn page lately, however
        many there are; a user's first view reads theirs at once. Values below 5 are raised
        to 5. Nothing is read while nobody looks.
        """,
    ).tag(config=True)

    def slurm_runner(self) -> SlurmRunner:
        """How this spawner runs Slurm commands (built from the traits above)."""
        # Only the few kept names are looked up: this runs several times per page view.
        env = {k: os.environ[k] for k in (*self.env_keep, "SLURM_CONF") if k in os.environ}
        return SlurmRunner(
            bin_dir=self.slurm_bin_dir or None,
            commands=dict(self.slurm_commands),
            timeout=self.slurm_timeout,
            env=env,
            query_prefix=expand_prefix(self.slurm_query_prefix) if self.slurm_query_prefix else [],
        )

    def cluster_view(self) -> ClusterView:
        """The hub-wide view of the cluster (one per configuration, shared by every spawner)."""
        return services.cluster_view(self.slurm_runner(), self.cluster_refresh_interval)

    def accounts_view(self) -> AccountsView:
        """The hub-wide view of the accounting database (one per configuration)."""
        return services.accounts_view(self.slurm_runner(), self.accounting_refresh_interval)

    async def user_access(self) -> UserAccess:
        """What this spawner's user may use: their JupyterHub groups and admin flag (for the
        ``groups`` of partitions and environments), their Unix groups and, when the cluster
        has an accounting database, their associations and the QOS table (shared, cached).

        It is the server owner's: an admin starting someone else's server gets that user's
        choices, since the job runs as, and is charged to, that user."""
        name = self.user.name
        hub_groups, hub_admin = jupyterhub_groups(self.user)
        base = UserAccess(name, unix_groups(name), hub_groups=hub_groups, hub_admin=hub_admin)
        if not self.slurm_accounting:
            return base
        accounting = await self.accounts_view().for_user(name)
        if not accounting.enabled:
            return base
        return replace(
            base,
            associations=_associations(name, accounting),
            qos=accounting.qos,
            note=_staleness(accounting),
        )

    def start_estimator(self) -> StartEstimator:
        """The hub-wide ``sbatch --test-only`` cache (one per configuration)."""
        return services.start_estimator(self.slurm_runner(), self.exec_prefix)

    def user_prefix(self) -> list[str]:
        """``exec_prefix`` as an argument list, for commands run as the user."""
        return expand_prefix(self.exec_prefix, username=self.user.name) if self.exec_prefix else []

    async def cluster_snapshot(self) -> ClusterSnapshot | None:
        """The latest snapshot, or None when Slurm has never answered this hub."""
        try:
            return await self.cluster_view().snapshot()
        except ClusterUnavailable:
            return None


def _associations(name: str, accounting: UserAccounting) -> UserAssociations | None:
    if accounting.associations is not None:
        return accounting.associations
    # read, and none: the user has no account (None would mean "not known")
    return UserAssociations(name, "", ()) if accounting.known else None


def _staleness(accounting: UserAccounting) -> str:
    if accounting.error is None:
        return ""
    if accounting.taken_at is None or not accounting.known:
        return "Your accounts could not be read: the accounting database did not answer."
    age = int((datetime.now(timezone.utc) - accounting.taken_at).total_seconds())
    return (
        f"Accounts and QOS as of {age} s ago: the accounting database did not answer since, "
        "so they may be out of date."
    )
