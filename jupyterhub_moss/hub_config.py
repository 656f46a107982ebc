"""``set_config(c)``: wire jupyterhub_moss into a JupyterHub configuration.

Also the set-up and checks a starting hub runs once its whole configuration is in, whichever way
the admin chose the spawner (``set_config``, ``spawner_class = "moss"`` or the class name), and
the closing of the shared Slurm services when that hub stops: see :func:`hook_into_hub_start`.
"""

from __future__ import annotations

import functools
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

    Calling it twice is harmless. A hub whose config only says ``spawner_class = "moss"`` (or
    the class name) gets the same, from :func:`hook_into_hub_start`.
    """
    c.JupyterHub.spawner_class = SPAWNER_CLASS
    handlers.register()
    hook_into_hub_start()


def hook_into_hub_start() -> None:
    """Have every JupyterHub that spawns with our class set up and check its handler table, and
    close the shared Slurm services when it stops.

    JupyterHub imports this package while it is still being constructed (it loads every
    spawner entry point to list their options), resolves ``spawner_class`` from the config,
    and only then builds its handler table in ``init_handlers``, before it serves anything.
    Wrapping that one method is the only point where the whole config is known and the table
    not yet built. For a hub using another spawner it does nothing: merely having the package
    installed must not change that hub's pages. Installed once, when the package is imported.

    At shutdown JupyterHub awaits ``cleanup`` (JupyterHub 5 and 6 alike): after it has stopped
    the servers (which may still ask the job poller), the background refreshes and Slurm
    commands in flight of :mod:`.slurm.services` are closed.
    """
    from jupyterhub.app import JupyterHub

    _wrap_init_handlers(JupyterHub)
    _wrap_cleanup(JupyterHub)


def _wrap_init_handlers(hub_class: type) -> None:
    original = hub_class.init_handlers
    if getattr(original, "_moss_hook", False):
        return

    @functools.wraps(original)
    def init_handlers(app: Any, *args: Any, **kwargs: Any) -> Any:
        ours = _uses_our_spawner(app)
        if ours:
            handlers.register()
        result = original(app, *args, **kwargs)
        if ours:
            _check_port_report_route(app)
            _report_reference_config(app)
            _check_partitions(app)
            _check_admin_sbatch_options(app)
        return result

    init_handlers._moss_hook = True  # type: ignore[attr-defined]
    hub_class.init_handlers = init_handlers


def _wrap_cleanup(hub_class: type) -> None:
    original = hub_class.cleanup
    if getattr(original, "_moss_hook", False):
        return

    @functools.wraps(original)
    async def cleanup(app: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(app, *args, **kwargs)
        finally:
            await _close_slurm_services(app)

    cleanup._moss_hook = True  # type: ignore[attr-defined]
    hub_class.cleanup = cleanup


async def _close_slurm_services(app: Any) -> None:
    from .slurm import services

    try:
        closed = await services.close_all()
    except Exception:
        # the hub is stopping anyway: say so, and let the rest of its shutdown go on
        app.log.exception("jupyterhub_moss: closing the shared Slurm services failed")
        return
    # a hub with another spawner has none, and its log stays as it was
    if closed or _uses_our_spawner(app):
        app.log.info("jupyterhub_moss: closed %d shared Slurm services", closed)


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


def _report_reference_config(app: Any) -> None:
    """Say, once per hub, what the reference's settings in the config do here (see
    :mod:`.reference_config`): each one not used gets one line naming what to use instead."""
    from .reference_config import startup_messages

    if getattr(app, "_moss_reference_reported", False):
        return
    app._moss_reference_reported = True
    sections = app.spawner_class.section_names()
    for message in startup_messages(app.config, sections, list(app.template_paths)):
        app.log.log(message.level, "%s", message.text)


def _check_partitions(app: Any) -> None:
    """The partitions, then the defaults and locks on them (against the admin's own limits)."""
    from .config import PartitionConfigError, load_field_values, load_partitions
    from .preset_check import preset_problems

    section = app.config.get("MOSlurmSpawner", {})
    try:
        hub_defaults = load_field_values(section.get("field_defaults"), "field_defaults")
        hub_locks = load_field_values(section.get("locked_fields"), "locked_fields")
        if "partitions" not in section:
            return
        configs = load_partitions(section["partitions"])
    except PartitionConfigError as exc:
        app.log.critical("jupyterhub_moss cannot start: %s", exc)
        app.exit(1)
        return
    problems = preset_problems(configs, hub_defaults, hub_locks)
    if problems:
        app.log.critical(
            "jupyterhub_moss cannot start: invalid defaults or locks:\n%s", "\n".join(problems)
        )
        app.exit(1)


def _check_admin_sbatch_options(app: Any) -> None:
    """``req_options`` must split into sbatch options now, not fail every user's spawn later.

    A spawner built from the hub's config resolves the trait as the real ones will (it may be
    set on ``Spawner``, ``BatchSpawnerBase``, ``SlurmSpawner`` or ``MOSlurmSpawner``).
    """
    from .sbatch_options import SbatchOptionError, admin_locked_options

    spawner = app.spawner_class(config=app.config)
    try:
        admin_locked_options(spawner.req_options)
    except SbatchOptionError as exc:
        app.log.critical("jupyterhub_moss cannot start: req_options: %s", exc)
        app.exit(1)


def _describe(handler: Any) -> str:
    if handler is None:
        return "no handler"
    module = getattr(handler, "__module__", "")
    name = getattr(handler, "__qualname__", repr(handler))
    return f"{module}.{name}" if module else name
