"""Scenario 7: node released → /lab. How soon a queued spawn's user gets JupyterLab once
the resources it waited for are free.

Each try fills the cpu partition with a holding job of the benchmark's user (one task per idle
CPU, ``sleep``), makes the spawn request, waits until the spawn's job is PENDING (and then
``released_pending_seconds`` more, so that the hub treats it as a job that has waited), then
cancels the holding job and times, from that ``scancel``:

- Slurm starts the spawn's job (``squeue`` says RUNNING; polled every 50 ms);
- the hub learns the job runs (our spawner's timeline line; ours only);
- the hub calls the server ready (JupyterHub's own log line);
- ``/user/mossbench/lab`` answers 200 through the proxy, asked for as a browser would: after
  the progress stream's "ready" event, as the spawn-pending page does (then every 50 ms).

The target compares released → /lab with scenario 5's spawn request → /lab on the same hub:
once the node is free, the queued user should wait no longer than one who never queued.

Each try is followed by a floor after a release: a bare ``sbatch`` of ``jupyter-lab`` that pends
behind a holding job just as long, timed from the release until it answers 200. Set against
scenario 5's floor (a job that never waited), it shows what a release costs the node and Slurm
themselves, with no hub involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from tests.support.hub import HubProcess

from ..hubs import BENCH_USER
from ..jobs import bench_jobs, cancel_bench_jobs, cpu_counts, other_jobs, wait_for_idle_cpus
from ..load import login
from ..report import Results, Target, median, median_ratio, spread
from ..settings import Settings
from ..spawning import (
    BASE_OPTIONS,
    FINE_POLL,
    api_client,
    floor_once,
    request_spawn,
    scancel,
    stop_server,
    submit_as_bench_user,
    wait_answering,
    watch_progress,
)
from ..timeline import read_timeline
from .spawn import lab_floor_median, spawn_to_lab_median

S7 = "7. node released to /lab"

#: The points of a try, in seconds from the release: (key, how the table names it).
POINTS = [
    ("slurm_running", "Slurm starts the job (squeue RUNNING)"),
    ("running", "hub learns the job runs"),
    ("hub_ready", "hub calls it ready (its log)"),
    ("lab", "/lab 200 through the proxy"),
]


@dataclass
class ReleasedTry:
    points: dict[str, float] = field(default_factory=dict)  # seconds from the release
    problem: str = ""
    # Other users' jobs in the queue at the release: they may take the freed CPUs first, which
    # then shows as a late "Slurm starts the job" rather than as the hub's fault.
    others: int = 0
    floor: float | None = None  # the bare jupyter-lab job released the same way, timed after


async def run(
    hub: HubProcess,
    settings: Settings,
    env: Mapping[str, str],
    results: Results,
    say: Callable[[str], None],
) -> None:
    key = hub.name
    client = await login(hub.hub_url(), BENCH_USER)
    api = api_client(hub)
    tries: list[ReleasedTry] = []
    try:
        for attempt in range(settings.released_tries):
            await asyncio.to_thread(cancel_bench_jobs, env)
            await asyncio.to_thread(wait_for_idle_cpus, env, 1, settings.ready_timeout)
            tries.append(await _released_once(hub, client, api, env, settings))
            await stop_server(api, hub)
            await asyncio.to_thread(cancel_bench_jobs, env)
            await asyncio.to_thread(wait_for_idle_cpus, env, 1, settings.ready_timeout)
            tries[-1].floor = await _released_floor_once(env, settings)
            await asyncio.to_thread(cancel_bench_jobs, env)
            say(f"{key}: released try {attempt + 1}: {_try_text(tries[-1])}")
    finally:
        await client.aclose()
        await api.aclose()
    _report(key, tries, settings, results)


def holding_script(cpus: int) -> str:
    """A job that takes ``cpus`` CPUs of the cpu partition (one task each) and only sleeps."""
    return "\n".join(
        [
            "#!/bin/bash",
            "#SBATCH --job-name=mossbench-hold",
            "#SBATCH --partition=cpu",
            f"#SBATCH --ntasks={cpus}",
            "#SBATCH --cpus-per-task=1",
            "#SBATCH --time=00:15:00",
            "#SBATCH --output=/dev/null",
            "#SBATCH --chdir=/tmp",
            "exec sleep 600",
            "",
        ]
    )


async def _hold_cpu_partition(env: Mapping[str, str]) -> str | None:
    """Submit a holding job for every idle CPU of the cpu partition; its id once it runs."""
    idle, _total = await asyncio.to_thread(cpu_counts, env, "cpu")
    holder = await submit_as_bench_user(env, holding_script(idle))
    if not await _wait_for_state(env, lambda job, _: job == holder, "RUNNING", 60):
        await scancel(env, holder)
        return None
    return holder


async def _released_floor_once(env: Mapping[str, str], settings: Settings) -> float | None:
    """Seconds from the release until a bare jupyter-lab job, which pended behind a holding
    job as long as the spawns' jobs do, answers 200 (None: not measured)."""
    holder = await _hold_cpu_partition(env)
    if holder is None:
        return None

    released: list[float] = []

    async def release_when_pending(job_id: str) -> float | None:
        if await _wait_for_state(env, lambda job, _: job == job_id, "PENDING", 60) is None:
            return None
        await asyncio.sleep(settings.released_pending_seconds)
        released.append(time.perf_counter())
        await scancel(env, holder)
        return released[0]

    try:
        return await floor_once(env, settings.ready_timeout, release_when_pending)
    finally:
        if not released:  # the floor's job never pended: the holder still runs
            await scancel(env, holder)


async def _released_once(
    hub: HubProcess,
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    env: Mapping[str, str],
    settings: Settings,
) -> ReleasedTry:
    one = ReleasedTry()
    holder = await _hold_cpu_partition(env)
    if holder is None:
        one.problem = "the holding job never ran"
        return one
    requested = time.time()
    request = asyncio.create_task(request_spawn(client, hub, BASE_OPTIONS))
    try:
        spawn_job = await _wait_for_state(env, lambda job, _: job != holder, "PENDING", 60)
        if spawn_job is None:
            one.problem = "the spawn's job never pended (did it start, or was it refused?)"
            return one
        await asyncio.sleep(settings.released_pending_seconds)
        one.others = await asyncio.to_thread(other_jobs, env)
        released, released_at = time.time(), time.perf_counter()
        await scancel(env, holder)
        deadline = released_at + settings.ready_timeout
        lab_url = hub.url + f"user/{BENCH_USER}/lab"
        slurm_running, lab = await asyncio.gather(
            _until_running(env, spawn_job, deadline),
            _until_lab(client, api, hub, lab_url, request, deadline),
        )
        if slurm_running is not None:
            one.points["slurm_running"] = slurm_running - released_at
        if lab is not None:
            one.points["lab"] = lab - released_at
        else:
            one.problem = "/lab never answered 200"
    finally:
        if not request.done():
            request.cancel()
    timeline = read_timeline(hub.log(), BENCH_USER, requested)
    for point in ("running", "hub_ready"):
        if point in timeline.points:  # seconds from the request, made seconds from the release
            one.points[point] = timeline.points[point] + requested - released
    return one


async def _wait_for_state(
    env: Mapping[str, str], which: Callable[[str, str], bool], state: str, timeout: float
) -> str | None:
    """The id of a benchmark job that ``which`` picks once it is in ``state`` (or None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job_id, job_state in await asyncio.to_thread(bench_jobs, env):
            if which(job_id, job_state):
                if job_state == state:
                    return job_id
                if state == "PENDING" and job_state != "PENDING":
                    return None  # it did not wait: this try measures nothing
        await asyncio.sleep(0.2)
    return None


async def _until_running(env: Mapping[str, str], job_id: str, deadline: float) -> float | None:
    """The ``perf_counter()`` when squeue first shows the job RUNNING (polled every 50 ms)."""
    while time.perf_counter() < deadline:
        state = dict(await asyncio.to_thread(bench_jobs, env)).get(job_id)
        if state == "RUNNING":
            return time.perf_counter()
        if state not in ("PENDING", "CONFIGURING"):
            return None  # gone or failed: it will not run
        await asyncio.sleep(FINE_POLL)
    return None


async def _until_lab(
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    hub: HubProcess,
    url: str,
    request: asyncio.Task,
    deadline: float,
) -> float | None:
    """The ``perf_counter()`` when /lab answers 200 through the proxy, asked as a browser does.

    The spawn request is still open (JupyterHub holds it for up to ``slow_spawn_timeout``).
    Once it has answered, a browser shows the spawn-pending page, which follows the progress
    stream and loads the server at its "ready" event; so does this. Asking for /lab every 50 ms
    instead has the hub render its pending page twenty times a second, on the two cores where
    the job's server is starting, and no browser does that.
    """
    # A failed spawn request leaves /lab unanswered too, which is what the try then reports.
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        await asyncio.wait_for(request, max(0.0, deadline - time.perf_counter()))
    try:
        outcome = await watch_progress(
            api, hub, time.perf_counter(), max(0.0, deadline - time.perf_counter())
        )
    except (httpx.HTTPError, TimeoutError):
        return None
    if outcome.failed:
        return None
    if await wait_answering(client, url, deadline - time.perf_counter()):
        return time.perf_counter()
    return None


def _report(key: str, tries: list[ReleasedTry], settings: Settings, results: Results) -> None:
    n = len(tries)
    failures = [t.problem for t in tries if t.problem]
    failed = f"{len(failures)} of {n} failed: {failures[0][:80]}" if failures else ""
    for point, label in POINTS:
        values = [t.points[point] for t in tries if point in t.points]
        results.put(
            key,
            S7,
            f"from the release (scancel of the holding job): {label}, median of {n}",
            median(values),
            unit="s",
            digits=2,
            note="; ".join(p for p in (spread(values), failed if point == "lab" else "") if p),
        )
    labs = [t.points["lab"] for t in tries if "lab" in t.points]
    floors = [t.floor for t in tries if t.floor is not None]
    _report_floor(key, floors, labs, results)
    never_waited = spawn_to_lab_median(results, key)
    results.put(
        key,
        S7,
        "released → /lab / spawn request → /lab of scenario 5 (never waited)",
        median_ratio(labs, never_waited),
        digits=2,
        target=Target("ours ≤ 1.0 (no slower than never waited)", lambda ours, _ref: ours <= 1.0),
    )
    for number, one in enumerate(tries, 1):
        results.notes.append(
            f"{key}, scenario 7, try {number} (pended {settings.released_pending_seconds:.0f} s "
            f"before the release): {_try_text(one)}"
        )


def _report_floor(key: str, floors: list[float], labs: list[float], results: Results) -> None:
    """The floor after a release, and what it says of the node, Slurm and the hub."""
    results.put(
        key,
        S7,
        f"floor after a release: bare sbatch of jupyter-lab, release → HTTP 200, median of "
        f"{len(floors)}",
        median(floors),
        unit="s",
        digits=2,
        note=spread(floors),
    )
    never_waited_floor = lab_floor_median(results, key)
    results.put(
        key,
        S7,
        "floor after a release / scenario 5's floor (never waited): what a release costs "
        "without a hub",
        median_ratio(floors, never_waited_floor),
        digits=2,
    )
    results.put(
        key,
        S7,
        "released → /lab / floor after a release",
        median_ratio(labs, floors),
        digits=2,
    )


def _try_text(one: ReleasedTry) -> str:
    shown = ", ".join(
        f"{label} {one.points[point]:.2f} s" if point in one.points else f"{label} —"
        for point, label in POINTS
    )
    others = f"; {one.others} other users' jobs in the queue at the release" if one.others else ""
    floor = f"; floor after a release {one.floor:.2f} s" if one.floor is not None else ""
    return shown + others + floor + (f"; {one.problem}" if one.problem else "")
