"""``set_config(c)``: wire jupyterhub_moss into a JupyterHub configuration.

Also the checks a starting hub runs once its whole configuration is in, whichever way the admin
chose the spawner (``set_config``, ``spawner_class = "moss"`` or the class name): see
:func:`watch_starting_hub`.
"""

from __future__ import annotations

import logging
from typing import Any

from . import handlers

SPAWNER_CLASS = "jupyterhub_moss.MOSlurmSpawner"

log = logging.getLogger(__name__)


def set_config(c: Any) -> None:
    """Make ``c`` use :class:`~jupyterhub_moss.MOSlurmSpawner` and serve this package's pages.

    - The package's handlers are added to JupyterHub's own handler table rather than to the
      deprecated ``JupyterHub.extra_handlers``: the admin's ``extra_handlers`` stay as they were,
      no deprecation warning is logged, and the hub prefixes our routes with its ``base_url``.
    - The partitions are checked as soon as the hub has read its whole configuration, so a bad
      one stops the hub at start-up with a message naming the partition and the field, rather
      than failing the first user who opens the spawn page.

    Calling it twice is harmless. Importing the package already does the rest (see
    :func:`watch_starting_hub`), so ``spawner_class = "moss"`` alone is safe as well.
    """
    c.JupyterHub.spawner_class = SPAWNER_CLASS
    handlers.register()
    watch_starting_hub()


def watch_starting_hub() -> None:
    """Check the starting hub (if any) as soon as it has built its handler table.

    The config file is still running here (or JupyterHub is resolving ``spawner_class``), so
    its later lines are not known yet; traitlets signals no "config fully loaded" either. The
    hub builds its handler table once, after the whole config is in and before it serves
    anything: check then.
    """
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return  # not inside a starting hub (e.g. a unit test building a config)
    app = JupyterHub.instance()
    if getattr(app, "_moss_config_check", False):
        return
    app._moss_config_check = True
    app.observe(_check_starting_hub, names="handlers")


def _check_starting_hub(change: dict) -> None:
    app = change["owner"]
    if not _uses_our_spawner(app):
        return  # the package is installed but this hub spawns with something else
    _check_port_report_route(app)
    _check_partitions(app)


def _uses_our_spawner(app: Any) -> bool:
    from .spawner import MOSlurmSpawner

    spawner_class = getattr(app, "spawner_class", None)
    return isinstance(spawner_class, type) and issubclass(spawner_class, MOSlurmSpawner)


def _check_port_report_route(app: Any) -> None:
    """Refuse to start if the port report would reach any handler but ours (batchspawner's
    sets every key a job posts as an attribute of the spawner: a user could pick the command
    the hub runs as root)."""
    table = app.handlers
    if handlers.port_report_is_ours(table, app.hub_prefix):
        return
    owner = handlers.port_report_owner(table, app.hub_prefix)
    app.log.critical(
        "jupyterhub_moss cannot start: %sapi/batchspawner is routed to %s, not to "
        "jupyterhub_moss's port report handler. Remove that route (an authenticator's or "
        "extra handler) so that jobs cannot set attributes of the spawner.",
        app.hub_prefix,
        _describe(owner),
    )
    app.exit(1)


def _check_partitions(app: Any) -> None:
    from .config import PartitionConfigError, load_partitions

    section = app.config.get("MOSlurmSpawner", {})
    if "partitions" not in section:
        return
    try:
        load_partitions(section["partitions"])
    except PartitionConfigError as exc:
        app.log.critical("jupyterhub_moss cannot start: %s", exc)
        app.exit(1)


def _describe(handler: Any) -> str:
    if handler is None:
        return "no handler"
    module = getattr(handler, "__module__", "")
    name = getattr(handler, "__qualname__", repr(handler))
    return f"{module}.{name}" if module else name
