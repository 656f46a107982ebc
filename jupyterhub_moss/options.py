"""The one model of a spawn request, and its one parser and validator.

Users reach the spawner three ways: the spawn form, the spawn URL's query string, and the REST
API's ``user_options``. All three are flattened to the same documented names (:data:`FIELD_NAMES`)
and go through :func:`parse_user_options`, so no way in is weaker than another.

Every value that may reach the batch script is checked here against a character set that cannot
break out of its place; the script renderer quotes everything again, as a second wall.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict

from .limits import PartitionLimits
from .sbatch_options import (
    DEFAULT_DENIED_SBATCH_OPTIONS,
    MAX_OPTIONS_TEXT,
    SbatchOptionError,
    admin_locked_options,
    normalise_option_names,
    parse_sbatch_options,
)
from .slurm.times import slurm_duration_seconds

__all__ = [
    "FIELD_NAMES",
    "OptionsPolicy",
    "UserOptions",
    "UserOptionsError",
    "flatten_form",
    "format_runtime",
    "normalise_query",
    "parse_runtime",
    "parse_user_options",
    "salvage_saved_options",
]

#: The documented spawn parameters, the same for form, query string and REST API.
FIELD_NAMES: tuple[str, ...] = (
    "partition",
    "nprocs",
    "ngpus",
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
)


@dataclass(frozen=True)
class OptionsPolicy:
    """The admin's rules for user options (filled from the spawner's traits)."""

    allow_custom_environments: bool = True
    denied_sbatch_options: frozenset[str] = DEFAULT_DENIED_SBATCH_OPTIONS
    #: When set, only these options are accepted in ``options`` (strict sites).
    allowed_sbatch_options: frozenset[str] | None = None
    #: sbatch options the admin sets (``req_account``, ``req_qos``, ``req_reservation``, every
    #: option of ``req_options``): users may not replace them, in ``options`` or (for
    #: ``reservation``) in the reservation field.
    locked_sbatch_options: frozenset[str] = frozenset()
    #: Used when the request names no partition; "" makes ``partition`` required.
    default_partition: str = ""
    #: CPUs when none are requested; capped at the partition's maximum.
    default_nprocs: int = 1
    #: Seconds when no run time is requested; capped at the partition's maximum.
    default_runtime: int = 3600

    @staticmethod
    def admin_locks(options: str, *, account: str, qos: str, reservation: str) -> frozenset[str]:
        """:attr:`locked_sbatch_options` from batchspawner's ``req_options``, ``req_account``,
        ``req_qos`` and ``req_reservation``."""
        return admin_locked_options(options, account=account, qos=qos, reservation=reservation)


class UserOptions(BaseModel):
    """A validated spawn request. Only :func:`parse_user_options` should build one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partition: str
    nprocs: int
    ngpus: int = 0
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
            "nprocs": str(self.nprocs),
            "ngpus": str(self.ngpus),
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


class _Invalid(Exception):
    """Raised by a field check; the message is shown to the user, prefixed by the field."""


# ---------------------------------------------------------------------------------------------
# Flattening what each way in delivers


def _single(value: Any) -> Any:
    """Tornado gives lists; the last value wins, as with a hidden fallback before a checkbox."""
    if isinstance(value, (list, tuple)):
        return value[-1] if value else ""
    return value


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def flatten_form(form: Mapping[str, list[bytes | str] | bytes | str]) -> dict[str, Any]:
    """A Tornado form (``{name: [b"value", ...]}``) → ``{name: "value"}``, last value winning."""
    return {
        str(key): _text(_single(list(v) if isinstance(v, list) else v)) for key, v in form.items()
    }


def normalise_query(args: Mapping[str, Any]) -> dict[str, Any]:
    """Query-string arguments with JupyterHub 6's ``opt-`` prefix stripped.

    Both ``?partition=cpu`` (the documented names) and ``?opt-partition=cpu`` work; when both
    spellings of one name are present, the prefixed one wins.
    """
    plain = {k: _text(_single(v)) for k, v in args.items() if not k.startswith("opt-")}
    prefixed = {k[4:]: _text(_single(v)) for k, v in args.items() if k.startswith("opt-")}
    return {**plain, **prefixed}


# ---------------------------------------------------------------------------------------------
# Slurm value syntax


def parse_runtime(text: str) -> int:
    """A Slurm ``--time`` value a user typed → seconds, with Slurm's own reading of each form.

    ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M`` and ``D-H:M:S``. Note ``"2:00"`` is two
    *minutes* to Slurm, not two hours. The grammar is :func:`slurm_duration_seconds`, with
    field lengths bounded. Raises :class:`ValueError` on anything else.
    """
    try:
        return slurm_duration_seconds(text, bounded=True)
    except ValueError:
        raise ValueError(f"not a Slurm time: {text!r}") from None


def format_runtime(seconds: int) -> str:
    """Seconds → ``HH:MM:SS``, or ``D-HH:MM:SS`` from one day on."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


_MEMORY_RE = re.compile(r"^(?P<amount>[0-9]{1,12}) *(?P<unit>[KMGT])?B?$", re.IGNORECASE | re.ASCII)
_MB_PER_UNIT = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


def _normalise_memory(text: str) -> tuple[str, float]:
    match = _MEMORY_RE.fullmatch(text.strip())
    if not match:
        raise ValueError(text)
    amount = int(match["amount"])
    unit = (match["unit"] or "M").upper()
    normalised = "0" if amount == 0 else f"{amount}{unit}"
    return normalised, amount * _MB_PER_UNIT[unit]


# ---------------------------------------------------------------------------------------------
# Field checks. Each takes the raw value and returns the clean one or raises _Invalid.


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_RESERVATION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# URL path characters that need no quoting anywhere: no quotes, `;`, `$`, backticks, spaces.
_URL_RE = re.compile(r"^/[A-Za-z0-9._~%/@:+,=?&!*-]*$")
_PATH_CHARS_RE = re.compile(r"^[A-Za-z0-9._~/+@%,:=-]*$")
_ROOT_DIR_RE = re.compile(r"^[A-Za-z0-9._~/+@%,:= -]*$")  # spaces allowed: quoted in the script
_MODULE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+/@:-]*$")
_BOOL_WORDS = {
    "true": True,
    "on": True,
    "1": True,
    "yes": True,
    "false": False,
    "off": False,
    "0": False,
    "no": False,
    "": False,
}
_MAX_TEXT = 1024


def _as_text(value: Any, *, limit: int = _MAX_TEXT) -> str:
    """The value as text with surrounding spaces removed; control characters refused outright
    (a stray newline is never silently trimmed into validity)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Invalid(f"expected text, got {type(value).__name__}")
    text = str(value)
    if _CONTROL_RE.search(text.replace("\t", " ")):
        raise _Invalid("control characters such as newlines are not allowed")
    text = text.strip(" \t")
    if len(text) > limit:
        raise _Invalid(f"at most {limit} characters")
    return text


def _whole_number(value: Any) -> int | None:
    """An int from an int or a string of digits; None for "not set"."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Invalid(f"expected a whole number, got {type(value).__name__}")
    if isinstance(value, int):
        return value
    text = _as_text(value)
    if not text:
        return None
    if not re.fullmatch(r"-?[0-9]{1,9}", text):
        raise _Invalid(f"expected a whole number, got {_shown(text)}")
    return int(text)


def _shown(text: str, limit: int = 40) -> str:
    """A bad value, echoed safely: repr escapes control characters; long values are cut."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _no_dot_dot(path: str) -> None:
    if ".." in path.split("/"):
        raise _Invalid("must not contain '..' segments")


def _check_partition(value: Any, limits: Mapping[str, PartitionLimits], policy: OptionsPolicy):
    name = _as_text(value) or policy.default_partition
    if not name:
        raise _Invalid(f"required; one of: {', '.join(limits) or 'none configured'}")
    if name not in limits:
        raise _Invalid(f"unknown partition {_shown(name)}; one of: {', '.join(limits)}")
    return limits[name]


def _check_nprocs(value: Any, part: PartitionLimits | None, policy: OptionsPolicy) -> int:
    nprocs = _whole_number(value)
    if part is None:
        return nprocs or 1
    if nprocs is None:
        return max(1, min(policy.default_nprocs, part.max_nprocs))
    if nprocs < 1:
        raise _Invalid(f"at least 1 CPU (up to {part.max_nprocs} on {part.name})")
    if nprocs > part.max_nprocs:
        raise _Invalid(f"at most {part.max_nprocs} CPUs on {part.name}")
    return nprocs


def _check_ngpus(value: Any, part: PartitionLimits | None) -> int:
    ngpus = _whole_number(value) or 0
    if ngpus < 0:
        raise _Invalid("cannot be negative")
    if part is None or ngpus == 0:
        return ngpus
    if not part.has_gpus:
        raise _Invalid(f"{part.name} has no GPUs; use 0")
    if ngpus > part.max_ngpus:
        raise _Invalid(f"at most {part.max_ngpus} GPUs on {part.name}")
    return ngpus


def _check_memory(value: Any, part: PartitionLimits | None) -> str:
    text = _as_text(value)
    if not text:
        return ""
    try:
        normalised, megabytes = _normalise_memory(text)
    except ValueError:
        raise _Invalid(
            f"expected a Slurm size such as 512M or 16G (0 = all of the node's), got {_shown(text)}"
        ) from None
    if part is not None and part.max_memory_mb is not None and megabytes > part.max_memory_mb:
        raise _Invalid(f"at most {part.max_memory_mb}M on {part.name}")
    return normalised


def _check_runtime(value: Any, part: PartitionLimits | None, policy: OptionsPolicy) -> str:
    text = _as_text(value)
    limit = part.max_runtime if part else None
    if not text:
        seconds = policy.default_runtime if limit is None else min(policy.default_runtime, limit)
        return format_runtime(seconds)
    try:
        seconds = parse_runtime(text)
    except ValueError:
        raise _Invalid(
            "expected hh:mm:ss, d-hh:mm:ss or minutes (Slurm reads 2:00 as 2 minutes), "
            f"got {_shown(text)}"
        ) from None
    if seconds <= 0:
        raise _Invalid("must be longer than 0")
    if limit is not None and seconds > limit:
        raise _Invalid(f"at most {format_runtime(limit)} on {part.name}")
    return format_runtime(seconds)


def _check_reservation(value: Any, policy: OptionsPolicy) -> str:
    text = _as_text(value)
    if text and not _RESERVATION_RE.fullmatch(text):
        raise _Invalid(
            f"not a Slurm reservation name (letters, digits, '_', '.', '-'): {_shown(text)}"
        )
    if text and "reservation" in normalise_option_names(policy.locked_sbatch_options):
        raise _Invalid("set by this hub's administrator; leave it empty")
    return text


def _check_options(value: Any, policy: OptionsPolicy) -> list[str]:
    text = _as_text(value, limit=MAX_OPTIONS_TEXT)
    try:
        return parse_sbatch_options(
            text,
            denied=policy.denied_sbatch_options,
            allowed=policy.allowed_sbatch_options,
            locked=policy.locked_sbatch_options,
        )
    except SbatchOptionError as exc:
        raise _Invalid(str(exc)) from None


def _check_output(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _as_text(value).lower()
    if text not in _BOOL_WORDS:
        raise _Invalid(f"expected true or false, got {_shown(text)}")
    return _BOOL_WORDS[text]


def _check_default_url(value: Any) -> str:
    text = _as_text(value)
    if not text:
        return ""
    if not text.startswith("/") or text.startswith("//") or not _URL_RE.fullmatch(text):
        raise _Invalid(
            "expected a path on your server starting with '/', such as /lab "
            f"(no scheme, host, spaces or quotes), got {_shown(text)}"
        )
    path = _decoded_url_path(text.split("?", 1)[0])
    if "//" in path or "\\" in path:
        raise _Invalid(f"must not contain '//' or '\\', even encoded, got {_shown(text)}")
    if _URL_CONTROL_RE.search(path):
        raise _Invalid(f"must not contain control characters, even encoded, got {_shown(text)}")
    _no_dot_dot(path)
    return text


#: Percent-encodings of what steers a path: '.', '/' and '\'. A server or proxy that decodes
#: once more than we do would read ``%2e%2e`` as ``..`` and ``%2f%2f`` as ``//`` (another host).
_ENCODED_PATH_CHAR_RE = re.compile(r"%(?:2e|2f|5c)", re.IGNORECASE)
_URL_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_MAX_URL_DECODES = 4


def _decoded_url_path(path: str) -> str:
    """``path`` percent-decoded until it no longer changes. An encoded '.', '/' or '\\' at any
    depth (``%2e``, ``%252e``...) is refused, as is text encoded more than a few times over."""
    for _ in range(_MAX_URL_DECODES):
        if _ENCODED_PATH_CHAR_RE.search(path):
            raise _Invalid("must not encode '.', '/' or '\\' (%2e, %2f, %5c), at any depth")
        decoded = unquote(path)
        if decoded == path:
            return path
        path = decoded
    raise _Invalid("is percent-encoded too many times over")


def _check_root_dir(value: Any) -> str:
    text = _as_text(value)
    if not text:
        return ""
    if not (text.startswith("/") or text == "~" or text.startswith("~/")):
        raise _Invalid(f"expected an absolute path or one starting with ~/, got {_shown(text)}")
    if not _ROOT_DIR_RE.fullmatch(text) or "~" in text[1:]:
        raise _Invalid(
            "letters, digits, spaces and . _ - / + @ % , : = only (no quotes, $, ; or newlines)"
        )
    _no_dot_dot(text)
    return text


def _check_environment_path(value: Any) -> str:
    text = _as_text(value)
    if not text:
        return ""
    if not text.startswith("/"):
        raise _Invalid(f"expected an absolute path, got {_shown(text)}")
    if not _PATH_CHARS_RE.fullmatch(text):
        raise _Invalid("no whitespace, quotes or shell characters allowed")
    _no_dot_dot(text)
    return text


def _check_environment_modules(value: Any) -> str:
    text = _as_text(value)
    modules = text.split()
    for module in modules:
        if not _MODULE_RE.fullmatch(module):
            raise _Invalid(
                f"{_shown(module)} is not a module name (letters, digits and _ . + / @ : -)"
            )
    return " ".join(modules)


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
        except _Invalid as exc:
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

    part = fields.check("partition", _check_partition, limits, policy)
    values: dict[str, Any] = {"partition": part.name if part else ""}
    values["nprocs"] = fields.check("nprocs", _check_nprocs, part, policy, default=1)
    values["ngpus"] = fields.check("ngpus", _check_ngpus, part, default=0)
    values["memory"] = fields.check("memory", _check_memory, part, default="")
    values["runtime"] = fields.check("runtime", _check_runtime, part, policy, default="01:00:00")
    values["reservation"] = fields.check("reservation", _check_reservation, policy, default="")
    values["options"] = fields.check("options", _check_options, policy, default=[])
    values["output"] = fields.check("output", _check_output, default=False)
    values["default_url"] = fields.check("default_url", _check_default_url, default="")
    values["root_dir"] = fields.check("root_dir", _check_root_dir, default="")
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
    path = fields.check("environment_path", _check_environment_path, default="")
    modules = fields.check("environment_modules", _check_environment_modules, default="")
    custom = bool(path or modules)
    if custom and not policy.allow_custom_environments:
        for name in ("environment_path", "environment_modules"):
            if fields.get(name):
                fields.errors[name] = f"{name}: custom environments are disabled on this hub"
    env_id = fields.check("environment_id", _as_text, default="")
    if part is not None and env_id and env_id not in part.environments:
        fields.errors["environment_id"] = (
            f"environment_id: {part.name} has no environment {_shown(env_id)}; "
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
