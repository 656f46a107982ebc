"""Scenarios 5 and 6: how long a user waits for a server, and for the news that it died.

5. Spawn to ready: from the spawn request to ``/user/mossbench/lab`` answering 200, through the
   proxy and the OAuth redirects, as a browser gets there. Each try is paired with a floor run
   just before it: a bare ``sbatch`` of JupyterLab from the same job-side environment, timed
   until it answers HTTP. Reported: medians, and the ratio of the medians.
6. Failure detection: a spawn whose job dies at once (its environment path does not exist, so
   the server's command is not found). Timed from the spawn request until the user sees the
   error: the spawn request's own answer when that is an error page, otherwise the failure
   event on the spawn-pending page's progress stream.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bs4 import BeautifulSoup

from tests.support.hub import HubProcess

from ..hubs import BENCH_USER
from ..jobs import cancel_bench_jobs, wait_for_idle_cpus
from ..load import login
from ..report import Results, Target
from ..settings import Settings
from ..spawning import (
    BASE_OPTIONS,
    SpawnOutcome,
    api_client,
    floor_once,
    request_spawn,
    stop_server,
    wait_answering,
    wait_ready,
    watch_progress,
)

S5 = "5. spawn to ready"
S6 = "6. failure detection"
BROKEN_ENVIRONMENT = "/nonexistent/moss-bench/bin/"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def run_ready(
    hub: HubProcess,
    settings: Settings,
    env: Mapping[str, str],
    results: Results,
    say: Callable[[str], None],
) -> None:
    key = hub.name
    client = await login(hub.hub_url(), BENCH_USER)
    api = api_client(hub)
    spawns: list[float] = []
    readies: list[float] = []
    floors: list[float] = []
    failures: list[str] = []
    try:
        for attempt in range(settings.spawn_tries):
            await asyncio.to_thread(wait_for_idle_cpus, env, 1, settings.ready_timeout)
            floor = await floor_once(env, settings.ready_timeout)
            await asyncio.to_thread(cancel_bench_jobs, env)
            await asyncio.to_thread(wait_for_idle_cpus, env, 1, settings.ready_timeout)
            if floor is not None:
                floors.append(floor)
            times, problem = await _spawn_until_lab(hub, client, api, settings)
            if times is not None:
                spawns.append(times.lab)
                readies.append(times.ready)
            else:
                failures.append(problem)
            await stop_server(api, hub)
            await asyncio.to_thread(cancel_bench_jobs, env)
            say(f"{key}: try {attempt + 1}: floor {floor}, spawn {times} {problem}")
    finally:
        await client.aclose()
        await api.aclose()
    n = settings.spawn_tries
    spawn_median, floor_median = _median(spawns), _median(floors)
    note = f"{len(failures)} of {n} failed: {failures[0][:80]}" if failures else ""
    results.put(
        key,
        S5,
        f"median of {n}, spawn request to /lab 200",
        spawn_median,
        unit="s",
        digits=2,
        note=note,
    )
    results.put(
        key,
        S5,
        "of which: spawn request to server ready (hub), median",
        _median(readies),
        unit="s",
        digits=2,
    )
    results.put(
        key,
        S5,
        "floor: bare sbatch of jupyter-lab to HTTP 200, median",
        floor_median,
        unit="s",
        digits=2,
    )
    results.put(
        key,
        S5,
        "spawn / floor",
        spawn_median / floor_median if floors else float("nan"),
        digits=2,
        target=Target("ours ≤ 1.15 x floor", lambda ours, _ref: ours <= 1.15),
    )
    results.notes.append(
        f"{key}, scenario 5: to /lab {_seconds_list(spawns)}; to ready "
        f"{_seconds_list(readies)}; floors {_seconds_list(floors)}."
    )


def _seconds_list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f} s" for v in values) or "none"


@dataclass(frozen=True)
class SpawnTimes:
    """Seconds from the spawn request to each thing the user waits for."""

    ready: float  # the hub says the server is ready (REST API)
    lab: float  # /user/mossbench/lab answers 200, OAuth redirects included


async def _spawn_until_lab(hub, client, api, settings) -> tuple[SpawnTimes | None, str]:
    started = time.perf_counter()
    answer = await request_spawn(client, hub, BASE_OPTIONS)
    if answer.status_code >= 400:
        return None, f"spawn request answered {answer.status_code}"
    remaining = settings.ready_timeout - (time.perf_counter() - started)
    if not await wait_ready(api, hub, "", remaining):
        return None, "the server never became ready"
    ready = time.perf_counter() - started
    remaining = settings.ready_timeout - ready
    if not await wait_answering(client, hub.url + f"user/{BENCH_USER}/lab", remaining):
        return None, "/lab never answered 200"
    return SpawnTimes(ready, time.perf_counter() - started), ""


async def run_failure(
    hub: HubProcess,
    settings: Settings,
    env: Mapping[str, str],
    results: Results,
    say: Callable[[str], None],
) -> None:
    key = hub.name
    client = await login(hub.hub_url(), BENCH_USER)
    api = api_client(hub)
    outcomes: list[SpawnOutcome] = []
    try:
        for attempt in range(settings.failure_tries):
            await asyncio.to_thread(wait_for_idle_cpus, env, 1, settings.ready_timeout)
            outcome = await _failing_spawn(hub, client, api, settings)
            outcomes.append(outcome)
            say(f"{key}: failure try {attempt + 1}: {outcome}")
            await stop_server(api, hub)
            await asyncio.to_thread(cancel_bench_jobs, env)
    finally:
        await client.aclose()
        await api.aclose()
    seen = [o.seconds for o in outcomes if o.failed]
    missed = len(outcomes) - len(seen)
    results.put(
        key,
        S6,
        f"median of {len(outcomes)}, spawn request to the error shown",
        _median(seen),
        unit="s",
        digits=2,
        note=f"{missed} never showed an error" if missed else "",
        target=Target("ours < 5 s", lambda ours, _ref: ours < 5),
    )
    results.put(key, S6, "slowest", max(seen) if seen else float("nan"), unit="s", digits=2)
    # The reference's outcome is random (an error at once, or none until start_timeout): say
    # how often the user was left waiting for the whole timeout.
    waited = sum(1 for o in outcomes if o.seconds >= settings.failure_start_timeout - 1)
    results.put(
        key,
        S6,
        f"tries that ended only at start_timeout ({settings.failure_start_timeout} s)",
        waited,
        digits=0,
        note=f"of {len(outcomes)}",
    )
    for outcome in outcomes:
        results.notes.append(
            f"{key}, scenario 6: after {outcome.seconds:.2f} s: "
            f"{'error' if outcome.failed else 'no error'}: {_one_line(outcome.message)}"
        )


def shown_error(html: str) -> str:
    """The error a page shows the user: an alert, else JupyterHub's error page text."""
    soup = BeautifulSoup(html, "html.parser")
    for selector in ("div.error", ".alert-danger", ".alert", "#error-message", "h1", "body"):
        found = soup.select_one(selector)
        if found is not None and found.get_text(strip=True):
            return _one_line(found.get_text(" ", strip=True))
    return "(empty page)"


def _one_line(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


async def _failing_spawn(hub, client, api, settings) -> SpawnOutcome:
    options = {k: v for k, v in BASE_OPTIONS.items() if k != "environment_id"}
    options["environment_path"] = BROKEN_ENVIRONMENT
    started = time.perf_counter()
    answer = await request_spawn(client, hub, options)
    if answer.status_code >= 400 or answer.status_code == 200:
        # An error page, or the form shown again with the error: the user sees it now.
        return SpawnOutcome(
            time.perf_counter() - started,
            True,
            f"HTTP {answer.status_code} on the spawn request: {shown_error(answer.text)}",
        )
    timeout = settings.failure_start_timeout + 60
    try:
        return await watch_progress(api, hub, started, timeout)
    except TimeoutError:
        return SpawnOutcome(
            time.perf_counter() - started, False, f"nothing shown within {timeout} s"
        )
