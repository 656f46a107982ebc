"""``set_config(c)``: wire jupyterhub_moss into a JupyterHub configuration."""

from __future__ import annotations

from typing import Any

from . import handlers

SPAWNER_CLASS = "jupyterhub_moss.MOSlurmSpawner"


def set_config(c: Any) -> None:
    """Make ``c`` use :class:`~jupyterhub_moss.MOSlurmSpawner` and serve this package's pages.

    - The package's handlers are added to JupyterHub's own handler table rather than to the
      deprecated ``JupyterHub.extra_handlers``: the admin's ``extra_handlers`` stay as they were,
      no deprecation warning is logged, and the hub prefixes our routes with its ``base_url``.
    - The partitions are checked as soon as the hub has read its whole configuration, so a bad
      one stops the hub at start-up with a message naming the partition and the field, rather
      than failing the first user who opens the spawn page.

    Calling it twice is harmless.
    """
    c.JupyterHub.spawner_class = SPAWNER_CLASS
    handlers.register()
    _check_partitions_once_config_is_loaded()


def _check_partitions_once_config_is_loaded() -> None:
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return  # not inside a starting hub (e.g. a unit test building a config)
    app = JupyterHub.instance()
    if getattr(app, "_moss_config_check", False):
        return
    app._moss_config_check = True
    # The config file is still running here, so its later lines (the partitions) are not known
    # yet; traitlets signals no "config fully loaded" either. The hub builds its handler table
    # once, after the whole config is in and before it serves anything: check then.
    app.observe(_check_partitions, names="handlers")


def _check_partitions(change: dict) -> None:
    from .config import PartitionConfigError, load_partitions

    app = change["owner"]
    section = app.config.get("MOSlurmSpawner", {})
    if "partitions" not in section:
        return
    try:
        load_partitions(section["partitions"])
    except PartitionConfigError as exc:
        app.log.critical("jupyterhub_moss cannot start: %s", exc)
        app.exit(1)
