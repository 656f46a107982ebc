"""The batch script: its context, built from validated options, and a renderer that quotes.

Rendering is Jinja with escaping that cannot be forgotten: every ``{{ value }}`` is shell-quoted
(``shlex.quote``) unless it is a :class:`ShellLiteral`, the marker for text the spawner itself
vouches for (the admin's prologue, an already-quoted word list). Inside ``#SBATCH`` lines, which
``sbatch`` reads with its own quoting rules rather than the shell's, templates use the ``sbatch``
and ``sbatch_option`` filters.

The result is piped to ``sbatch --parsable`` by batchspawner's ``SlurmSpawner`` submit flow.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import jinja2
import jinja2.meta

from .config import JupyterEnvironment
from .limits import PartitionLimits
from .options import UserOptions
from .sbatch_options import parse_sbatch_options, split_option
from .slurm_option_table import option_named

__all__ = [
    "SCRIPT_CONTEXT_NAMES",
    "ScriptSettings",
    "ShellLiteral",
    "build_script_context",
    "chosen_environment",
    "default_template",
    "job_sbatch_arguments",
    "render_batch_script",
    "sbatch_quote",
    "shell_words",
    "unknown_script_names",
]

_SBATCH_SAFE_RE = re.compile(r"^[A-Za-z0-9_.,:/@%+=-]+$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPTION_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_LINE_BREAKERS = ("\n", "\r", "\x00")


class ShellLiteral(str):
    """Text inserted into the script as it is. Only the spawner should create these."""


def _finalize(value: Any) -> str:
    """Jinja's last step for every ``{{ }}``: quote unless the value is a ShellLiteral."""
    if isinstance(value, ShellLiteral):
        return value
    return shlex.quote("" if value is None else str(value))


def sbatch_quote(value: Any) -> ShellLiteral:
    """One argument of an ``#SBATCH`` line, as ``sbatch`` itself parses it.

    sbatch splits those lines on whitespace, treats an unquoted ``#`` as a comment, and honours
    double quotes with backslash escapes (also inside quotes, unlike the shell's single quotes).
    Plain values are left bare so the script stays readable.
    """
    text = "" if value is None else str(value)
    if any(char in text for char in _LINE_BREAKERS):
        raise ValueError(f"an #SBATCH value cannot hold a line break or NUL: {text!r}")
    if _SBATCH_SAFE_RE.fullmatch(text):
        return ShellLiteral(text)
    return ShellLiteral('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')


def sbatch_option(item: str) -> ShellLiteral:
    """``"--comment=a b"`` → ``--comment="a b"``: the name bare, the value sbatch-quoted."""
    name, value = split_option(item)
    if not item.startswith("--") or not _OPTION_NAME_RE.fullmatch(name):
        raise ValueError(f"not an sbatch option: {item!r}")
    if value is None:
        known = option_named(name)
        if known is not None and known.value == "required":
            # bare, sbatch would take the next #SBATCH line's option as its value
            raise ValueError(f"{item!r} needs a value")
        return ShellLiteral(f"--{name}")
    return ShellLiteral(f"--{name}={sbatch_quote(value)}")


def shell_words(words: Iterable[Any]) -> ShellLiteral:
    """Each word quoted on its own, joined with spaces: a command line that means the list."""
    return ShellLiteral(" ".join(shlex.quote(str(word)) for word in words))


def _literal(value: Any) -> ShellLiteral:
    return ShellLiteral("" if value is None else str(value))


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    # Not HTML, so no HTML autoescape: _finalize shell-quotes every value instead.
    env = jinja2.Environment(
        autoescape=False,  # noqa: S701
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        sbatch=sbatch_quote,
        sbatch_option=sbatch_option,
        words=shell_words,
        literal=_literal,
    )
    return env


@lru_cache(maxsize=16)
def _compile(template: str) -> jinja2.Template:
    return _environment().from_string(template)


def render_batch_script(template: str, context: Mapping[str, Any]) -> str:
    """Render ``template`` with every interpolated value quoted (see the module docstring)."""
    return _compile(template).render(context)


def unknown_script_names(template: str) -> list[str]:
    """The names ``template`` reads that :func:`build_script_context` does not provide, sorted.

    Rendering is strict, so a spawn whose script reaches one of them fails; the hub says so at
    start-up instead. A name guarded by ``is defined`` is listed too: the check reads the
    template, it does not run it. Raises ``jinja2.TemplateSyntaxError`` for a broken template.
    """
    env = _environment()
    used = jinja2.meta.find_undeclared_variables(env.parse(template))
    return sorted(used - SCRIPT_CONTEXT_NAMES - set(env.globals))


def default_template() -> str:
    """The package's batch script template (``templates/batch_script.sh.j2``)."""
    return files("jupyterhub_moss").joinpath("templates/batch_script.sh.j2").read_text()


@dataclass(frozen=True)
class ScriptSettings:
    """The admin's side of the script: batchspawner-style ``req_*`` traits and friends.

    These come from the spawner's configuration, never from the user. ``default_memory`` and
    ``default_gres`` apply when the user leaves that field empty. ``account``, ``qos``,
    ``reservation`` and every one of ``options`` win over the user's: validation refuses a user
    value that would replace them (:attr:`.OptionsPolicy.locked_sbatch_options`), and the script
    writes them after the user's lines, since sbatch keeps the last value of an option.
    """

    home_dir: str
    #: The server's command line as words (with ``server_launcher = "batchspawner"``,
    #: batchspawner's wrapper first).
    singleuser_command: tuple[str, ...] = ("jupyterhub-singleuser",)
    #: The Python that runs our launcher (:mod:`.launcher`) in front of the command; "" runs
    #: the command as it is.
    launcher_python: str = "python3"
    #: Names of variables the submit environment passes to the job (``--export``).
    export_vars: tuple[str, ...] = ()
    job_name: str = "jupyterhub-moss"
    srun: str = "srun"  # shell text; "" runs the server in the batch step itself
    account: str = ""
    qos: str = ""
    options: str = ""  # extra sbatch options, split like the user's but with no deny list
    prologue: str = ""  # shell text run before the environment is set up
    epilogue: str = ""  # shell text run after the server exits
    default_memory: str = ""
    default_gres: str = ""
    reservation: str = ""
    #: How to run a ``.sif`` environment; ``{image}`` is replaced by the image's path.
    container_command: str = "apptainer exec {image}"


def chosen_environment(options: UserOptions, limits: PartitionLimits) -> JupyterEnvironment:
    """The Jupyter environment a spawn runs: the user's own, or one of the partition's."""
    if options.is_custom_environment:
        return JupyterEnvironment(
            path=options.environment_path, modules=options.environment_modules
        )
    return limits.environments[options.environment_id or limits.default_environment_id]


def charged_to(options: UserOptions, settings: ScriptSettings) -> tuple[str, str]:
    """The job's account and QOS: the admin's ``req_account``/``req_qos`` win over the user's
    choice (the validator refuses a user value that differs from them anyway)."""
    return settings.account or options.account, settings.qos or options.qos


def _resources(
    options: UserOptions, limits: PartitionLimits, settings: ScriptSettings
) -> tuple[str, str, str]:
    # memory and gres: the user's, else the admin's default; the admin's reservation wins
    return (
        options.memory or settings.default_memory,
        limits.gres_for(options.ngpus, options.gpu_type) or settings.default_gres,
        settings.reservation or options.reservation,
    )


def job_sbatch_arguments(
    options: UserOptions,
    limits: PartitionLimits,
    settings: ScriptSettings,
    *,
    fixed: Sequence[str] = (),
) -> list[str]:
    """The job's sbatch arguments, in the order the batch script writes them as ``#SBATCH``.

    These decide where, when and with what the job runs; the start estimate passes the same list
    to ``sbatch --test-only``, so it cannot promise a start the real submission would not get.
    The user's extra options come first and the admin's last, since sbatch keeps an option's
    last value. ``fixed`` are arguments that decide none of that (``--job-name``, ``--chdir``,
    ``--output``...); they go after the user's options, where the script has always had them.
    """
    memory, gres, reservation = _resources(options, limits, settings)
    account, qos = charged_to(options, settings)
    admin_options = parse_sbatch_options(settings.options, denied=(), trusted=True)
    return [
        *options.options,
        *fixed,
        f"--partition={options.partition}",
        f"--time={options.runtime}",
        f"--cpus-per-task={options.nprocs}",
        *([f"--mem={memory}"] if memory else []),
        *([f"--gres={gres}"] if gres else []),
        *([f"--reservation={reservation}"] if reservation else []),
        *([f"--account={account}"] if account else []),
        *([f"--qos={qos}"] if qos else []),
        *admin_options,
    ]


#: The line that ends the launcher's here-document in the script.
LAUNCHER_END = "MOSS_LAUNCHER_END"


@lru_cache(maxsize=1)
def launcher_source() -> str:
    """The text of :mod:`.launcher`, which the batch script carries to the job."""
    text = files("jupyterhub_moss").joinpath("launcher.py").read_text()
    if any(line.strip() == LAUNCHER_END for line in text.splitlines()):
        raise RuntimeError(f"launcher.py may not hold a line {LAUNCHER_END!r}")
    # The job's locale may be C: non-ASCII in `python3 -c TEXT` would not survive decoding.
    if not text.isascii():
        raise RuntimeError("launcher.py must be plain ASCII")
    return text.rstrip("\n")


def _container_words(template: str, image: str) -> list[str]:
    return [word.replace("{image}", image) for word in shlex.split(template)]


def _export_list(names: Iterable[str]) -> str:
    names = list(dict.fromkeys(names))
    for name in names:
        if not _ENV_NAME_RE.fullmatch(name):
            raise ValueError(f"not an environment variable name: {name!r}")
    # Nothing listed: Slurm's own default, rather than a job without JUPYTERHUB_* variables.
    return ",".join(names) or "ALL"


#: Every name :func:`build_script_context` gives the template (a unit test keeps them equal).
SCRIPT_CONTEXT_NAMES = frozenset(
    {
        "sbatch_arguments", "job_name", "home_dir", "export", "output_path", "partition",
        "runtime", "nprocs", "memory", "gres", "reservation", "account", "qos",
        "user_sbatch_options", "admin_sbatch_options", "sbatch_options", "default_url",
        "root_dir", "prologue", "environment_prologue", "modules", "path_prepend", "container",
        "srun", "launcher_source", "launcher_python", "command", "epilogue",
    }
)  # fmt: skip


def build_script_context(
    options: UserOptions, limits: PartitionLimits, settings: ScriptSettings
) -> dict[str, Any]:
    """Everything the template needs for one spawn, with nothing left for it to decide.

    ``default_url`` and ``root_dir`` belong to this spawn only; the default template exports them
    as ``JUPYTERHUB_DEFAULT_URL``/``JUPYTERHUB_ROOT_DIR``, which jupyterhub-singleuser reads (and
    expands ``~`` in), so no spawner attribute has to change.
    """
    env = chosen_environment(options, limits)
    home = settings.home_dir.rstrip("/") or "/"
    admin_options = parse_sbatch_options(settings.options, denied=(), trusted=True)
    memory, gres, reservation = _resources(options, limits, settings)
    export = _export_list(settings.export_vars)
    output_path = f"{home.rstrip('/')}/slurm-%j.out" if options.output else "/dev/null"
    fixed = [
        f"--job-name={settings.job_name}",
        f"--chdir={home}",
        f"--export={export}",
        "--get-user-env",
        f"--output={output_path}",
    ]
    return {
        # Every #SBATCH line of the default template; the names below serve custom templates.
        "sbatch_arguments": job_sbatch_arguments(options, limits, settings, fixed=fixed),
        "job_name": settings.job_name,
        "home_dir": home,
        "export": export,
        "output_path": output_path,
        "partition": options.partition,
        "runtime": options.runtime,
        "nprocs": options.nprocs,
        "memory": memory,
        "gres": gres,
        "reservation": reservation,
        "account": charged_to(options, settings)[0],
        "qos": charged_to(options, settings)[1],
        # The user's lines come first and the admin's last: sbatch keeps an option's last value.
        "user_sbatch_options": list(options.options),
        "admin_sbatch_options": admin_options,
        "sbatch_options": [*options.options, *admin_options],  # for older custom templates
        "default_url": options.default_url,
        "root_dir": options.root_dir,
        "prologue": ShellLiteral(settings.prologue),
        "environment_prologue": ShellLiteral(env.prologue),
        "modules": list(env.module_list),
        "path_prepend": env.path if env.path and env.add_to_path and not env.is_container else "",
        "container": _container_words(settings.container_command, env.path)
        if env.is_container
        else [],
        "srun": ShellLiteral(settings.srun.strip()),
        # The launcher's source goes into a quoted here-document: nothing in it is expanded.
        "launcher_source": ShellLiteral(launcher_source()) if settings.launcher_python else "",
        "launcher_python": settings.launcher_python,
        "command": list(settings.singleuser_command),
        "epilogue": ShellLiteral(settings.epilogue),
    }
