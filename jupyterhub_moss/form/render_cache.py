"""Rendered HTML kept for repeated views of the same form: one small LRU per process.

A render is a pure function of its inputs, so the key holds every one of them:

- the template (by identity: an edited admin template is a new object) and the snapshot (by
  identity: every refresh, and every failed one, makes a new object);
- the limits and the policy, by value: they carry the user's access (partitions, accounts,
  QOS), so two users share an entry only when everything shown to them is the same;
- whose form it is, the hub's prefix and the XSRF token, which the HTML contains;
- the words that change with the clock: the snapshot's age and the reservations usable now;
- the values shown and the tab (for a fragment, what the browser sent).

Identity keys hold their object, so its ``id`` cannot be reused while the entry lives. Entries
are few (:data:`MAX_ENTRIES`) and inputs longer than :data:`MAX_INPUT_CHARS` are not cached at
all, so what a browser sends cannot grow the cache.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime
from typing import Any

from ..context import FormContext
from .availability import availability_status
from .choices import reservation_choices

#: Most renders kept: a few per active user is enough for the reloads and tab switches that
#: repeat a render; older ones are dropped first.
MAX_ENTRIES = 128
#: Longest text of values (saved options, fragment query) worth a cache entry.
MAX_INPUT_CHARS = 4096


class Same:
    """A key part that matches only the very same object (kept alive by the key)."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.obj is self.obj


class RenderCache:
    """A bounded LRU of rendered HTML, with counts of hits and misses."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, str] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self.hits = self.misses = 0

    def get_or_render(self, key: Hashable | None, render: Callable[[], str]) -> str:
        """The HTML cached for ``key``, else ``render()`` (kept); ``key=None``: not cacheable."""
        if key is None:
            return render()
        html = self._entries.get(key)
        if html is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return html
        self.misses += 1
        html = render()
        self._entries[key] = html
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return html


#: The process's cache of pages and fragments.
RENDERS = RenderCache()


def context_key(ctx: FormContext, template: object, now: datetime) -> tuple:
    """Everything of ``ctx`` (and the clock) that the form's HTML shows."""
    return (
        Same(template),
        ctx.template_paths,
        Same(ctx.snapshot),
        tuple(ctx.limits.items()),
        ctx.policy,
        ctx.user_name,
        ctx.server_name,
        ctx.hub_prefix,
        ctx.xsrf_token,
        ctx.refresh_seconds,
        availability_status(ctx.snapshot, now),
        tuple(reservation_choices(ctx.snapshot, ctx.user_name, now)),
    )


def values_key(values: Mapping[str, Any] | None) -> str | None:
    """``values`` as one canonical text, or None when too long (or odd) to be worth keeping."""
    try:
        text = json.dumps(values or {}, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return text if len(text) <= MAX_INPUT_CHARS else None
