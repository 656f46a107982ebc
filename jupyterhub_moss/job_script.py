"""The batch script of one spawn's job: the admin's traits and a :class:`~.context.SpawnRequest`.

:mod:`.batch_script` renders a script from plain values; this module gathers them from the
spawner: the admin's ``req_*`` traits (batchspawner's), the job's command line, and the
request validated once for the spawn. The start estimate of the spawn page reads the same
:meth:`JobScript.script_settings`, so it asks Slurm about the job ``start()`` submits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from batchspawner import SlurmSpawner
from traitlets import CaselessStrEnum, Unicode

from .batch_script import (
    ScriptSettings,
    build_script_context,
    chosen_environment,
    render_batch_script,
)
from .context import SpawnRequest
from .job_reports import SpawnFailed
from .limits import PartitionLimits
from .log_safe import log_safe
from .options import UserOptions

__all__ = ["JobScript", "environment_bin"]


def environment_bin(options: UserOptions, limits: PartitionLimits) -> str:
    """The ``bin/`` folder of the environment chosen for a spawn; "" for one given only by
    modules, or for a container image."""
    chosen = chosen_environment(options, limits)
    return "" if not chosen.path or chosen.is_container else chosen.path


def _in_folder(folder: str, program: str) -> str:
    return program if os.sep in program else os.path.join(folder, program)


class JobScript(SlurmSpawner):
    """Mixin of :class:`~.lifecycle.SlurmJobLifecycle`: the batch script of a spawn.

    It reads batchspawner's ``req_*`` traits, ``batch_script``, ``batchspawner_singleuser_cmd``,
    ``cmd`` and ``get_args()``, and the lifecycle's ``job_name``, ``container_command``,
    ``server_launcher`` and ``launcher_python``.
    """

    server_launcher = CaselessStrEnum(
        ["moss", "batchspawner"],
        default_value="moss",
        help="""
        What starts the single-user server in the job and tells the hub its port.

        - ``"moss"`` (the default): jupyterhub_moss's launcher, a short program using only
          Python's standard library, which the batch script carries and runs with
          ``launcher_python``. The job's environment needs only ``jupyterhub`` and
          ``jupyterlab`` (or another Jupyter server), not batchspawner. The server gets a free
          port from the system as it binds, and the launcher reports the port it really bound,
          as soon as it listens.
        - ``"batchspawner"``: batchspawner's wrapper, ``batchspawner_singleuser_cmd``, as
          batchspawner's own spawners run it. The environment then needs batchspawner.
        """,
    ).tag(config=True)

    launcher_python = Unicode(
        "python3",
        help="""
        The Python that runs the launcher in the job (any Python 3.6 or newer: the launcher
        uses only the standard library). Looked up on the job's ``PATH`` after the
        environment's modules are loaded and its ``bin/`` folder is added, or inside the
        container for an image.
        """,
    ).tag(config=True)

    def server_command(self, bin_dir: str = "") -> tuple[str, ...]:
        """The server's command line, which our launcher runs; with ``server_launcher =
        "batchspawner"``, batchspawner's wrapper first.

        With an environment ``bin/`` folder, the programs are taken from it by absolute path,
        so a wrong folder fails the job at once instead of finding another Jupyter further
        down ``PATH`` (such as the hub's own).
        """
        programs = [self.cmd[0]]
        if self.server_launcher == "batchspawner":
            programs.insert(0, self.batchspawner_singleuser_cmd)
        if bin_dir:
            programs = [_in_folder(bin_dir, word) for word in programs]
        return (*programs, *self.cmd[1:], *self.get_args())

    def script_settings(self, env: Mapping[str, str], bin_dir: str = "") -> ScriptSettings:
        """The admin's side of the batch script, from batchspawner's ``req_*`` traits."""
        if self.trait_has_value("req_keepvars"):
            names = [name.strip() for name in self.req_keepvars.split(",")]
        else:
            names = list(env)
        names += [name.strip() for name in self.req_keepvars_extra.split(",")]
        return ScriptSettings(
            home_dir=self.req_homedir,
            singleuser_command=self.server_command(bin_dir),
            export_vars=tuple(name for name in names if name),
            job_name=self.job_name,
            srun=self.req_srun,
            account=self.req_account,
            qos=self.req_qos,
            options=self.req_options,
            prologue=self.req_prologue,
            epilogue=self.req_epilogue,
            default_memory=self.req_memory,
            default_gres=self.req_gres,
            reservation=self.req_reservation,
            container_command=self.container_command,
            launcher_python=self.launcher_python if self.server_launcher == "moss" else "",
        )

    def build_batch_script(self, request: SpawnRequest, env: Mapping[str, str]) -> str:
        """The batch script of ``request``, whose variables ``env`` the job keeps.

        It changes nothing on the spawner: the same request and traits give the same script.
        Raises :class:`SpawnFailed` when the admin's ``batch_script`` template cannot be
        rendered.
        """
        options, limits = request.options, request.partition
        settings = self.script_settings(env, environment_bin(options, limits))
        context = build_script_context(options, limits, settings)
        try:
            return render_batch_script(self.batch_script, context)
        except Exception as error:  # an admin's template that does not fit our context
            self.log.error("Cannot render the batch script template: %s", log_safe(error))
            raise SpawnFailed(f"The batch script template is broken: {error}") from error
