"""Scenarios 5 and 6: how long a user waits for a server, and for the news that it died.

5. Spawn to ready: a spawn's timeline, from the spawn request to ``/user/mossbench/lab``
   answering 200 through the proxy and the OAuth redirects, as a browser gets there. The
   harness times the REST API's "ready" and /lab (every 50 ms); the hub's log gives when
   JupyterHub called the server ready and, for ours, the spawner's own steps (timeline.py).
   Each try is paired with two floors timed just before it: a bare ``sbatch`` of
   ``jupyter-lab``, and one of ``jupyterhub-singleuser``, from the same job-side environment,
   timed until they answer HTTP. Reported: medians with their range, and spawn / floor.
6. Failure detection: a spawn whose job dies at once (its environment path does not exist, so
   the server's command is not found). Timed from the spawn request until the user sees the
   error: the spawn request's own answer when that is an error page, otherwise the failure
   event on the spawn-pending page's progress stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx
from bs4 import BeautifulSoup

from tests.support.hub import HubProcess

from ..hubs import BENCH_USER
from ..jobs import cancel_bench_jobs, wait_for_idle_cpus
from ..load import login
from ..report import Results, Target, median, median_ratio, spread
from ..settings import Settings
from ..spawning import (
    BASE_OPTIONS,
    FINE_POLL,
    SpawnOutcome,
    api_client,
    floor_once,
    request_spawn,
    server_model,
    singleuser_floor_once,
    stop_server,
    wait_answering,
    watch_progress,
)
from ..timeline import SpawnTimeline, read_timeline

S5 = "5. spawn to ready"
S6 = "6. failure detection"
BROKEN_ENVIRONMENT = "/nonexistent/moss-bench/bin/"


#: The timeline's points, in the order they happen: (key, how the table names it). The first
#: five come from our spawner's log line, "hub_ready" from JupyterHub's own log, the last two
#: from the harness.
TIMELINE = [
    ("start", "spawner's start() began"),
    ("submitted", "job submitted"),
    ("running", "job running"),
    ("port", "port known"),
    ("listening", "server listening"),
    ("hub_ready", "hub calls it ready (its log)"),
    ("api_ready", "ready in the REST API"),
    ("lab", "/lab 200 through the proxy"),
]

#: The headline row's figure, followed by the number of tries.
LAB_METRIC = "spawn request to /lab 200 through the proxy, median of "


LAB_FLOOR_METRIC = "floor: bare sbatch of jupyter-lab to HTTP 200, median"


def spawn_to_lab_median(results: Results, key: str) -> float | None:
    """Scenario 5's spawn request → /lab median for one hub, if scenario 5 ran."""
    return _scenario5_value(results, key, LAB_METRIC)


def lab_floor_median(results: Results, key: str) -> float | None:
    """Scenario 5's jupyter-lab floor median, timed next to one hub's tries, if it ran."""
    return _scenario5_value(results, key, LAB_FLOOR_METRIC)


def _scenario5_value(results: Results, key: str, metric: str) -> float | None:
    for row in results.rows:
        if row.scenario == S5 and row.metric.startswith(metric):
            value = row.values.get(key)
            return None if value is None or value != value else value  # NaN: not measured
    return None


#: What a try's note lists: the timeline and our spawner's other points, in order.
TRY_POINTS = [
    *TIMELINE[:5],
    ("answering", "answering"),
    ("returned", "start() returned"),
    *TIMELINE[5:],
]


@dataclass
class ReadyTry:
    """One try of scenario 5: its spawn's timeline, and the two floors timed just before."""

    timeline: SpawnTimeline
    problem: str
    lab_floor: float | None
    singleuser_floor: float | None


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
    tries: list[ReadyTry] = []
    try:
        for attempt in range(settings.spawn_tries):
            lab_floor = await _floor(
                env, settings, lambda: floor_once(env, settings.ready_timeout), say
            )
            singleuser_floor = await _floor(
                env,
                settings,
                lambda: singleuser_floor_once(env, api, hub, settings.ready_timeout),
                say,
            )
            timeline, problem = await _spawn_until_lab(hub, client, api, settings)
            tries.append(ReadyTry(timeline, problem, lab_floor, singleuser_floor))
            await stop_server(api, hub)
            await asyncio.to_thread(cancel_bench_jobs, env)
            say(f"{key}: try {attempt + 1}: {_try_text(tries[-1])}")
    finally:
        await client.aclose()
        await api.aclose()
    _report_ready(key, tries, results)


async def _floor(
    env: Mapping[str, str],
    settings: Settings,
    timing: Callable[[], Awaitable[float | None]],
    say: Callable[[str], None],
) -> float | None:
    """Time one floor on an idle partition; leave the partition idle for the next step.

    A floor that cannot run is reported as not measured ("—"), not as a failed scenario.
    """
    await asyncio.to_thread(wait_for_idle_cpus, env, 1, settings.ready_timeout)
    try:
        return await timing()
    except (RuntimeError, httpx.HTTPError) as error:
        say(f"a floor could not be timed: {error!r}")
        return None
    finally:
        await asyncio.to_thread(cancel_bench_jobs, env)
        await asyncio.to_thread(wait_for_idle_cpus, env, 1, settings.ready_timeout)


def _report_ready(key: str, tries: list[ReadyTry], results: Results) -> None:
    n = len(tries)
    failures = [t.problem for t in tries if t.problem]
    labs = [t.timeline.points["lab"] for t in tries if "lab" in t.timeline.points]
    lab_floors = [t.lab_floor for t in tries if t.lab_floor is not None]
    singleuser_floors = [t.singleuser_floor for t in tries if t.singleuser_floor is not None]
    failed = f"{len(failures)} of {n} failed: {failures[0][:80]}" if failures else ""
    results.put(
        key,
        S5,
        f"{LAB_METRIC}{n}",
        median(labs),
        unit="s",
        digits=2,
        note="; ".join(part for part in (spread(labs), failed) if part),
    )
    for point, label in TIMELINE[:-1]:  # the last, /lab, is the row above
        values = [t.timeline.points[point] for t in tries if point in t.timeline.points]
        seen = f"in {len(values)} of {n} tries" if values and len(values) < n else ""
        results.put(
            key,
            S5,
            f"timeline from the spawn request: {label}, median",
            median(values),
            unit="s",
            digits=2,
            note="; ".join(part for part in (spread(values), seen) if part),
        )
    gaps = [g for t in tries if (g := t.timeline.gap("listening", "hub_ready")) is not None]
    results.put(
        key,
        S5,
        "server listening → hub calls it ready, median",
        median(gaps),
        unit="s",
        digits=2,
        note=spread(gaps),
        target=Target("ours ≤ 0.2 s", lambda ours, _ref: ours <= 0.2),
    )
    for metric, floors in (
        (LAB_FLOOR_METRIC, lab_floors),
        (
            LAB_FLOOR_METRIC.replace("jupyter-lab", "jupyterhub-singleuser (asked directly)"),
            singleuser_floors,
        ),
    ):
        results.put(
            key,
            S5,
            metric,
            median(floors),
            unit="s",
            digits=2,
            note=spread(floors),
        )
    results.put(
        key,
        S5,
        "spawn / jupyter-lab floor",
        median_ratio(labs, lab_floors),
        digits=2,
        target=Target("ours ≤ 1.5 x floor", lambda ours, _ref: ours <= 1.5),
    )
    results.put(
        key,
        S5,
        "spawn / jupyterhub-singleuser floor",
        median_ratio(labs, singleuser_floors),
        digits=2,
    )
    for number, one in enumerate(tries, 1):
        results.notes.append(f"{key}, scenario 5, try {number}: {_try_text(one)}")


def _try_text(one: ReadyTry) -> str:
    """One try's points, in seconds from the spawn request ("—": not reached or not logged)."""
    points = one.timeline.points
    shown = ", ".join(f"{label} {_seconds(points.get(point))}" for point, label in TRY_POINTS)
    floors = (
        f"floors: jupyter-lab {_seconds(one.lab_floor)}, "
        f"jupyterhub-singleuser {_seconds(one.singleuser_floor)}"
    )
    problem = f"; {one.problem}" if one.problem else ""
    return f"{shown}; {floors}{problem}"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


async def _spawn_until_lab(
    hub: HubProcess, client: httpx.AsyncClient, api: httpx.AsyncClient, settings: Settings
) -> tuple[SpawnTimeline, str]:
    """Spawn, and time it from outside and from the hub's log: (timeline, problem or "")."""
    requested, started = time.time(), time.perf_counter()
    timeline, problem = SpawnTimeline(), ""
    deadline = started + settings.ready_timeout
    # JupyterHub holds a spawn request for up to slow_spawn_timeout (10 s) before it answers,
    # so the REST API is polled while the request is still open.
    request = asyncio.create_task(request_spawn(client, hub, BASE_OPTIONS))
    try:
        ready = await poll_ready(api, hub, request, deadline)
        answer = await request
    finally:
        if not request.done():
            request.cancel()
    if answer.status_code >= 400:
        problem = f"spawn request answered {answer.status_code}"
    elif ready is None:
        problem = "the server never became ready"
    else:
        timeline.points["api_ready"] = ready - started
        url = hub.url + f"user/{BENCH_USER}/lab"
        if await wait_answering(client, url, deadline - time.perf_counter()):
            timeline.points["lab"] = time.perf_counter() - started
        else:
            problem = "/lab never answered 200"
    from_log = read_timeline(hub.log(), BENCH_USER, requested)
    timeline.points.update(from_log.points)
    return timeline, problem


async def poll_ready(
    api: httpx.AsyncClient, hub: HubProcess, request: asyncio.Task, deadline: float
) -> float | None:
    """The ``perf_counter()`` when the REST API first shows the default server ready.

    Polled every 50 ms. None when the spawn ended without a server: once the spawn request has
    answered, a server neither pending nor ready will not become ready.
    """
    while time.perf_counter() < deadline:
        answered = request.done()  # before the look, so that the look sees the answer's state
        model = await server_model(api, hub)
        if model is not None and model.get("ready"):
            return time.perf_counter()
        if answered and (model is None or not model.get("pending")):
            return None
        await asyncio.sleep(FINE_POLL)
    return None


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
        median(seen),
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
