"""The admin's partition configuration (``c.MOSlurmSpawner.partitions``) and its validation.

The shape follows the reference's documented interface, so an existing ``jupyterhub_config.py``
keeps working. Everything is checked once, at hub start-up, by :func:`load_partitions`: a typo in
a field name or a ``gpu`` template without ``{}`` then stops the hub with a message naming the
partition and the field, instead of surfacing later as a broken spawn.

Models are strict (no ``"28"`` for ``28``) and reject unknown fields, because a silently ignored
misspelling (``max_nproc``) would leave a limit unset without anyone noticing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "PRESET_FIELDS",
    "FieldValues",
    "GpuTypeConfig",
    "JupyterEnvironment",
    "PartitionConfig",
    "PartitionConfigError",
    "load_field_values",
    "load_partitions",
]

# Slurm partition names end up in `#SBATCH --partition=` lines and in URLs: keep them plain.
PARTITION_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A GPU type is one word of a --gres value (gpu:TYPE:N): no ':' ',' '=' or spaces. MIG types
# such as "1g.5gb" and names such as "a100-sxm4_80g" are words too.
GPU_TYPE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$")


def _hub_group_names(value: Any) -> Any:
    """``groups``: a list (or tuple) of JupyterHub group names, kept as a tuple; None = everyone.

    An empty list is refused: it would hide the partition or environment from everyone but the
    hub's admins, which is what leaving it out of the config does more plainly. A lone string is
    refused too, since ``"staff"`` read as a list would be the groups s, t, a and f.
    """
    if value is None:
        return None
    if isinstance(value, str):
        raise ValueError(f"must be a list of JupyterHub group names, such as [{value!r}]")
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of JupyterHub group names, not {type(value).__name__}")
    if not value:
        raise ValueError(
            "must name at least one JupyterHub group (leave 'groups' out to offer it to everyone)"
        )
    for name in value:
        if not isinstance(name, str) or not name.strip() or _CONTROL_CHARS_RE.search(name):
            raise ValueError(f"group names must be non-empty single-line strings, got {name!r}")
    return tuple(value)


def _no_control_chars(value: str) -> str:
    # Newlines or NUL in a value that reaches the batch script would be a script-injection bug
    # waiting for a template change; refuse them even from the admin.
    if _CONTROL_CHARS_RE.search(value):
        raise ValueError("must not contain control characters such as newlines")
    return value


class JupyterEnvironment(BaseModel):
    """One Jupyter environment a partition offers: a ``bin/`` folder, modules, or an image."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    description: str = ""
    path: str = Field(
        default="",
        description="A bin/ folder holding jupyterhub-singleuser, or an Apptainer image (.sif).",
    )
    modules: str = Field(default="", description="Space-separated modules to `module load`.")
    add_to_path: bool = True
    prologue: str = Field(default="", description="Shell lines run before the server starts.")
    groups: tuple[str, ...] | None = Field(
        default=None,
        description="JupyterHub groups whose members are offered it; None = everyone.",
    )

    _groups = field_validator("groups", mode="before")(_hub_group_names)

    @field_validator("path", "modules")
    @classmethod
    def _single_line(cls, value: str) -> str:
        return _no_control_chars(value)

    @model_validator(mode="after")
    def _path_or_modules(self) -> JupyterEnvironment:
        if not self.path.strip() and not self.modules.strip():
            raise ValueError("at least one of 'path' and 'modules' must be set")
        return self

    @property
    def is_container(self) -> bool:
        """A ``.sif`` path is an Apptainer/Singularity image to run the server inside."""
        return self.path.endswith(".sif")

    @property
    def module_list(self) -> tuple[str, ...]:
        return tuple(self.modules.split())


#: The fields an admin may give a default or a lock (their documented spawn-option names).
PRESET_FIELDS = (
    "runtime",
    "nprocs",
    "memory",
    "gpu_type",
    "ngpus",
    "environment_id",
    "default_url",
    "output",
)


class FieldValues(BaseModel):
    """Values for some of the spawn fields, as the admin writes them: the defaults or the locks
    of ``c.MOSlurmSpawner.field_defaults`` / ``locked_fields``, or of one partition.

    Only the types are checked here. Whether a value is valid Slurm syntax, and fits the
    partition's limits, is the user-options parser's job: :func:`.options.preset_problems` runs
    it on every partition at start-up.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    runtime: str | None = Field(
        default=None, description="As Slurm reads --time: '2:00:00', '1-00:00:00', '90' (minutes)."
    )
    nprocs: int | None = Field(default=None, ge=1)
    memory: str | None = Field(default=None, description="Slurm's size syntax: '4G', '512M'.")
    gpu_type: str | None = Field(default=None, description="A GPU type; '' = any type.")
    ngpus: int | None = Field(default=None, ge=0)
    environment_id: str | None = None
    default_url: str | None = None
    output: bool | None = None

    def given(self) -> dict[str, str | int | bool]:
        """The fields the admin set, in :data:`PRESET_FIELDS` order."""
        return {
            name: getattr(self, name) for name in PRESET_FIELDS if getattr(self, name) is not None
        }


class GpuTypeConfig(BaseModel):
    """One GPU type the user may choose on a partition (a key of ``gpu_types``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    description: str = ""
    #: The most GPUs of this type one job may ask for; None = what one node has, from Slurm.
    max_ngpus: int | None = Field(default=None, ge=1)


class PartitionConfig(BaseModel):
    """What the admin says about one partition. ``None`` limits are read from Slurm."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    architecture: str = ""
    description: str = ""
    gpu: str | None = Field(
        default=None,
        description="A --gres template with {} for the count; '' = no GPUs; None = from Slurm.",
    )
    max_ngpus: int | None = Field(default=None, ge=0)
    max_nprocs: int | None = Field(default=None, ge=1)
    max_runtime: int | None = Field(default=None, ge=1, description="Seconds.")
    # The reference documents `simple` as "True to show in Simple tab" with True in every example.
    simple: bool = True
    jupyter_environments: dict[str, JupyterEnvironment] = Field(min_length=1)
    #: This partition's defaults and locks; each field given replaces the hub's for that field.
    field_defaults: FieldValues = Field(default_factory=FieldValues)
    locked_fields: FieldValues = Field(default_factory=FieldValues)
    groups: tuple[str, ...] | None = Field(
        default=None,
        description="JupyterHub groups whose members are offered it; None = everyone.",
    )
    #: The GPU types the user chooses from, in the order offered; None = from Slurm's GRES
    #: (a choice is offered when the partition's nodes have several types).
    gpu_types: dict[str, GpuTypeConfig] | None = None
    #: Whether "any type" is offered next to the types (Slurm then picks: --gres=gpu:N).
    gpu_any_type: bool = True

    _groups = field_validator("groups", mode="before")(_hub_group_names)

    @field_validator("gpu")
    @classmethod
    def _gres_template(cls, value: str | None) -> str | None:
        if not value:
            return value
        if "{}" not in value:
            raise ValueError("must contain '{}' (a --gres template such as 'gpu:V100:{}')")
        rest = value.replace("{}", "", 1)
        if re.search(r"[\s{}]", rest) or _CONTROL_CHARS_RE.search(rest):
            raise ValueError(
                "must be one --gres word with a single '{}' placeholder, such as 'gpu:V100:{}'"
            )
        return value

    @field_validator("jupyter_environments")
    @classmethod
    def _environment_ids(cls, value: dict[str, JupyterEnvironment]) -> dict:
        for env_id in value:
            if not env_id.strip() or _CONTROL_CHARS_RE.search(env_id):
                raise ValueError(f"environment id {env_id!r} must be a non-empty single line")
        return value

    @field_validator("gpu_types")
    @classmethod
    def _gpu_type_names(
        cls, value: dict[str, GpuTypeConfig] | None
    ) -> dict[str, GpuTypeConfig] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("must not be empty (leave it unset to read the types from Slurm)")
        for name in value:
            if not GPU_TYPE_RE.fullmatch(name):
                raise ValueError(
                    f"GPU type {name!r} is not a Slurm GRES type "
                    "(letters, digits, '_', '.', '+', '-'; no ':', ',' or spaces)"
                )
        return value

    @model_validator(mode="after")
    def _gpu_types_fit(self) -> PartitionConfig:
        if self.gpu_types is None:
            return self
        if self.gpu == "":
            raise ValueError("field 'gpu_types': set, but gpu is '' (the partition offers no GPUs)")
        if self.gpu is not None and self.gpu != "gpu:{}":
            raise ValueError(
                f"field 'gpu_types': cannot be combined with gpu {self.gpu!r}, which fixes "
                "the request; leave gpu unset (or 'gpu:{}') and each type is asked for as "
                "gpu:TYPE:N"
            )
        if self.max_ngpus is not None:
            for name, gpu_type in self.gpu_types.items():
                if gpu_type.max_ngpus is not None and gpu_type.max_ngpus > self.max_ngpus:
                    raise ValueError(
                        f"field 'gpu_types.{name}.max_ngpus': {gpu_type.max_ngpus} is more "
                        f"than the partition's max_ngpus ({self.max_ngpus})"
                    )
        return self

    def gres_for(self, ngpus: int) -> str:
        """The ``--gres`` value for ``ngpus`` GPUs with this partition's template."""
        return (self.gpu or "").replace("{}", str(ngpus))


class PartitionConfigError(ValueError):
    """The partitions configuration is invalid. One line per problem, each naming
    the partition, the field and what was expected."""

    def __init__(self, problems: list[str], setting: str = "partitions") -> None:
        self.problems = problems
        super().__init__(f"invalid c.MOSlurmSpawner.{setting}:\n" + "\n".join(problems))


def load_field_values(raw: Mapping[str, Any] | None, setting: str) -> FieldValues:
    """The hub-wide ``field_defaults`` or ``locked_fields`` (``setting``), checked like a
    partition's: every problem at once, each naming the field."""
    if raw is None:
        return FieldValues()
    if not isinstance(raw, Mapping):
        raise PartitionConfigError([f"must be a dict of fields, not {type(raw).__name__}"], setting)
    try:
        return FieldValues.model_validate(dict(raw))
    except ValidationError as exc:
        problems = [
            _describe({**err, "loc": (setting, *err.get("loc", ()))}) for err in exc.errors()
        ]
        raise PartitionConfigError(problems, setting) from None


def load_partitions(raw: Mapping[str, Any]) -> dict[str, PartitionConfig]:
    """Validate the admin's ``partitions`` dict, reporting every problem at once.

    The order of the admin's dict is kept: the first partition is the form's default.
    """
    if not isinstance(raw, Mapping):
        raise PartitionConfigError([f"must be a dict of partitions, not {type(raw).__name__}"])
    if not raw:
        raise PartitionConfigError(["no partitions configured: at least one is required"])
    partitions: dict[str, PartitionConfig] = {}
    problems: list[str] = []
    for name, fields in raw.items():
        if not isinstance(name, str) or not PARTITION_NAME_RE.fullmatch(name):
            problems.append(
                f"partition {name!r}: the name must be a Slurm partition name "
                "(letters, digits, '_', '.', '-')"
            )
            continue
        if not isinstance(fields, Mapping):
            problems.append(
                f"partition {name!r}: must be a dict of fields, not {type(fields).__name__}"
            )
            continue
        try:
            partitions[name] = PartitionConfig.model_validate(dict(fields))
        except ValidationError as exc:
            problems.extend(f"partition {name!r}: {_describe(err)}" for err in exc.errors())
    if problems:
        raise PartitionConfigError(problems)
    return partitions


# Plain-language versions of pydantic's error types, for an admin reading the hub's log.
_EXPECTED = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "int_type": "must be an integer",
    "string_type": "must be a string",
    "bool_type": "must be True or False",
    "dict_type": "must be a dict",
    "model_type": "must be a dict",
    "too_short": "must not be empty",
}


def _describe(err: Mapping[str, Any]) -> str:
    loc = [str(part) for part in err.get("loc", ())]
    where = f"field {'.'.join(loc)!r}" if loc else "fields"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        allowed = _allowed_fields(loc)
        return f"{where}: unknown field (allowed: {', '.join(allowed)})"
    if kind in ("greater_than_equal", "greater_than"):
        limit = err.get("ctx", {}).get("ge", err.get("ctx", {}).get("gt"))
        return f"{where}: must be at least {limit}, got {err.get('input')!r}"
    if kind == "value_error":
        message = str(err.get("ctx", {}).get("error", err.get("msg", "")))
        # a check across fields names its field in its message
        return f"{where}: {message}" if loc else message
    if kind in _EXPECTED:
        suffix = "" if kind == "missing" else f", got {err.get('input')!r}"
        if kind == "too_short":
            return f"{where}: {_EXPECTED[kind]} (at least one environment is needed)"
        return f"{where}: {_EXPECTED[kind]}{suffix}"
    return f"{where}: {err.get('msg', 'invalid value')}"


def _allowed_fields(loc: list[str]) -> list[str]:
    # An unknown key under jupyter_environments.<id> belongs to an environment, one under
    # field_defaults or locked_fields to those, gpu_types.<type> to a GPU type, else to the
    # partition.
    nested = {
        "jupyter_environments": JupyterEnvironment,
        "gpu_types": GpuTypeConfig,
        "field_defaults": FieldValues,
        "locked_fields": FieldValues,
    }
    model = nested.get(loc[0]) if len(loc) > 1 else None
    return list((model or PartitionConfig).model_fields)
