"""A model of how sbatch 22.05 reads one ``#SBATCH`` line, to check our quoting against."""

from __future__ import annotations


def sbatch_arguments(line: str) -> list[str]:
    """The arguments sbatch 22.05 reads from one ``#SBATCH`` line (a model of its parser:
    whitespace splits, ``#`` ends the line, single or double quotes group, backslash escapes)."""
    assert line.startswith("#SBATCH ")
    arguments, current, quote, escaped, started = [], [], "", False, False
    for char in line[len("#SBATCH ") :]:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = started = True
        elif quote:
            if char == quote:
                quote = ""
            else:
                current.append(char)
        elif char in "\"'":
            quote, started = char, True
        elif char == "#":
            break
        elif char.isspace():
            if started:
                arguments.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
            started = True
    assert not quote, f"unmatched quote in {line!r}"
    if started:
        arguments.append("".join(current))
    return arguments
