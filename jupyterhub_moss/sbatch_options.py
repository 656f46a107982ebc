"""Extra ``sbatch`` options typed by a user (or set by the admin as ``req_options``).

The text is split with shell-word rules into separate ``--name[=value]`` items; each becomes its
own ``#SBATCH`` line, so nothing typed here can add a line of its own.

Each name is resolved the way sbatch's ``getopt_long`` would resolve it, against Slurm's own
option table (:mod:`.slurm_option_table`): an exact name, an unambiguous prefix (``--parti`` is
``--partition``, ``--tasks`` is ``--tasks-per-node``), an alias (``--tasks-per-node`` is
``--ntasks-per-node``) or a short option (``-p``). A name is refused when any option it could
stand for is denied, so the deny list cannot be walked around by spelling. Items come back with
the full main name (``--ntasks-per-node=2``), which reads the same in every supported sbatch.

Values follow the table too: an option that needs one must have one (a bare ``--comment`` would
make sbatch swallow the next ``#SBATCH`` line as its value), a flag must not.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from .slurm_option_table import (
    SBATCH_OPTIONS,
    SbatchOption,
    canonical_name,
    denied_by_default,
    options_matching,
    short_option,
)

__all__ = [
    "DEFAULT_DENIED_SBATCH_OPTIONS",
    "MAX_OPTIONS",
    "MAX_OPTIONS_TEXT",
    "SHORT_OPTIONS",
    "SbatchOptionError",
    "admin_locked_options",
    "normalise_option_names",
    "option_names",
    "parse_sbatch_options",
    "split_option",
]

#: sbatch's short options → (main long name, whether it takes a value), from Slurm's table.
SHORT_OPTIONS: dict[str, tuple[str, bool]] = {
    o.short: (o.canonical, o.value == "required") for o in SBATCH_OPTIONS if o.short
}

#: Refused by default: every option of Slurm's table with a ``denied`` reason, aliases included.
DEFAULT_DENIED_SBATCH_OPTIONS: frozenset[str] = denied_by_default()

# Lower-case long option names as sbatch spells them.
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_OPTIONS_TEXT = 4096
MAX_OPTIONS = 64


class SbatchOptionError(ValueError):
    """An option the user typed is malformed or not allowed; the message says which and why."""


def normalise_option_names(names: Iterable[str]) -> frozenset[str]:
    """``{"--partition", "-t", "--tasks-per-node"}`` → ``{"partition", "time", "ntasks-per-node"}``.

    Main long names without dashes; names the table does not know are kept as given.
    """
    return frozenset(canonical_name(raw) for raw in names if raw.strip().lstrip("-"))


def split_option(item: str) -> tuple[str, str | None]:
    """``"--comment=a b"`` → ``("comment", "a b")``; ``"--exclusive"`` → ``("exclusive", None)``."""
    name, sep, value = item[2:].partition("=")
    return name, (value if sep else None)


def option_names(items: Iterable[str]) -> frozenset[str]:
    """The main long names of already parsed ``--name[=value]`` items."""
    return frozenset(canonical_name(split_option(item)[0]) for item in items)


@dataclass(frozen=True)
class _Rules:
    denied: frozenset[str]
    allowed: frozenset[str] | None
    locked: frozenset[str]
    #: Admin text: names the table does not know pass through (a newer sbatch's options).
    trusted: bool


def parse_sbatch_options(
    text: str,
    *,
    denied: Iterable[str] = DEFAULT_DENIED_SBATCH_OPTIONS,
    allowed: Iterable[str] | None = None,
    locked: Iterable[str] = (),
    trusted: bool = False,
) -> list[str]:
    """Split ``text`` into ``--name[=value]`` items, refusing denied or malformed options.

    Accepted spellings: ``--name=value``, ``--name value`` (for options that need a value; the
    next word must not start with ``-``), ``--flag``, ``-X value``, ``-Xvalue`` and ``-X`` for
    flags. With ``allowed`` set (strict sites), only those options are accepted. ``locked`` names
    options the admin sets (``req_account``, ``req_options``...): users may not replace them.
    ``trusted`` (the admin's own ``req_options``) lets names unknown to the table through.
    """
    if len(text) > MAX_OPTIONS_TEXT:
        raise SbatchOptionError(f"at most {MAX_OPTIONS_TEXT} characters")
    if _CONTROL_RE.search(text.replace("\t", " ")):
        raise SbatchOptionError("control characters such as newlines are not allowed")
    try:
        words = shlex.split(text)
    except ValueError as exc:  # unbalanced quotes, trailing backslash
        raise SbatchOptionError(f"cannot split into words ({exc})") from None
    rules = _Rules(
        denied=normalise_option_names(denied),
        allowed=None if allowed is None else normalise_option_names(allowed),
        locked=normalise_option_names(locked),
        trusted=trusted,
    )
    items = _read_items(words, rules)
    if len(items) > MAX_OPTIONS:
        raise SbatchOptionError(f"at most {MAX_OPTIONS} options")
    return [f"--{name}" if value is None else f"--{name}={value}" for name, value in items]


def _read_items(words: list[str], rules: _Rules) -> list[tuple[str, str | None]]:
    items: list[tuple[str, str | None]] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        following = words[index] if index < len(words) else None
        if word.startswith("--"):
            name, value = split_option(word)
            if not _NAME_RE.fullmatch(name):
                raise SbatchOptionError(
                    f"--{name} is not a valid option name (expected --name=value)"
                )
            option = _resolve_long(name, rules)
            shown = f"--{name}"
        elif word.startswith("-") and len(word) > 1:
            option = short_option(word[1])
            if option is None:
                raise SbatchOptionError(
                    f"unknown short option -{word[1]}; use the --name=value form"
                )
            shown = f"-{word[1]} (--{option.canonical})"
            _check_allowed(option.canonical, shown, rules)
            name, value = option.name, (word[2:] or None)
            if value is not None and option.value == "none":
                raise SbatchOptionError(f"{word!r}: give one short option per word")
        else:
            raise SbatchOptionError(f"{word!r} is not an option (expected --name=value)")
        if option is None:  # trusted text naming an option the table does not know
            if value is None and following is not None and not following.startswith("-"):
                value, index = following, index + 1
            items.append((name, value))
            continue
        if value is None and option.value == "required":
            if following is None or following.startswith("-"):
                raise SbatchOptionError(f"{shown} needs a value (--{option.canonical}=VALUE)")
            value, index = following, index + 1
        if value is not None and option.value == "none":
            raise SbatchOptionError(f"{shown} takes no value")
        if value == "" and option.value != "none":
            raise SbatchOptionError(f"{shown} needs a value (--{option.canonical}=VALUE)")
        if value is not None and _CONTROL_RE.search(value):
            raise SbatchOptionError(f"the value of {shown} contains control characters")
        items.append((option.canonical, value))
    return items


def _resolve_long(name: str, rules: _Rules) -> SbatchOption | None:
    """The option sbatch would take ``--name`` for, after every check; None for trusted text
    naming an option the table does not know."""
    candidates = options_matching(name)
    # Admin-added names the table does not know (a newer sbatch): refuse their prefixes too.
    unknown_denied = sorted(d for d in rules.denied if d.startswith(name) and not _known(d))
    blocked = sorted({o.canonical for o in candidates if o.canonical in rules.denied})
    blocked += unknown_denied
    if blocked:
        exact = candidates[0] if len(candidates) == 1 and candidates[0].name == name else None
        if exact is not None:
            shown = f"--{name} (--{exact.same_as})" if exact.same_as else f"--{name}"
        elif name in blocked:
            shown = f"--{name}"
        else:
            shown = f"--{name} (an abbreviation of --{blocked[0]})"
        raise SbatchOptionError(
            f"{shown} is not allowed in extra options (the hub or the form's fields set it)"
        )
    if not candidates:
        if rules.trusted or (rules.allowed is not None and name in rules.allowed):
            _check_allowed(name, f"--{name}", rules)
            return None
        raise SbatchOptionError(f"--{name} is not an sbatch option")
    canonicals = sorted({o.canonical for o in candidates})
    if len(canonicals) > 1:
        listed = ", ".join(f"--{c}" for c in canonicals)
        raise SbatchOptionError(f"--{name} is ambiguous (could be {listed}); write it in full")
    option = candidates[0]
    shown = f"--{name}" if name == option.canonical else f"--{name} (--{option.canonical})"
    _check_allowed(option.canonical, shown, rules)
    return option


def _known(name: str) -> bool:
    return any(o.name == name for o in SBATCH_OPTIONS)


def _check_allowed(canonical: str, shown: str, rules: _Rules) -> None:
    if canonical in rules.denied:
        raise SbatchOptionError(
            f"{shown} is not allowed in extra options (the hub or the form's fields set it)"
        )
    if canonical in rules.locked:
        raise SbatchOptionError(
            f"{shown} is set by this hub's administrator and cannot be changed here"
        )
    if rules.allowed is not None and canonical not in rules.allowed:
        listed = ", ".join(f"--{a}" for a in sorted(rules.allowed)) or "none"
        raise SbatchOptionError(f"{shown} is not allowed on this hub (allowed: {listed})")


def admin_locked_options(
    options: str, *, account: str = "", qos: str = "", reservation: str = ""
) -> frozenset[str]:
    """Main names of what the admin sets: ``req_options``' options, and ``account``, ``qos``,
    ``reservation`` when given. Users may not replace any of them."""
    names = set(option_names(parse_sbatch_options(options, denied=(), trusted=True)))
    names.update(
        n for n, v in (("account", account), ("qos", qos), ("reservation", reservation)) if v
    )
    return frozenset(names)
