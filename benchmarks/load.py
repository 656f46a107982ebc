"""HTTP load on loopback with httpx: logged-in clients, and three bounded ways to send requests.

- :func:`sequential`: one request after another, N times;
- :func:`closed_loop`: C clients, each sending its next request as soon as the last answered,
  for a fixed time (throughput);
- :func:`periodic_viewers`: V clients, each sending one request every ``interval`` seconds, from
  a random phase, for a fixed time (people with the page open).

Every loop stops by itself; a request that fails or answers anything but 200 counts as an error.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

REQUEST_TIMEOUT = 30.0
_XSRF_RE = re.compile(r'name="_xsrf"\s+value="([^"]+)"')


@dataclass
class Samples:
    """Latencies of the successful requests (seconds), errors, and the wall-clock span."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.latencies) + self.errors

    def add_error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile, in seconds (NaN without samples)."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]

    @property
    def rps(self) -> float:
        """Successful requests per second over the span."""
        return len(self.latencies) / self.elapsed if self.elapsed > 0 else math.nan


def new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=REQUEST_TIMEOUT, follow_redirects=False)


async def login(hub_url: str, username: str, password: str = "any") -> httpx.AsyncClient:  # noqa: S107 (DummyAuthenticator)
    """A client with its own login session, as a browser would have after signing in."""
    client = new_client()
    page = await client.get(f"{hub_url}login")
    page.raise_for_status()
    match = _XSRF_RE.search(page.text)
    if not match:
        await client.aclose()
        raise RuntimeError("no _xsrf field on the login page")
    answer = await client.post(
        f"{hub_url}login",
        data={"username": username, "password": password, "_xsrf": match.group(1)},
    )
    if answer.status_code not in (200, 302):
        await client.aclose()
        raise RuntimeError(f"login as {username} answered {answer.status_code}")
    return client


async def logins(hub_url: str, username: str, count: int) -> list[httpx.AsyncClient]:
    return [await login(hub_url, username) for _ in range(count)]


async def close_all(clients: Sequence[httpx.AsyncClient]) -> None:
    for client in clients:
        await client.aclose()


async def _timed_get(
    client: httpx.AsyncClient, url: str, samples: Samples, headers: dict[str, str] | None
) -> None:
    start = time.perf_counter()
    try:
        answer = await client.get(url, headers=headers)
    except httpx.HTTPError as error:
        samples.add_error(type(error).__name__)
        return
    took = time.perf_counter() - start
    if answer.status_code == 200:
        samples.latencies.append(took)
    else:
        samples.add_error(f"HTTP {answer.status_code}")


async def sequential(
    client: httpx.AsyncClient, url: str, count: int, headers: dict[str, str] | None = None
) -> Samples:
    samples = Samples()
    start = time.perf_counter()
    for _ in range(count):
        await _timed_get(client, url, samples, headers)
    samples.elapsed = time.perf_counter() - start
    return samples


async def closed_loop(
    clients: Sequence[httpx.AsyncClient],
    url: str,
    duration: float,
    headers: dict[str, str] | None = None,
) -> Samples:
    """Each client sends its next request as soon as the previous one answered."""
    samples = Samples()
    start = time.perf_counter()
    deadline = start + duration

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            await _timed_get(client, url, samples, headers)

    await asyncio.gather(*(worker(client) for client in clients))
    samples.elapsed = time.perf_counter() - start
    return samples


async def periodic_viewers(
    clients: Sequence[httpx.AsyncClient],
    url: str,
    interval: float,
    duration: float,
    headers: dict[str, str] | None = None,
    seed: int = 7,
) -> Samples:
    """Each client asks once per ``interval`` on a fixed schedule from a random phase.

    A slow answer delays that viewer's next request (a browser's htmx poll waits for the
    previous one), but the schedule does not drift.
    """
    samples = Samples()
    rng = random.Random(seed)
    start = time.perf_counter()
    deadline = start + duration

    async def viewer(client: httpx.AsyncClient, phase: float) -> None:
        next_at = start + phase
        while next_at < deadline:
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await _timed_get(client, url, samples, headers)
            next_at += interval

    phases = [rng.uniform(0, interval) for _ in clients]
    await asyncio.gather(*(viewer(c, p) for c, p in zip(clients, phases, strict=True)))
    # The span is the whole viewing time, idle tail included: rates are per minute of viewing.
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
    samples.elapsed = time.perf_counter() - start
    return samples
