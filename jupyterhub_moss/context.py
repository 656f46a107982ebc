"""Plain data the spawner hands to the rest of the package, built once per request or spawn.

The spawner is the only module that reads traits, the hub and the request handler. From them it
builds, once:

- a :class:`FormContext` per page or fragment request: one cluster snapshot, the limits merged
  from it, the options policy, whose form it is, and the hub's URLs. The form (:mod:`.form`) is
  plain functions of a context and the values the browser sent;
- a :class:`SpawnRequest` per spawn: the validated options and the partition limits they were
  checked against, which ``start()`` and the batch script use as they are (no second parse, so
  validation and the script cannot see two different snapshots).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .batch_script import ScriptSettings
from .limits import PartitionLimits
from .options import OptionsPolicy, UserOptions
from .sessions import ServerFacts
from .slurm.estimates import StartEstimator
from .slurm.view import ClusterSnapshot

__all__ = [
    "FormContext",
    "LinkToConfirm",
    "RendersSpawnForm",
    "ReportsSession",
    "SpawnRequest",
]


@dataclass(frozen=True)
class FormContext:
    """What one request for the spawn form (the page or a fragment) needs to know."""

    user_name: str
    #: The server the form starts ("" for the default one).
    server_name: str
    #: The hub's shared view of the cluster, or None when Slurm has never answered.
    snapshot: ClusterSnapshot | None
    #: The admin's partitions merged with ``snapshot``: what the validator checks against.
    limits: Mapping[str, PartitionLimits]
    policy: OptionsPolicy
    #: The admin's side of the batch script, so an estimate asks about the job ``start()``
    #: sends, and the shared ``sbatch --test-only`` cache; None where no estimate is shown.
    script_settings: ScriptSettings | None = None
    estimator: StartEstimator | None = None
    hub_prefix: str = "/hub/"  # "{base_url}hub/"
    #: The XSRF token of the request being served ("" when there is none to give).
    xsrf_token: str = ""
    refresh_seconds: int = 30
    #: ``c.JupyterHub.template_paths``: an admin's templates come before ours.
    template_paths: tuple[str, ...] = ()
    #: The user's servers for "Your sessions" (only the page and that fragment read them).
    sessions: tuple[ServerFacts, ...] = ()
    session_warning_minutes: int = 15


@dataclass(frozen=True)
class LinkToConfirm:
    """A query spawn held back for the user to confirm (see :mod:`.handlers.spawn_page`): the
    link's options and where it came from, which completes "This link came from …"."""

    options: dict[str, list[str]]
    came_from: str


@dataclass(frozen=True)
class SpawnRequest:
    """One spawn's validated options, and the limits of its partition they were checked against."""

    options: UserOptions
    partition: PartitionLimits


@runtime_checkable
class RendersSpawnForm(Protocol):
    """A spawner that serves the form's htmx fragments (MOSlurmSpawner). The fragment handlers
    ask for this, not for the spawner class, so the handlers never import the spawner."""

    async def render_form_fragment(
        self,
        fragment: str,
        server_name: str,
        query: Mapping[str, Any],
        *,
        xsrf_token: str = "",
        hub_prefix: str = "",
    ) -> str: ...


@runtime_checkable
class ReportsSession(Protocol):
    """A spawner whose server the session lists can show (MOSlurmSpawner): the lists and the
    admins' page ask for this, not for the spawner class."""

    def session_facts(self) -> ServerFacts: ...
