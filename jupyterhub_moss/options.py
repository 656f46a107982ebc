"""The one model of a spawn request, and its one parser and validator: the public face of the
user options.

Users reach the spawner three ways: the spawn form, the spawn URL's query string, and the REST
API's ``user_options``. All three are flattened to the same documented names (:data:`FIELD_NAMES`,
see :mod:`.request_values`) and go through :func:`parse_user_options`, so no way in is weaker than
another. What each field accepts is in :mod:`.option_fields` and :mod:`.option_paths`, and the
admin's rules they apply in :mod:`.option_policy`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from .limits import PartitionLimits, charged_limits
from .option_fields import (
    InvalidField,
    as_text,
    check_account,
    check_gpu_type,
    check_memory,
    check_ngpus,
    check_nprocs,
    check_options,
    check_output,
    check_partition,
    check_qos,
    check_reservation,
    check_runtime,
    parse_runtime,
    shown_value,
)
from .option_paths import (
    check_default_url,
    check_environment_modules,
    check_environment_path,
    check_root_dir,
)
from .option_policy import OptionsPolicy
from .option_presets import apply_presets, locked_value_text

__all__ = [
    "FIELD_NAMES",
    "OptionsPolicy",
    "UserOptions",
    "UserOptionsError",
    "locked_value_text",
    "parse_user_options",
    "salvage_saved_options",
]
# Moved to .request_values and .option_fields; importable from here only until form.py and
# spawner.py import them from there (issue 12).

#: The documented spawn parameters, the same for form, query string and REST API.
FIELD_NAMES: tuple[str, ...] = (
    "partition",
    "nprocs",
    "ngpus",
    "gpu_type",
    "memory",
    "runtime",
    "reservation",
    "options",
    "output",
    "default_url",
    "root_dir",
    "environment_id",
    "environment_path",
    "environment_modules",
    "account",
    "qos",
)


class UserOptions(BaseModel):
    """A validated spawn request. Only :func:`parse_user_options` should build one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partition: str
    account: str = ""  # "" = none chosen: Slurm charges the user's default account
    qos: str = ""  # "" = none chosen: the association's default QOS
    nprocs: int
    ngpus: int = 0
    gpu_type: str = ""  # "" = any type (or no type choice on the partition)
    memory: str = ""  # Slurm syntax, normalised: "512M", "16G", "0" (= all of the node's)
    runtime: str  # normalised "HH:MM:SS" or "D-HH:MM:SS"
    reservation: str = ""
    options: list[str] = []  # separate "--name[=value]" items, checked against the policy
    output: bool = False
    default_url: str = ""
    root_dir: str = ""
    environment_id: str = ""  # the chosen environment; "" when a custom one is given
    environment_path: str = ""
    environment_modules: str = ""

    @property
    def runtime_seconds(self) -> int:
        return parse_runtime(self.runtime)

    @property
    def is_custom_environment(self) -> bool:
        return bool(self.environment_path or self.environment_modules)

    def to_saved(self) -> dict[str, str]:
        """The form JupyterHub stores in ``user_options``: documented names, string values.

        ``parse_user_options(o.to_saved(), ...)`` gives ``o`` back.
        """
        return {
            "partition": self.partition,
            "account": self.account,
            "qos": self.qos,
            "nprocs": str(self.nprocs),
            "ngpus": str(self.ngpus),
            "gpu_type": self.gpu_type,
            "memory": self.memory,
            "runtime": self.runtime,
            "reservation": self.reservation,
            "options": shlex.join(self.options),
            "output": "true" if self.output else "false",
            "default_url": self.default_url,
            "root_dir": self.root_dir,
            "environment_id": self.environment_id,
            "environment_path": self.environment_path,
            "environment_modules": self.environment_modules,
        }


class UserOptionsError(ValueError):
    """A rejected request. ``errors`` maps each bad field to a message naming it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("\n".join(self.errors.values()))


# ---------------------------------------------------------------------------------------------
# The parser


class _Collector:
    """Runs field checks, keeping every error so the user sees them all at once."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.errors: dict[str, str] = {}

    def get(self, name: str) -> Any:
        value = self.raw.get(name, "")
        if isinstance(value, (list, tuple)):
            if len(value) > 1:
                self.errors[name] = f"{name}: expected one value, got {len(value)}"
                return ""
            value = value[0] if value else ""
        return "" if value is None else value

    def check(self, name: str, check: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        if name in self.errors:
            return default
        try:
            return check(self.get(name), *args)
        except InvalidField as exc:
            self.errors[name] = f"{name}: {exc}"
            return default


def parse_user_options(
    raw: Mapping[str, Any],
    limits: Mapping[str, PartitionLimits],
    policy: OptionsPolicy | None = None,
) -> UserOptions:
    """Validate one spawn request from any way in; raise :class:`UserOptionsError` if it is bad.

    ``raw`` uses the documented names (:data:`FIELD_NAMES`) with string values (numbers are
    accepted for ``nprocs``/``ngpus``, booleans for ``output``, one-item lists for anything). An
    empty string or a missing key means "not set". The caller strips transport keys such as
    ``_xsrf``; any other unknown key is an error naming it, so a typo is never silently ignored.
    """
    policy = policy or OptionsPolicy()
    fields = _Collector(raw)
    for key in raw:
        if key not in FIELD_NAMES:
            fields.errors[str(key)] = f"{key}: unknown option; known: {', '.join(FIELD_NAMES)}"

    part = fields.check("partition", check_partition, limits, policy)
    values: dict[str, Any] = {"partition": part.name if part else ""}
    values["account"] = fields.check("account", check_account, part, policy, default="")
    values["qos"] = fields.check("qos", check_qos, part, values["account"], policy, default="")
    if part is not None:
        # every limit below is the tightest of the partition's, the QOS's and the account's
        part = charged_limits(part, values["account"], values["qos"])
        filled, refused = apply_presets(fields.raw, part, fields.get)
        fields.raw = filled
        for name, message in refused.items():
            fields.errors.setdefault(name, message)
    values["nprocs"] = fields.check("nprocs", check_nprocs, part, policy, default=1)
    # the count's limit is that of the chosen type
    values["gpu_type"] = fields.check("gpu_type", check_gpu_type, part, default="")
    values["ngpus"] = fields.check("ngpus", check_ngpus, part, values["gpu_type"], default=0)
    values["memory"] = fields.check("memory", check_memory, part, default="")
    values["runtime"] = fields.check("runtime", check_runtime, part, policy, default="01:00:00")
    values["reservation"] = fields.check("reservation", check_reservation, policy, default="")
    values["options"] = fields.check("options", check_options, policy, default=[])
    values["output"] = fields.check("output", check_output, default=False)
    values["default_url"] = fields.check("default_url", check_default_url, default="")
    values["root_dir"] = fields.check("root_dir", check_root_dir, default="")
    values.update(_environment(fields, part, policy))

    if fields.errors:
        raise UserOptionsError(fields.errors)
    return UserOptions(**values)


def _environment(
    fields: _Collector, part: PartitionLimits | None, policy: OptionsPolicy
) -> dict[str, str]:
    """The admin's environment by id, or a custom one (path and/or modules) when allowed.

    A custom environment wins over ``environment_id``, which is still checked when given.
    """
    path = fields.check("environment_path", check_environment_path, default="")
    modules = fields.check("environment_modules", check_environment_modules, default="")
    custom = bool(path or modules)
    if custom and not policy.allow_custom_environments:
        for name in ("environment_path", "environment_modules"):
            if fields.get(name):
                fields.errors[name] = f"{name}: custom environments are disabled on this hub"
    env_id = fields.check("environment_id", as_text, default="")
    if custom and part is not None and part.presets.is_locked("environment_id"):
        for name in ("environment_path", "environment_modules"):
            if fields.get(name) and name not in fields.errors:
                fields.errors[name] = (
                    f"{name}: the environment is set by this hub's administrators"
                    f"{part.presets.where('environment_id')}; leave it empty"
                )
    if part is not None and env_id and env_id not in part.environments:
        refusal = part.environment_refusal(env_id)
        if refusal is not None:
            fields.errors["environment_id"] = (
                f"environment_id: you may not use {shown_value(env_id)} on {part.name}: "
                f"{refusal}; yours: {', '.join(part.environments)}"
            )
        else:
            fields.errors["environment_id"] = (
                f"environment_id: {part.name} has no environment {shown_value(env_id)}; "
                f"one of: {', '.join(part.environments)}"
            )
    if custom:
        env_id = ""
    elif not env_id and part is not None:
        env_id = part.default_environment_id
    return {"environment_id": env_id, "environment_path": path, "environment_modules": modules}


def salvage_saved_options(
    saved: Mapping[str, Any] | None,
    limits: Mapping[str, PartitionLimits],
    policy: OptionsPolicy | None = None,
) -> dict[str, str]:
    """Saved ``user_options`` cleaned against today's config, for pre-filling the form.

    Fields that are no longer valid (a partition removed, a limit lowered, a value set to anything
    through the REST API) are dropped, and the rest is kept. Returns ``{}`` when nothing usable
    is left, e.g. the saved partition is gone.
    """
    if not saved or not isinstance(saved, Mapping):
        return {}
    current = {k: v for k, v in saved.items() if k in FIELD_NAMES}
    for _ in range(len(FIELD_NAMES) + 1):
        try:
            return parse_user_options(current, limits, policy).to_saved()
        except UserOptionsError as exc:
            if "partition" in exc.errors:
                return {}
            for name in exc.errors:
                current.pop(name, None)
    return {}
