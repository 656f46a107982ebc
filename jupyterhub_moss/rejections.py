"""Rejected submissions, kept until JupyterHub re-renders the form that shows them.

When a submission fails validation, JupyterHub renders the spawn page again, and the form should
show what the user typed next to the messages. JupyterHub gives the form no way to pass them on,
so they wait here, keyed by user and server, for a short while.

Everything in a submission is chosen by the user (or by whoever wrote a link), so the store is
bounded in every direction: each value and message is cut to :data:`MAX_TEXT_CHARS`, only the
form's own field names are kept, a user has at most :data:`MAX_PER_USER` waiting (one per
server), and all users together at most :data:`MAX_TOTAL_CHARS` characters; beyond that the
oldest go first. A dropped rejection costs the user nothing but the pre-filled values: the
message is still on the page JupyterHub renders.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

#: How long a rejected submission waits for JupyterHub to re-render the form.
TTL_SECONDS = 120.0
#: The longest value or message kept (the longest field, ``options``, takes 4096 characters).
MAX_TEXT_CHARS = 4096
#: Rejections waiting per user (one per named server).
MAX_PER_USER = 8
#: Characters of values and messages waiting for all users together (about 8 MB at most).
MAX_TOTAL_CHARS = 2_000_000


@dataclass(frozen=True)
class Rejection:
    values: dict[str, str]
    errors: dict[str, str]
    at: float

    @property
    def size(self) -> int:
        texts = [*self.values.items(), *self.errors.items()]
        return sum(len(k) + len(v) for k, v in texts)


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS]


class RejectedSubmissions:
    """Rejections by (user, server), oldest first, within the bounds above."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._waiting: OrderedDict[tuple[str, str], Rejection] = OrderedDict()
        self._total = 0

    def __len__(self) -> int:
        return len(self._waiting)

    @property
    def total_chars(self) -> int:
        return self._total

    def remember(
        self,
        user_name: str,
        server_name: str,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        fields: Iterable[str],
    ) -> None:
        """Keep ``values`` (only those named in ``fields``) and ``errors`` for this server."""
        known = frozenset(fields)
        rejection = Rejection(
            {k: _bounded(v) for k, v in values.items() if k in known},
            {_bounded(str(k)): _bounded(str(v)) for k, v in list(errors.items())[: len(known) + 8]},
            self._clock(),
        )
        self._drop_expired()
        self._pop((user_name, server_name))
        self._waiting[(user_name, server_name)] = rejection
        self._total += rejection.size
        self._enforce_bounds(user_name)

    def take(self, user_name: str, server_name: str) -> tuple[str, Rejection] | None:
        """The fresh rejection for this server, once.

        JupyterHub re-renders a rejected form for a named server through the *default* server's
        spawner, so the default server also takes the user's latest rejection of a named one.
        """
        self._drop_expired()
        key = (user_name, server_name)
        if key not in self._waiting and server_name == "":
            mine = [k for k in self._waiting if k[0] == user_name]
            key = mine[-1] if mine else key
        rejection = self._pop(key)
        return None if rejection is None else (key[1], rejection)

    def _pop(self, key: tuple[str, str]) -> Rejection | None:
        rejection = self._waiting.pop(key, None)
        if rejection is not None:
            self._total -= rejection.size
        return rejection

    def _drop_expired(self) -> None:
        now = self._clock()
        # Oldest first: stop at the first one still fresh.
        while self._waiting:
            key, oldest = next(iter(self._waiting.items()))
            if now - oldest.at <= TTL_SECONDS:
                break
            self._pop(key)

    def _enforce_bounds(self, user_name: str) -> None:
        mine = [k for k in self._waiting if k[0] == user_name]
        for key in mine[: max(0, len(mine) - MAX_PER_USER)]:
            self._pop(key)
        while self._total > MAX_TOTAL_CHARS and len(self._waiting) > 1:
            self._pop(next(iter(self._waiting)))


#: The hub's one store: a rejected submission waits here for the form JupyterHub re-renders.
REJECTED = RejectedSubmissions()
