"""``set_config(c)``: wire jupyterhub_moss into a JupyterHub configuration."""

from __future__ import annotations

from typing import Any

from . import handlers

SPAWNER_CLASS = "jupyterhub_moss.MOSlurmSpawner"


def set_config(c: Any) -> None:
    """Make ``c`` use :class:`~jupyterhub_moss.MOSlurmSpawner` and serve this package's pages.

    The package's handlers are added to JupyterHub's own handler list rather than to the
    deprecated ``JupyterHub.extra_handlers``: that keeps whatever ``extra_handlers`` the admin set,
    logs no deprecation warning, and lets the hub prefix them with its ``base_url`` like any page
    of its own. Calling it twice is harmless.
    """
    c.JupyterHub.spawner_class = SPAWNER_CLASS
    handlers.register()
