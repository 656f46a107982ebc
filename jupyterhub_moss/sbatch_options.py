"""Extra ``sbatch`` options typed by a user (or set by the admin as ``req_options``).

The text is split with shell-word rules into separate ``--name[=value]`` items; each becomes its
own ``#SBATCH`` line, so nothing typed here can add a line of its own.

A deny list keeps users from changing, behind the form's back, what the form and the hub control:
identity, working folder, environment, output, the partition and the resources the form checks.
``sbatch`` accepts any unambiguous prefix of a long option (``--parti=debug`` is ``--partition``)
and short aliases (``-p``), so an option is refused when its name is a prefix of (or equal to) a
denied name, and short options are mapped to their long names before the check.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

__all__ = [
    "DEFAULT_DENIED_SBATCH_OPTIONS",
    "SHORT_OPTIONS",
    "SbatchOptionError",
    "normalise_option_names",
    "parse_sbatch_options",
    "split_option",
]

#: sbatch's short options → (long name, whether it takes a value), from ``man sbatch`` (22.05).
SHORT_OPTIONS: dict[str, tuple[str, bool]] = {
    "A": ("account", True),
    "a": ("array", True),
    "B": ("extra-node-info", True),
    "b": ("begin", True),
    "C": ("constraint", True),
    "c": ("cpus-per-task", True),
    "D": ("chdir", True),
    "d": ("dependency", True),
    "e": ("error", True),
    "F": ("nodefile", True),
    "G": ("gpus", True),
    "H": ("hold", False),
    "h": ("help", False),
    "i": ("input", True),
    "J": ("job-name", True),
    "k": ("no-kill", False),
    "L": ("licenses", True),
    "M": ("clusters", True),
    "m": ("distribution", True),
    "N": ("nodes", True),
    "n": ("ntasks", True),
    "O": ("overcommit", False),
    "o": ("output", True),
    "p": ("partition", True),
    "Q": ("quiet", False),
    "q": ("qos", True),
    "S": ("core-spec", True),
    "s": ("oversubscribe", False),
    "t": ("time", True),
    "u": ("usage", False),
    "V": ("version", False),
    "v": ("verbose", False),
    "W": ("wait", False),
    "w": ("nodelist", True),
    "x": ("exclude", True),
}

#: Refused by default. Grouped by why:
DEFAULT_DENIED_SBATCH_OPTIONS: frozenset[str] = frozenset(
    {
        # who runs the job, where, with what environment, and where its output goes
        "--uid",
        "--gid",
        "--chdir",
        "--export",
        "--export-file",
        "--get-user-env",
        "--output",
        "--error",
        "--input",
        "--job-name",
        # what runs: the hub's server, once
        "--wrap",
        "--array",
        "--nodes",
        "--ntasks",
        "--ntasks-per-node",
        "--ntasks-per-core",
        "--ntasks-per-socket",
        "--ntasks-per-gpu",
        "--nodelist",
        "--nodefile",
        # the form's own fields, whose limits the hub checks
        "--partition",
        "--cpus-per-task",
        "--cpus-per-gpu",
        "--tres-per-task",
        "--gres",
        "--gpus",
        "--gpus-per-node",
        "--gpus-per-task",
        "--gpus-per-socket",
        "--time",
        "--mem",
        "--mem-per-cpu",
        "--mem-per-gpu",
        "--reservation",
        # options that change what sbatch itself does: the hub reads its output
        "--clusters",
        "--wait",
        "--test-only",
        "--parsable",
        "--help",
        "--usage",
        "--version",
    }
)

# Lower-case long option names as sbatch spells them.
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_OPTIONS_TEXT = 4096
MAX_OPTIONS = 64


class SbatchOptionError(ValueError):
    """An option the user typed is malformed or not allowed; the message says which and why."""


def normalise_option_names(names: Iterable[str]) -> frozenset[str]:
    """``{"--partition", "-t", "mem"}`` → ``{"partition", "time", "mem"}``: long, no dashes."""
    result = set()
    for raw in names:
        name = raw.strip()
        if len(name) == 2 and name.startswith("-") and name[1] in SHORT_OPTIONS:
            result.add(SHORT_OPTIONS[name[1]][0])
        elif name:
            result.add(name.lstrip("-"))
    return frozenset(result)


def split_option(item: str) -> tuple[str, str | None]:
    """``"--comment=a b"`` → ``("comment", "a b")``; ``"--exclusive"`` → ``("exclusive", None)``."""
    name, sep, value = item[2:].partition("=")
    return name, (value if sep else None)


def parse_sbatch_options(
    text: str,
    *,
    denied: Iterable[str] = DEFAULT_DENIED_SBATCH_OPTIONS,
    allowed: Iterable[str] | None = None,
) -> list[str]:
    """Split ``text`` into ``--name[=value]`` items, refusing denied or malformed options.

    Accepted spellings: ``--name=value``, ``--name value`` (the next word is the value when it
    does not start with ``-``), ``--flag``, ``-X value``, ``-Xvalue`` and ``-X`` for flags. Short
    options come back in their long form. With ``allowed`` set (strict sites), only those exact
    long names are accepted.
    """
    if len(text) > MAX_OPTIONS_TEXT:
        raise SbatchOptionError(f"at most {MAX_OPTIONS_TEXT} characters")
    if _CONTROL_RE.search(text.replace("\t", " ")):
        raise SbatchOptionError("control characters such as newlines are not allowed")
    try:
        words = shlex.split(text)
    except ValueError as exc:  # unbalanced quotes, trailing backslash
        raise SbatchOptionError(f"cannot split into words ({exc})") from None
    items = _pair_words(words)
    if len(items) > MAX_OPTIONS:
        raise SbatchOptionError(f"at most {MAX_OPTIONS} options")
    denied_names = normalise_option_names(denied)
    allowed_names = None if allowed is None else normalise_option_names(allowed)
    for name, value in items:
        _check(name, value, denied_names, allowed_names)
    return [f"--{name}" if value is None else f"--{name}={value}" for name, value in items]


def _pair_words(words: list[str]) -> list[tuple[str, str | None]]:
    items: list[tuple[str, str | None]] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        following = words[index] if index < len(words) else None
        takes_next = following is not None and not following.startswith("-")
        if word.startswith("--"):
            name, value = split_option(word)
            if value is None and takes_next:
                value, index = following, index + 1
        elif word.startswith("-") and len(word) > 1:
            name, value, used_next = _short(word, following)
            index += used_next
        else:
            raise SbatchOptionError(f"{word!r} is not an option (expected --name=value)")
        items.append((name, value))
    return items


def _short(word: str, following: str | None) -> tuple[str, str | None, int]:
    letter = word[1]
    if letter not in SHORT_OPTIONS:
        raise SbatchOptionError(f"unknown short option -{letter}; use the --name=value form")
    name, takes_value = SHORT_OPTIONS[letter]
    if len(word) > 2:
        return name, word[2:], 0  # -Xvalue, as getopt reads it
    if not takes_value:
        return name, None, 0
    if following is None:
        raise SbatchOptionError(f"-{letter} (--{name}) needs a value")
    return name, following, 1


def _check(
    name: str,
    value: str | None,
    denied: frozenset[str],
    allowed: frozenset[str] | None,
) -> None:
    if not _NAME_RE.fullmatch(name):
        raise SbatchOptionError(f"--{name} is not a valid option name (expected --name=value)")
    if value is not None and _CONTROL_RE.search(value):
        raise SbatchOptionError(f"the value of --{name} contains control characters")
    # sbatch resolves unambiguous prefixes: refuse any name that could resolve to a denied one.
    blocked = sorted(d for d in denied if d.startswith(name))
    if blocked:
        shown = name if name in blocked else f"{name} (an abbreviation of --{blocked[0]})"
        raise SbatchOptionError(
            f"--{shown} is not allowed in extra options (the hub or the form's fields set it)"
        )
    if allowed is not None and name not in allowed:
        listed = ", ".join(f"--{a}" for a in sorted(allowed)) or "none"
        raise SbatchOptionError(f"--{name} is not allowed on this hub (allowed: {listed})")
