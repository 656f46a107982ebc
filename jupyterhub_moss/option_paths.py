"""What the fields that name a place accept: the URL the server opens (``default_url``), its
root directory (``root_dir``), and a custom environment (``environment_path``,
``environment_modules``).

Each reaches the batch script or the browser, so each is held to characters that cannot break
out of their place, and ``..`` is refused; the script renderer quotes everything again, as a
second wall. Each ``check_*`` returns the clean value or raises
:class:`~.option_fields.InvalidField`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from .option_fields import InvalidField, as_text, refuse_dot_dot, shown_value

__all__ = [
    "check_default_url",
    "check_environment_modules",
    "check_environment_path",
    "check_root_dir",
]

# URL path characters that need no quoting anywhere: no quotes, `;`, `$`, backticks, spaces.
_URL_RE = re.compile(r"^/[A-Za-z0-9._~%/@:+,=?&!*-]*$")
_PATH_CHARS_RE = re.compile(r"^[A-Za-z0-9._~/+@%,:=-]*$")
_ROOT_DIR_RE = re.compile(r"^[A-Za-z0-9._~/+@%,:= -]*$")  # spaces allowed: quoted in the script
_MODULE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+/@:-]*$")


def check_default_url(value: Any) -> str:
    text = as_text(value)
    if not text:
        return ""
    if not text.startswith("/") or text.startswith("//") or not _URL_RE.fullmatch(text):
        raise InvalidField(
            "expected a path on your server starting with '/', such as /lab "
            f"(no scheme, host, spaces or quotes), got {shown_value(text)}"
        )
    path = _decoded_url_path(text.split("?", 1)[0])
    if "//" in path or "\\" in path:
        raise InvalidField(f"must not contain '//' or '\\', even encoded, got {shown_value(text)}")
    if _URL_CONTROL_RE.search(path):
        raise InvalidField(
            f"must not contain control characters, even encoded, got {shown_value(text)}"
        )
    refuse_dot_dot(path)
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
            raise InvalidField("must not encode '.', '/' or '\\' (%2e, %2f, %5c), at any depth")
        decoded = unquote(path)
        if decoded == path:
            return path
        path = decoded
    raise InvalidField("is percent-encoded too many times over")


def check_root_dir(value: Any) -> str:
    text = as_text(value)
    if not text:
        return ""
    if not (text.startswith("/") or text == "~" or text.startswith("~/")):
        raise InvalidField(
            f"expected an absolute path or one starting with ~/, got {shown_value(text)}"
        )
    if not _ROOT_DIR_RE.fullmatch(text) or "~" in text[1:]:
        raise InvalidField(
            "letters, digits, spaces and . _ - / + @ % , : = only (no quotes, $, ; or newlines)"
        )
    refuse_dot_dot(text)
    return text


def check_environment_path(value: Any) -> str:
    text = as_text(value)
    if not text:
        return ""
    if not text.startswith("/"):
        raise InvalidField(f"expected an absolute path, got {shown_value(text)}")
    if not _PATH_CHARS_RE.fullmatch(text):
        raise InvalidField("no whitespace, quotes or shell characters allowed")
    refuse_dot_dot(text)
    return text


def check_environment_modules(value: Any) -> str:
    text = as_text(value)
    modules = text.split()
    for module in modules:
        if not _MODULE_RE.fullmatch(module):
            raise InvalidField(
                f"{shown_value(module)} is not a module name (letters, digits and _ . + / @ : -)"
            )
    return " ".join(modules)
