"""Fixtures every browser test file may use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def console_errors(page) -> Iterator[list[str]]:
    """Errors the page logs or throws; each test asserts there are none."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield errors
