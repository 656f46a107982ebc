"""What each way in delivers, flattened to ``{name: value}`` for
:func:`~.options.parse_user_options`.

Tornado hands the spawn form and the query string over as lists of bytes; the query string may
also use JupyterHub 6's ``opt-`` prefix. The REST API's ``user_options`` need no flattening.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["flatten_form", "normalise_query"]


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
