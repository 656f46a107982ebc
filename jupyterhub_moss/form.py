"""The spawn page's form. PLACEHOLDER: being written (issue 5); renders a minimal form for now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spawner import MOSlurmSpawner


async def render_options_form(spawner: MOSlurmSpawner) -> str:
    limits = await spawner.partition_limits()
    first = next(iter(limits))
    return f'<input type="hidden" name="partition" value="{first}">'


def remember_rejected_submission(
    spawner: MOSlurmSpawner, values: Mapping[str, object], errors: Mapping[str, str]
) -> None:
    """Keep a rejected submission so the re-rendered form shows its values and messages."""
