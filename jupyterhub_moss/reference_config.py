"""A configuration written for the reference, jupyterhub-moss 10.1, and what it does here.

Admins move here with a ``jupyterhub_config.py`` written for the reference. Every trait its
spawner class offers (its own, and those it inherits from batchspawner's ``SlurmSpawner``) is
in :data:`REFERENCE_TRAITS`, with what we do with it:

- ``honoured``: it does what it did;
- ``differs``: honoured, with a difference on purpose that the README's "Coming from
  jupyterhub-moss" section describes; some are checked at start-up (``batch_script``,
  ``batchspawner_singleuser_cmd``), the others need no message;
- ``replaced``: not used here. A config that sets it gets one WARNING line at start-up naming
  the trait and what to use instead, rather than a hub that silently does something else.

The partition and environment fields (:data:`REFERENCE_PARTITION_FIELDS`,
:data:`REFERENCE_ENVIRONMENT_FIELDS`) are all honoured by :mod:`.config`. A spawn-form template
in ``c.JupyterHub.template_paths`` under the reference's name gets a WARNING too.

JupyterHub's own ``Spawner`` traits behave as JupyterHub documents them, for the reference and
for us alike, and are not listed. :func:`startup_messages` is plain: the hub hands it its config
and template folders (:mod:`.hub_config`) and logs what it returns, once.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2

from .batch_script import unknown_script_names

__all__ = [
    "REFERENCE_ENVIRONMENT_FIELDS",
    "REFERENCE_FORM_TEMPLATE",
    "REFERENCE_PARTITION_FIELDS",
    "REFERENCE_TRAITS",
    "ReferenceTrait",
    "StartupMessage",
    "startup_messages",
]

Treatment = Literal["honoured", "differs", "replaced"]


@dataclass(frozen=True)
class ReferenceTrait:
    """One configurable trait of the reference's ``MOSlurmSpawner`` and what we do with it."""

    name: str
    origin: Literal["jupyterhub-moss", "batchspawner"]
    treatment: Treatment
    #: For ``replaced``: the start-up line's reason and what to use instead. Otherwise how
    #: it is honoured (shown in the README's table, never logged).
    what_we_do: str


def _moss(name: str, treatment: Treatment, what_we_do: str) -> ReferenceTrait:
    return ReferenceTrait(name, "jupyterhub-moss", treatment, what_we_do)


def _batch(name: str, treatment: Treatment, what_we_do: str) -> ReferenceTrait:
    return ReferenceTrait(name, "batchspawner", treatment, what_we_do)


_OUR_COMMANDS = (
    "jupyterhub_moss runs sbatch, squeue and scancel itself, as argument lists without a "
    "shell, and one squeue serves every job of the hub; to change how Slurm's commands run, "
    "use slurm_bin_dir, slurm_commands or exec_prefix"
)
_PARSED_STATES = (
    "job states and nodes are parsed from squeue's own output, one squeue for every job of "
    "the hub; there is nothing to match"
)
_ONE_CLUSTER = (
    "every Slurm command of the hub talks to the cluster of its SLURM_CONF; run one hub per "
    "cluster, with SLURM_CONF in c.Spawner.env_keep"
)

#: Every configurable trait of the reference's spawner class that is not JupyterHub's own.
REFERENCE_TRAITS: tuple[ReferenceTrait, ...] = (
    _moss("partitions", "honoured", "the same fields; see the partitions table"),
    _moss(
        "batch_script",
        "differs",
        "rendered with our context, every value shell-quoted; names our context lacks, or a "
        "template that does not parse, are reported at start-up",
    ),
    _moss(
        "slurm_info_cmd",
        "replaced",
        "jupyterhub_moss reads partitions and nodes with its own sinfo and scontrol calls, "
        "once for the whole hub; to change how they run, use slurm_bin_dir, slurm_commands "
        "(e.g. {'sinfo': '/opt/slurm/bin/sinfo'}) or slurm_query_prefix",
    ),
    _moss(
        "slurm_info_resources",
        "replaced",
        "Slurm's answers are parsed by jupyterhub_moss; to override what Slurm reports, set "
        "max_nprocs, max_ngpus, max_runtime or gpu in c.MOSlurmSpawner.partitions",
    ),
    _moss(
        "singularity_cmd",
        "replaced",
        "an environment whose path ends in .sif runs through container_command",
    ),
    _batch("exec_prefix", "differs", "split into words and run without a shell"),
    _batch("req_account", "differs", "wins: a user may not choose another account"),
    _batch("req_qos", "differs", "wins: a user may not choose another QOS"),
    _batch("req_reservation", "differs", "wins: a user may not choose another reservation"),
    _batch("req_options", "differs", "win: users may not replace them; checked at start-up"),
    _batch("req_memory", "honoured", "the memory of a request that gives none"),
    _batch("req_gres", "honoured", "the --gres of a request that asks for no GPUs"),
    _batch("req_prologue", "honoured", "shell lines before the environment's prologue"),
    _batch("req_epilogue", "honoured", "shell lines after the server exits"),
    _batch("req_srun", "honoured", "the prefix of the server's command"),
    _batch("req_keepvars_extra", "honoured", "more variables for --export"),
    _batch(
        "startup_poll_interval",
        "differs",
        "one squeue for all starting jobs; default 2 s, at least 1 s",
    ),
    _batch(
        "batchspawner_singleuser_cmd",
        "differs",
        "used with server_launcher = 'batchspawner'; reported at start-up otherwise",
    ),
    _batch(
        "req_partition",
        "replaced",
        "a request that names no partition gets default_partition (default: the first of "
        "c.MOSlurmSpawner.partitions); use that instead",
    ),
    _batch(
        "req_runtime",
        "replaced",
        "the run time is the user's runtime (1 hour when a request gives none), at most a "
        "partition's max_runtime; use c.MOSlurmSpawner.field_defaults = {'runtime': ...} "
        "(or locked_fields) for the default, max_runtime in c.MOSlurmSpawner.partitions and "
        "simple_runtime_hours instead",
    ),
    _batch(
        "req_nprocs",
        "replaced",
        "the CPUs are the user's nprocs (1 when a request gives none), at most a partition's "
        "max_nprocs; use c.MOSlurmSpawner.field_defaults = {'nprocs': ...} (or locked_fields) "
        "for the default, max_nprocs in c.MOSlurmSpawner.partitions and simple_cpu_counts "
        "instead",
    ),
    _batch(
        "req_ngpus",
        "replaced",
        "the GPUs are the user's ngpus, at most a partition's max_ngpus; use "
        "c.MOSlurmSpawner.field_defaults = {'ngpus': ...} (or locked_fields) for the default, "
        "max_ngpus and gpu in c.MOSlurmSpawner.partitions, or req_gres for a fixed --gres, "
        "instead",
    ),
    _batch("req_cluster", "replaced", _ONE_CLUSTER),
    _batch("req_host", "replaced", _ONE_CLUSTER),
    _batch(
        "req_queue",
        "replaced",
        "Slurm has partitions, not queues; use c.MOSlurmSpawner.partitions and "
        "default_partition instead",
    ),
    _batch("batch_submit_cmd", "replaced", _OUR_COMMANDS),
    _batch("batch_query_cmd", "replaced", _OUR_COMMANDS),
    _batch("batch_cancel_cmd", "replaced", _OUR_COMMANDS),
    _batch("state_pending_re", "replaced", _PARSED_STATES),
    _batch("state_running_re", "replaced", _PARSED_STATES),
    _batch("state_unknown_re", "replaced", _PARSED_STATES + "; a failing squeue is 'unknown'"),
    _batch("state_exechost_re", "replaced", _PARSED_STATES),
    _batch("state_exechost_exp", "replaced", _PARSED_STATES),
)

#: The reference's partition fields (README 7.0.1; 10.1 added none): all honoured.
REFERENCE_PARTITION_FIELDS = (
    "architecture",
    "description",
    "gpu",
    "max_ngpus",
    "max_nprocs",
    "max_runtime",
    "simple",
    "jupyter_environments",
)
#: The fields of one of its ``jupyter_environments``: all honoured.
REFERENCE_ENVIRONMENT_FIELDS = ("description", "path", "modules", "add_to_path", "prologue")
#: The file name under which the reference's spawn form is overridden from template_paths.
REFERENCE_FORM_TEMPLATE = "option_form.html"


@dataclass(frozen=True)
class StartupMessage:
    """One line the hub logs once at start-up."""

    level: int  # logging.WARNING or logging.INFO
    text: str


def startup_messages(
    config: Mapping[str, Any],
    sections: Sequence[str],
    template_paths: Sequence[str] = (),
) -> list[StartupMessage]:
    """What the hub says about the reference's settings in ``config``.

    ``sections`` are the config sections the spawner class reads, most general first
    (``MOSlurmSpawner.section_names()``): a trait set in several counts once, under the most
    specific. ``template_paths`` are the hub's ``c.JupyterHub.template_paths``.
    """
    settings = _settings_by_section(config, sections)
    messages: list[StartupMessage] = []
    for trait in REFERENCE_TRAITS:
        if trait.name in settings:
            section, value = settings[trait.name]
            message = _message_for(trait, f"c.{section}.{trait.name}", value, settings)
            if message is not None:
                messages.append(message)
    messages.extend(_form_template_messages(template_paths))
    return messages


def _settings_by_section(
    config: Mapping[str, Any], sections: Sequence[str]
) -> dict[str, tuple[str, Any]]:
    found: dict[str, tuple[str, Any]] = {}
    for section in sections:
        # not config[section]: traitlets' Config creates a section it is merely asked for
        values = config.get(section, {})
        if isinstance(values, Mapping):
            found.update({name: (section, value) for name, value in values.items()})
    return found


def _message_for(
    trait: ReferenceTrait, where: str, value: Any, settings: Mapping[str, tuple[str, Any]]
) -> StartupMessage | None:
    if trait.name == "singularity_cmd":
        return _warning(
            f"{where} is not used: {trait.what_we_do}; set c.MOSlurmSpawner.container_command "
            f"= {_container_command_for(value)!r} instead ({{image}} is the image's path)"
        )
    if trait.name == "batch_script":
        return _batch_script_message(where, value)
    if trait.name == "batchspawner_singleuser_cmd":
        return _singleuser_cmd_message(where, settings)
    if trait.treatment == "replaced":
        return _warning(f"{where} is not used: {trait.what_we_do}")
    return None


def _warning(text: str) -> StartupMessage:
    return StartupMessage(logging.WARNING, f"jupyterhub_moss: {text}")


def _container_command_for(value: Any) -> str:
    # The reference names the image after its command: keep the admin's words, then the image.
    words = value if isinstance(value, list | tuple) else ["singularity", "exec"]
    return " ".join([*(shlex.quote(str(word)) for word in words), "{image}"])


def _batch_script_message(where: str, template: Any) -> StartupMessage | None:
    if not isinstance(template, str):
        return None  # not a plain string (e.g. computed lazily): the spawn will tell
    try:
        unknown = unknown_script_names(template)
    except jinja2.TemplateSyntaxError as error:
        return _warning(
            f"{where} is not a valid template (line {error.lineno}: {error.message}); every "
            "spawn would fail. Start from jupyterhub_moss/templates/batch_script.sh.j2"
        )
    if not unknown:
        return None
    return _warning(
        f"{where} uses names jupyterhub_moss's batch script context does not have: "
        f"{', '.join(unknown)}; a spawn whose script reaches one fails. Start from "
        "jupyterhub_moss/templates/batch_script.sh.j2 (its context is documented in "
        "jupyterhub_moss/batch_script.py)"
    )


def _singleuser_cmd_message(
    where: str, settings: Mapping[str, tuple[str, Any]]
) -> StartupMessage | None:
    launcher = settings.get("server_launcher", ("", "moss"))[1]
    if isinstance(launcher, str) and launcher.lower() == "batchspawner":
        return None
    return _warning(
        f"{where} is not used: jupyterhub_moss's own launcher starts the server and needs no "
        "batchspawner in the job; set c.MOSlurmSpawner.server_launcher = 'batchspawner' to "
        "run this wrapper instead"
    )


def _form_template_messages(template_paths: Sequence[str]) -> list[StartupMessage]:
    messages = []
    for folder in template_paths:
        path = Path(folder) / REFERENCE_FORM_TEMPLATE
        if path.is_file():
            messages.append(
                _warning(
                    f"{path} is not used: it overrides the reference's spawn form. Ours is "
                    "moss_form.html: extend 'jupyterhub_moss/moss_form.html' in the same "
                    "folder and override its blocks (README, 'Customising the form')"
                )
            )
    return messages
