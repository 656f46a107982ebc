"""Scenario 4: what watching servers costs slurmctld.

Some servers run and some spawns wait in the queue, and nobody looks at any page; the hub's
status polling is the only load. The pending spawns are real spawns whose jobs Slurm holds
until an hour from now (``--begin``, through the sbatch options field both implementations
offer), so they stay pending without taking CPUs that other jobs could use.

The running servers need one CPU each: on the single-node layout (8 CPUs, shared with anyone
else using the cluster) the number that runs is capped by the idle CPUs, and the figure is
also reported per server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from tests.support.hub import HubProcess

from ..hubs import BENCH_USER
from ..jobs import bench_jobs, cpu_counts
from ..load import login
from ..report import Results
from ..settings import Settings
from ..slurmctld import JOB_INFO_TYPES, Window
from ..spawning import BASE_OPTIONS, api_client, request_spawn, server_model, wait_ready

S4 = "4. status polling"
PENDING_OPTIONS = {**BASE_OPTIONS, "options": "--begin=now+1hour"}
SETTLE_SECONDS = 5
MEASURE_ATTEMPTS = 3
# Jupyter servers starting together on a 2-core machine can each take longer than JupyterHub's
# http_timeout: start them a few at a time (the start is not what this scenario measures).
START_BATCH = 2  # let the start-up polling of the last spawns die down before measuring


def config(settings: Settings) -> str:
    # Both hubs: pending spawns must outlive the measurement, not time out in the middle of it.
    timeout = int(settings.polling_seconds + settings.ready_timeout * 3)
    # and a server slow to answer on a busy machine is not a failed one
    return f"c.Spawner.start_timeout = {timeout}\nc.Spawner.http_timeout = 120\n"


async def run(
    hub: HubProcess,
    settings: Settings,
    env: Mapping[str, str],
    results: Results,
    say: Callable[[str], None],
) -> None:
    key = hub.name
    running, total = await _cpus_for(env, settings.running_servers, settings.ready_timeout)
    pending = settings.pending_spawns
    client = await login(hub.hub_url(), BENCH_USER)
    api = api_client(hub)
    try:
        names = [f"r{i:02d}" for i in range(1, running + 1)]
        for start in range(0, running, START_BATCH):
            await _start_batch(client, api, hub, names[start : start + START_BATCH], settings)
        waiting = [f"p{i:02d}" for i in range(1, pending + 1)]
        for name in waiting:
            answer = await request_spawn(client, hub, PENDING_OPTIONS, name)
            if answer.status_code >= 400:
                raise RuntimeError(f"pending spawn request answered {answer.status_code}")
        await _until_jobs(env, running, pending, settings.ready_timeout)
        await asyncio.sleep(SETTLE_SECONDS)
        say(f"{key}: {running} running, {pending} pending; measuring {settings.polling_seconds}s")
        for _attempt in range(MEASURE_ATTEMPTS):  # someone else's sdiag -r spoils a window
            window = Window(env, reset=settings.sdiag_reset)
            window.start()
            await asyncio.sleep(settings.polling_seconds)
            window.stop()
            if window.valid:
                break
            say(f"{key}: sdiag counters were reset during the window; measuring again")
        still = [await server_model(api, hub, name) for name in waiting]
        lost = sum(1 for model in still if not model or not model.get("pending"))
    finally:
        await client.aclose()
        await api.aclose()
    minutes = settings.polling_seconds / 60
    problems = [] if window.valid else ["counters reset during the run"]
    if running < settings.running_servers:
        why = f"the partition has {total} CPUs" if running == total else "too few idle CPUs"
        problems.append(f"only {running} running: {why}")
    if lost:
        problems.append(f"{lost} pending spawns ended early")
    scenario = (
        f"{S4} ({settings.running_servers} running + {pending} pending asked, "
        f"{settings.polling_seconds:g} s)"
    )
    job_info = window.count(JOB_INFO_TYPES) / minutes
    by_hub = window.by(BENCH_USER) / minutes
    results.put(
        key,
        scenario,
        f"Slurm RPCs by the hub (as {BENCH_USER}) per minute",
        by_hub,
        note="; ".join(problems),
    )
    per_server = by_hub / max(1, running + pending)
    results.put(key, scenario, "... per server watched", per_server, digits=2)
    results.put(key, scenario, "cluster-wide job-info RPCs per minute", job_info)
    users = ", ".join(f"{user} {count}" for user, count in window.by_user.items() if count)
    results.notes.append(
        f"{key}, scenario 4: {running} running + {pending} pending for "
        f"{settings.polling_seconds:g} s: {window.by(BENCH_USER):.0f} RPCs by the hub; "
        f"cluster-wide info RPCs {window.count():.0f} ({window.breakdown()}); all RPCs by user: "
        f"{users or 'none'}."
    )


async def _start_batch(client, api, hub: HubProcess, names: list[str], settings: Settings) -> None:
    answers = await asyncio.gather(
        *(request_spawn(client, hub, BASE_OPTIONS, name) for name in names)
    )
    bad = [a.status_code for a in answers if a.status_code >= 400]
    if bad:
        raise RuntimeError(f"spawn requests answered {bad}")
    ready = await asyncio.gather(
        *(wait_ready(api, hub, name, settings.ready_timeout) for name in names)
    )
    if not all(ready):
        raise RuntimeError(f"servers {names}: only {sum(ready)} became ready")


async def _cpus_for(env: Mapping[str, str], wanted: int, timeout: float) -> tuple[int, int]:
    """How many 1-CPU servers can run (and the partition's CPUs): wait a while for others'
    jobs to free CPUs, then cap."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        idle, total = await asyncio.to_thread(cpu_counts, env, "cpu")
        if idle >= min(wanted, total) or asyncio.get_running_loop().time() > deadline:
            return min(wanted, idle), total
        await asyncio.sleep(2)


async def _until_jobs(env: Mapping[str, str], running: int, pending: int, timeout: float) -> None:
    """Wait until Slurm shows the benchmark user's jobs running and pending as asked."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        states = [state for _, state in await asyncio.to_thread(bench_jobs, env)]
        seen = (states.count("RUNNING"), states.count("PENDING"))
        if seen == (running, pending):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"expected {running} running + {pending} pending jobs, saw {seen}")
        await asyncio.sleep(0.5)
