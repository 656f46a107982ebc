"""``default_url``: a path on the user's own server, however it is encoded.

jupyterhub-singleuser redirects to it, and a proxy or server that decodes once more than we do
would read ``%2e%2e`` as ``..`` and ``%2f%2f`` as ``//`` (another host): every encoded form of
'.', '/' and '\\' is refused, at any depth, and so is what decodes to '..', '//' or a control.
"""

from __future__ import annotations

import pytest

from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.limits import merge_partition_limits
from jupyterhub_moss.options import OptionsPolicy, UserOptionsError, parse_user_options

pytestmark = pytest.mark.unit

LIMITS = merge_partition_limits(
    load_partitions(
        {
            "cpu": {
                "max_nprocs": 4,
                "max_runtime": 3600,
                "gpu": "",
                "jupyter_environments": {"default": {"path": "/opt/env/bin/"}},
            }
        }
    ),
    None,
)
POLICY = OptionsPolicy(default_partition="cpu")


def default_url_error(value: str) -> str | None:
    try:
        parse_user_options({"default_url": value}, LIMITS, POLICY)
    except UserOptionsError as error:
        return error.errors.get("default_url")
    return None


@pytest.mark.parametrize(
    "value",
    [
        "/lab",
        "/lab?reset",
        "/lab/tree/work/analysis.ipynb",
        "/lab/tree/my%20notes.ipynb",  # an encoded space is not a path separator
        "/lab/tree/r%C3%A9sum%C3%A9.ipynb",
        "/tree/a.b/c..d",  # dots inside names are fine
        "/lab?next=%2Ftree",  # the query is not part of the path
    ],
)
def test_plain_paths_on_the_server_are_accepted(value):
    assert default_url_error(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "/%2e%2e/hub/admin",
        "/%2E%2E/hub/admin",
        "/.%2e/hub",
        "/%2e./hub",
        "/lab/%2e%2e%2f%2e%2e%2fhub",
        "/%2f%2fevil.example",
        "/%2F%2Fevil.example",
        "/%5cevil.example",
        "/%5C%5Cevil.example",
        "/%252e%252e/hub",  # double-encoded
        "/%25252e%25252e/hub",  # triple-encoded
        "/%252f%252fevil.example",
        "/%255cevil.example",
        "/lab/%2e",
        "/%25%32%65%25%32%65/hub",  # %2e%2e spelled with encoded digits
    ],
)
def test_encoded_dots_and_separators_are_refused_naming_the_field(value):
    message = default_url_error(value)
    assert message is not None, value
    assert message.startswith("default_url: ")


@pytest.mark.parametrize(
    "value",
    [
        "/lab/../hub/admin",
        "/..",
        "//evil.example",
        "/lab//evil.example",
        "/\\evil.example",
        "/lab\\..\\hub",
        "/lab%0a",
        "/lab%0d%0aX-Forged: 1",
        "/lab%00",
        "/%252525252541",  # encoded five times over
    ],
)
def test_dot_segments_double_slashes_backslashes_and_controls_are_refused(value):
    message = default_url_error(value)
    assert message is not None, value
    assert message.startswith("default_url: ")
