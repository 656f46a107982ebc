"""Scenarios 1-3: the spawn page under load, live refresh, and what both cost slurmctld.

1. ``GET /hub/spawn`` as a logged-in user: sequential (median, p90) and concurrent (requests
   per second, p50, p99), with ``GET /hub/home`` measured the same way as the hub's own floor.
2. Viewers with the page open, each polling what the page refreshes at the page's interval:
   ours polls the availability fragment; the reference has no fragment, so its users reload
   the full page.
3. slurmctld's info RPCs (sdiag differences) around the spawn-page requests of 1 and around 2:
   per 1000 page views, and per minute of viewers. Also per 1000 page views as a browser makes
   them: the page plus what it loads at once (our start estimate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tests.support.hub import HubProcess

from ..htmx_page import load_requests, polled_request
from ..hubs import BENCH_USER
from ..load import Samples, close_all, closed_loop, login, logins, periodic_viewers, sequential
from ..report import Results, Target
from ..settings import Settings
from ..slurmctld import INFO_TYPES, Window

S1_SEQ = "1. spawn page, sequential"
S1_HOME_SEQ = "1. /hub/home (floor), sequential"
S1_CONC = "1. spawn page, concurrent"
S1_HOME_CONC = "1. /hub/home (floor), concurrent"
S2 = "2. live refresh"
S3 = "3. controller load"

HTMX_HEADERS = {"HX-Request": "true"}
#: Both hubs read Slurm as BENCH_USER (see hubs.py), so sdiag's per-user count of that account
#: is what the spawner under test asked of slurmctld, whoever else uses the cluster.
BY_HUB = f"Slurm RPCs by the hub (as {BENCH_USER})"
#: One refresh of our cluster view: sinfo (partition + node info), scontrol show partition (who
#: may use each, issue 13) and scontrol show reservation.
RPCS_PER_REFRESH = 4
WARM_UP = 3  # first renders compile templates and fill caches: not measured


def _ms(seconds: float) -> float:
    return seconds * 1000


def half_of_reference(ours: float, reference: float | None) -> bool:
    return reference is not None and ours <= 0.5 * reference


def twice_reference(ours: float, reference: float | None) -> bool:
    return reference is not None and ours >= 2 * reference


async def run(
    hub: HubProcess,
    settings: Settings,
    env: Mapping[str, str],
    results: Results,
    say: Callable[[str], None],
) -> None:
    key = hub.name
    spawn_url, home_url = hub.hub_url("spawn"), hub.hub_url("home")
    client = await login(hub.hub_url(), BENCH_USER)
    try:
        for url in (home_url, spawn_url):
            await sequential(client, url, WARM_UP)
        page = await client.get(spawn_url)
        page.raise_for_status()
        seq = await _sequential_pages(key, client, spawn_url, home_url, settings, env, results, say)
        conc = await _concurrent_pages(key, hub, spawn_url, home_url, settings, env, results, say)
        windows = [seq, conc]
        if not all(window.valid for window, _ in windows):
            # Someone reset the counters meanwhile: count the concurrent load once more.
            say(f"{key}: sdiag counters were reset during scenario 1; counting its load again")
            windows = [await _count_concurrent_views(hub, spawn_url, settings, env)]
        _page_view_cost(key, windows, results)
        await _browser_page_views(key, client, spawn_url, settings, env, results, say)
        await _live_refresh(key, hub, spawn_url, page.text, settings, env, results, say)
    finally:
        await client.aclose()


async def _sequential_pages(key, client, spawn_url, home_url, settings, env, results, say):
    n = settings.sequential_requests
    home = await sequential(client, home_url, n)
    window = Window(env, reset=settings.sdiag_reset)
    window.start()
    spawn = await sequential(client, spawn_url, n)
    window.stop()
    say(f"{key}: sequential spawn page median {_ms(spawn.percentile(50)):.1f} ms")
    put_latency(
        results,
        key,
        S1_SEQ,
        spawn,
        n,
        "median",
        50,
        target=Target("ours ≤ 0.5 x reference", half_of_reference),
    )
    put_latency(results, key, S1_SEQ, spawn, n, "p90", 90)
    put_latency(results, key, S1_HOME_SEQ, home, n, "median", 50)
    put_latency(results, key, S1_HOME_SEQ, home, n, "p90", 90)
    results.put(key, S1_SEQ, f"errors (of {n})", spawn.errors, digits=0)
    results.put(
        key,
        S1_SEQ,
        "median / /hub/home's median, same hub",
        spawn.percentile(50) / home.percentile(50),
        digits=2,
        target=Target("ours ≤ 1.3 x /hub/home", lambda ours, _ref: ours <= 1.3),
    )
    return window, spawn.count


async def _concurrent_pages(key, hub, spawn_url, home_url, settings, env, results, say):
    c, seconds = settings.concurrent_clients, settings.concurrent_seconds
    clients = await logins(hub.hub_url(), BENCH_USER, c)
    try:
        home = await closed_loop(clients, home_url, seconds)
        window = Window(env, reset=settings.sdiag_reset)
        window.start()
        spawn = await closed_loop(clients, spawn_url, seconds)
        window.stop()
    finally:
        await close_all(clients)
    say(f"{key}: concurrent spawn page {spawn.rps:.1f} req/s, {spawn.errors} errors")
    label = f"{c} clients x {seconds:g} s"
    results.put(
        key,
        S1_CONC,
        f"requests/s ({label})",
        spawn.rps,
        target=Target("ours ≥ 2 x reference", twice_reference),
    )
    put_latency(results, key, S1_CONC, spawn, None, "p50", 50)
    put_latency(results, key, S1_CONC, spawn, None, "p99", 99)
    results.put(key, S1_CONC, "errors", spawn.errors, digits=0)
    results.put(key, S1_HOME_CONC, f"requests/s ({label})", home.rps)
    results.put(
        key,
        S1_CONC,
        "requests/s / /hub/home's, same hub",
        spawn.rps / home.rps if home.rps else float("nan"),
        digits=2,
        target=Target("ours ≥ 0.8 x /hub/home", lambda ours, _ref: ours >= 0.8),
    )
    put_latency(results, key, S1_HOME_CONC, home, None, "p50", 50)
    put_latency(results, key, S1_HOME_CONC, home, None, "p99", 99)
    return window, spawn.count


async def _count_concurrent_views(hub, spawn_url, settings, env) -> tuple[Window, int]:
    clients = await logins(hub.hub_url(), BENCH_USER, settings.concurrent_clients)
    try:
        window = Window(env, reset=settings.sdiag_reset)
        window.start()
        samples = await closed_loop(clients, spawn_url, settings.concurrent_seconds)
        window.stop()
    finally:
        await close_all(clients)
    return window, samples.count


def put_latency(
    results: Results,
    key: str,
    scenario: str,
    samples: Samples,
    n: int | None,
    name: str,
    p: float,
    target: Target | None = None,
) -> None:
    metric = f"{name} ({n} requests)" if n else name
    results.put(key, scenario, metric, _ms(samples.percentile(p)), unit="ms", target=target)


def _page_view_cost(key: str, windows: list[tuple[Window, int]], results: Results) -> None:
    """Scenario 3's first figure: the spawn-page requests of scenario 1, both kinds together."""
    total, views = Window(windows[0][0].env), 0
    for window, count in windows:
        total.add(window)
        views += count
    valid = "" if total.valid else "counters reset during the run"
    per_1000 = total.by(BENCH_USER) / views * 1000 if views else float("nan")
    results.put(key, S3, f"{BY_HUB} per 1000 spawn-page views (scenario 1)", per_1000, note=valid)
    results.notes.append(
        f"{key}, scenario 1: {views} spawn-page views: {total.by(BENCH_USER):.0f} RPCs by the "
        f"hub; cluster-wide info RPCs {total.count():.0f} ({total.breakdown()})."
    )


async def _browser_page_views(key, client, spawn_url, settings, env, results, say):
    """Page views as a browser makes them: the page, then what htmx loads at once."""
    n = settings.sequential_requests
    for _attempt in range(2):  # once more if someone reset the counters meanwhile
        window = Window(env, reset=settings.sdiag_reset)
        window.start()
        extra = 0
        for _ in range(n):
            page = await client.get(spawn_url)
            for url in load_requests(spawn_url, page.text):
                await client.get(url, headers=HTMX_HEADERS)
                extra += 1
        window.stop()
        if window.valid:
            break
    types = (*INFO_TYPES, "REQUEST_JOB_WILL_RUN")
    results.put(
        key,
        S3,
        f"{BY_HUB} per 1000 page views, as a browser loads them",
        window.by(BENCH_USER) / n * 1000,
        note="" if window.valid else "counters reset during the run",
    )
    results.notes.append(
        f"{key}, browser-like page views: {n} views with {extra} load-time fragment requests: "
        f"{window.by(BENCH_USER):.0f} RPCs by the hub; cluster-wide {window.count(types):.0f} "
        f"({window.breakdown(types)}). Every view is by the same user, so per-user rate limits "
        "apply to all of them."
    )
    say(f"{key}: {n} browser-like page views, {window.by(BENCH_USER):.0f} RPCs by the hub")


async def _live_refresh(key, hub, spawn_url, page_html, settings, env, results, say):
    polled = polled_request(spawn_url, page_html, "/availability/")
    if polled is not None:
        url, page_interval = polled
        what = f"availability fragment (page polls every {page_interval:g} s)"
        headers = HTMX_HEADERS
    else:
        url, headers = spawn_url, None
        what = "full spawn page (no fragment to poll)"
    interval = float(settings.refresh_seconds)
    v, seconds = settings.viewers, settings.viewer_seconds
    # A few viewers first: the controller's cost at two audience sizes shows how it grows.
    few, few_seconds = settings.few_viewers, settings.few_viewer_seconds
    _, few_window = await _viewing(hub, url, headers, few, few_seconds, settings, env)
    samples, window = await _viewing(hub, url, headers, v, seconds, settings, env)
    say(f"{key}: {v} viewers, p99 {_ms(samples.percentile(99)):.1f} ms, {samples.errors} errors")
    label = f"{v} viewers every {interval:g} s for {seconds:g} s"
    results.put(key, S2, f"p99 ({label})", _ms(samples.percentile(99)), unit="ms")
    results.put(key, S2, "median", _ms(samples.percentile(50)), unit="ms")
    results.put(
        key,
        S2,
        "errors",
        samples.errors,
        digits=0,
        note=", ".join(f"{k} x{n}" for k, n in samples.error_kinds.items()),
    )
    results.put(key, S2, "requests", samples.count, digits=0)
    per_minute = window.by(BENCH_USER) / samples.elapsed * 60
    valid = "" if window.valid else "counters reset during the run"
    few_per_minute = few_window.by(BENCH_USER) / few_seconds * 60
    results.put(
        key,
        S3,
        f"{BY_HUB} per minute of {few} viewers",
        few_per_minute,
        note="" if few_window.valid else "counters reset during the run",
    )
    most = (60 / interval + 1) * RPCS_PER_REFRESH
    results.put(
        key,
        S3,
        f"{BY_HUB} per minute of {v} viewers",
        per_minute,
        note=valid,
        target=Target(
            f"flat: ≤ one refresh ({RPCS_PER_REFRESH} RPCs) per {interval:g} s (≤ {most:g}/min)",
            lambda ours, _ref: ours <= most,
        ),
    )
    partition_per_minute = window.count(("REQUEST_PARTITION_INFO",)) / samples.elapsed * 60
    results.put(
        key,
        S3,
        f"cluster-wide partition-info RPCs per minute of {v} viewers",
        partition_per_minute,
        note=valid,
    )
    results.notes.append(
        f"{key}, scenario 2: polled the {what}; {samples.count} requests in "
        f"{samples.elapsed:.0f} s: {window.by(BENCH_USER):.0f} RPCs by the hub; cluster-wide "
        f"info RPCs {window.count():.0f} ({window.breakdown()})."
    )


async def _viewing(hub, url, headers, viewers, seconds, settings, env) -> tuple[Samples, Window]:
    """``viewers`` logged-in clients polling ``url`` for ``seconds``, inside one sdiag window.

    Measured again (once) when someone reset the counters during the window.
    """
    clients = await logins(hub.hub_url(), BENCH_USER, viewers)
    try:
        for _attempt in range(2):
            window = Window(env, reset=settings.sdiag_reset)
            window.start()
            samples = await periodic_viewers(
                clients, url, float(settings.refresh_seconds), seconds, headers
            )
            window.stop()
            if window.valid:
                break
    finally:
        await close_all(clients)
    return samples, window
