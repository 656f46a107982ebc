"""Start sooner on…: the estimate also checks the other partitions that take the same request.

Slurm is replaced by a query that answers per partition; the rules tested here are which
partitions fit (the one validator, nothing adjusted), which are offered (strictly sooner, by a
minute at least), what the buttons send, and how often each user's partitions are asked.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from jupyterhub_moss.batch_script import ScriptSettings
from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.context import FormContext
from jupyterhub_moss.form import estimate, render_fragment
from jupyterhub_moss.form.estimate import fitting_alternatives, start_estimate
from jupyterhub_moss.limits import merge_partition_limits
from jupyterhub_moss.options import OptionsPolicy, parse_user_options
from jupyterhub_moss.slurm.commands import SlurmCommandError
from jupyterhub_moss.slurm.estimates import StartEstimator
from jupyterhub_moss.slurm.models import StartEstimate
from jupyterhub_moss.slurm.partitions import parse_sinfo

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SINFO = parse_sinfo((FIXTURES / "slurm" / "sinfo_single_idle.txt").read_text())
ENVIRONMENTS = {"default": {"path": "/opt/jupyter/bin/"}}
PARTITIONS = {
    "cpu": {"gpu": "", "jupyter_environments": ENVIRONMENTS},
    "gpu": {"jupyter_environments": ENVIRONMENTS},
    "debug": {"gpu": "", "simple": False, "jupyter_environments": ENVIRONMENTS},
}
LIMITS = merge_partition_limits(load_partitions(PARTITIONS), SINFO)
NOW = datetime.now(timezone.utc)
ONE_CPU = {"partition": "cpu", "nprocs": "1", "runtime": "00:30:00"}


class PerPartition:
    """``sbatch --test-only`` as a table: partition → start, counting the runs per partition."""

    def __init__(self, **waits: timedelta) -> None:
        self.waits = waits
        self.runs: dict[str, int] = {}

    async def __call__(self, username: str, args: list[str], script: str) -> StartEstimate:
        partition = next(a.split("=", 1)[1] for a in args if a.startswith("--partition="))
        self.runs[partition] = self.runs.get(partition, 0) + 1
        await asyncio.sleep(0)
        if partition not in self.waits:
            raise SlurmCommandError(["sbatch"], 1, "Requested node configuration is not available")
        return StartEstimate(datetime.now(timezone.utc) + self.waits[partition], 1, "n1", partition)


@pytest.fixture(autouse=True)
def known_home(monkeypatch):
    monkeypatch.setattr(estimate, "home_of", lambda _user: "/home/alice")


def context(
    slurm: PerPartition,
    policy: OptionsPolicy | None = None,
    estimator: StartEstimator | None = None,
    refresh: int = 30,
) -> FormContext:
    return FormContext(
        user_name="alice",
        server_name="",
        snapshot=None,
        limits=LIMITS,
        policy=policy or OptionsPolicy(),
        script_settings=ScriptSettings(home_dir="/home/alice"),
        estimator=estimator or StartEstimator(query=slurm),
        refresh_seconds=refresh,
    )


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


# -- which partitions fit ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_values", "fits"),
    [
        (ONE_CPU, ["gpu", "debug"]),
        ({**ONE_CPU, "runtime": "02:00:00"}, ["gpu"]),  # debug's limit is 1 h
        ({**ONE_CPU, "partition": "gpu", "ngpus": "1"}, []),  # only gpu has GPUs
        ({**ONE_CPU, "partition": "gpu", "ngpus": "0"}, ["cpu", "debug"]),
        ({**ONE_CPU, "nprocs": "9"}, []),  # invalid everywhere, chosen included
    ],
)
def test_the_partitions_that_fit_take_the_same_request_unchanged(request_values, fits):
    try:
        chosen = parse_user_options(request_values, LIMITS)
    except ValueError:
        assert fits == []
        return
    others = fitting_alternatives(context(PerPartition()), request_values, chosen)
    assert [o.partition for o in others] == fits
    for other in others:
        assert (other.nprocs, other.ngpus, other.memory, other.runtime) == (
            chosen.nprocs,
            chosen.ngpus,
            chosen.memory,
            chosen.runtime,
        )


def test_a_partition_the_user_may_not_use_is_never_checked():
    policy = OptionsPolicy(refused_partitions=(("gpu", "AllowGroups: not in gpuusers"),))
    chosen = parse_user_options(ONE_CPU, LIMITS, policy)
    ctx = context(PerPartition(), policy)
    assert [o.partition for o in fitting_alternatives(ctx, ONE_CPU, chosen)] == ["debug"]


def test_a_default_that_differs_between_partitions_is_not_the_same_request():
    """No CPU count given: the default is capped by each partition, so 8 on one is not 2 on
    another (here debug's cap is lowered by the admin)."""
    limits = merge_partition_limits(
        load_partitions({**PARTITIONS, "debug": {**PARTITIONS["debug"], "max_nprocs": 2}}), SINFO
    )
    policy = OptionsPolicy(default_nprocs=8)
    values = {"partition": "cpu", "runtime": "00:30:00"}
    chosen = parse_user_options(values, limits, policy)
    ctx = FormContext("alice", "", None, limits, policy)
    assert chosen.nprocs == 8
    assert [o.partition for o in fitting_alternatives(ctx, values, chosen)] == ["gpu"]


# -- which are offered -------------------------------------------------------------------------


def test_sooner_partitions_are_offered_soonest_first_and_the_chosen_ones_wait_is_said():
    slurm = PerPartition(cpu=hours(2), gpu=timedelta(0), debug=timedelta(minutes=30))
    view = asyncio.run(start_estimate(context(slurm), ONE_CPU, NOW))
    assert view is not None and not view.starts_now
    assert [s.partition for s in view.sooner] == ["gpu", "debug"]
    assert view.sooner_summary == (
        "gpu would start now; debug in about 30 min; cpu (chosen) in about 2 h"
    )


def test_nothing_is_offered_or_asked_when_the_chosen_partition_starts_now():
    slurm = PerPartition(cpu=timedelta(0), gpu=timedelta(0), debug=timedelta(0))
    view = asyncio.run(start_estimate(context(slurm), ONE_CPU, NOW))
    assert view is not None and view.starts_now and view.sooner == ()
    assert slurm.runs == {"cpu": 1}


def test_a_partition_less_than_a_minute_sooner_or_later_is_not_offered():
    slurm = PerPartition(cpu=hours(1), gpu=hours(1) - timedelta(seconds=30), debug=hours(3))
    view = asyncio.run(start_estimate(context(slurm), ONE_CPU, NOW))
    assert view is not None and view.sooner == ()
    assert slurm.runs == {"cpu": 1, "gpu": 1, "debug": 1}


def test_a_partition_slurm_refuses_is_left_out_and_the_rest_still_shown():
    slurm = PerPartition(cpu=hours(2), gpu=timedelta(0))  # debug: refused
    view = asyncio.run(start_estimate(context(slurm), ONE_CPU, NOW))
    assert view is not None and [s.partition for s in view.sooner] == ["gpu"]


# -- what the page shows and sends -------------------------------------------------------------


def estimate_fragment(ctx: FormContext, tab: str, values: dict[str, str]) -> BeautifulSoup:
    query = {k: [v.encode()] for k, v in {**values, "moss_tab": tab}.items()}
    return BeautifulSoup(asyncio.run(render_fragment(ctx, "estimate", query)), "html.parser")


@pytest.mark.parametrize(
    ("tab", "debug_vals", "debug_text"),
    [
        (
            "simple",
            {"partition": "debug", "moss_tab": "advanced"},
            "Switch to debug (Advanced tab)",
        ),
        ("advanced", {"partition": "debug"}, "Switch to debug"),
    ],
)
def test_each_suggestion_is_a_button_that_asks_for_the_body_with_only_the_partition_changed(
    tab, debug_vals, debug_text
):
    slurm = PerPartition(cpu=hours(2), gpu=timedelta(0), debug=timedelta(minutes=30))
    soup = estimate_fragment(context(slurm), tab, ONE_CPU)
    buttons = soup.select("button.moss-start-sooner-switch")
    assert [json.loads(b["hx-vals"]) for b in buttons] == [{"partition": "gpu"}, debug_vals]
    assert [b.text for b in buttons] == ["Switch to gpu", debug_text]
    for button in buttons:
        assert button["type"] == "button"  # never submits the spawn form
        assert button["hx-get"].endswith("/moss/form/body/alice/")
        assert (button["hx-include"], button["hx-target"]) == ("closest form", "#moss-form-body")
    group = soup.select_one("[role=group]")
    summary = soup.select_one(f"#{group['aria-labelledby']}")
    assert "gpu would start now; debug in about 30 min; cpu (chosen) in about 2 h" in summary.text


def test_the_body_a_switch_asks_for_keeps_the_resources():
    """What the gpu button sends: the form's values with partition=gpu (hx-vals win)."""
    query = {"moss_tab": "simple", **ONE_CPU, "partition": "gpu"}
    html = asyncio.run(
        render_fragment(
            context(PerPartition()), "body", {k: [v.encode()] for k, v in query.items()}
        )
    )
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one("input[name=partition][value=gpu]").has_attr("checked")
    assert soup.select_one("select[name=nprocs] option[selected]")["value"] == "1"
    assert soup.select_one("select[name=runtime] option[selected]")["value"] == "00:30:00"


# -- the rate limit: one estimate per partition per user per refresh interval ------------------


class VirtualTime:
    """The estimator's clock and sleep, in virtual time: when every task waits, the earliest
    sleeper wakes and the clock jumps to its time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._sleepers: list = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), woken))
        await woken

    def run(self, *coroutines):
        async def main():
            tasks = [asyncio.ensure_future(c) for c in coroutines]
            while not all(t.done() for t in tasks):
                for _ in range(20):  # let everything that can run, run
                    await asyncio.sleep(0)
                if self._sleepers:
                    at, _, woken = heapq.heappop(self._sleepers)
                    self.now = max(self.now, at)
                    woken.set_result(None)
            return [t.result() for t in tasks]

        return asyncio.run(main())


def test_lanes_are_per_user_and_partition():
    time = VirtualTime()
    slurm = PerPartition(cpu=hours(1), gpu=hours(1))
    estimator = StartEstimator(query=slurm, clock=time.clock, sleep=time.sleep)

    async def ask(user: str, partition: str, cpus: int) -> StartEstimate | None:
        args = [f"--partition={partition}", f"--cpus-per-task={cpus}"]
        return await estimator.estimate(user, args, "", lane=partition, spacing=30)

    async def scenario() -> None:
        assert await ask("alice", "cpu", 1) is not None
        assert await ask("alice", "gpu", 1) is not None  # another lane
        assert await ask("bob", "cpu", 2) is not None  # another user
        assert await ask("alice", "cpu", 2) is None  # alice's cpu lane is taken
        assert await ask("alice", "cpu", 1) is not None  # ...but what it ran is cached
        time.now += 30
        assert await ask("alice", "cpu", 2) is not None

    time.run(scenario())
    assert slurm.runs == {"cpu": 3, "gpu": 1}


def test_a_held_back_request_waits_its_turn_and_the_newest_takes_it():
    time = VirtualTime()
    slurm = PerPartition(cpu=hours(1))
    estimator = StartEstimator(query=slurm, clock=time.clock, sleep=time.sleep)

    def ask(cpus: int):
        args = ["--partition=cpu", f"--cpus-per-task={cpus}"]
        return estimator.estimate_in_turn("alice", args, "", lane="cpu", spacing=30)

    async def scenario() -> list[StartEstimate | None]:
        await ask(1)
        started = time.now
        older = asyncio.ensure_future(ask(2))
        await asyncio.sleep(0)
        newer = [asyncio.ensure_future(ask(4)) for _ in range(3)]  # three tabs, one request
        results = await asyncio.gather(older, *newer)
        assert time.now >= started + 30  # they waited for the lane
        return results

    [(older, *newer)] = time.run(scenario())
    assert older is None  # superseded by the later change
    assert all(r is not None for r in newer) and len({id(r) for r in newer}) == 1
    assert slurm.runs == {"cpu": 2}


def test_an_other_partition_waits_for_its_lane_only_briefly():
    time = VirtualTime()
    slurm = PerPartition(gpu=hours(1))
    estimator = StartEstimator(query=slurm, clock=time.clock, sleep=time.sleep)

    def ask(cpus: int, max_wait: float):
        args = ["--partition=gpu", f"--cpus-per-task={cpus}"]
        return estimator.estimate_in_turn(
            "alice", args, "", lane="gpu", spacing=30, max_wait=max_wait
        )

    async def scenario() -> None:
        await ask(1, 3)
        time.now += 28
        assert await ask(2, 1) is None and time.now == 1028  # frees in 2 s: too long to wait
        assert await ask(2, 3) is not None and time.now == 1030  # waited for it

    time.run(scenario())
    assert slurm.runs == {"gpu": 2}


def test_a_request_slurm_refused_is_answered_at_once_without_waiting():
    time = VirtualTime()
    slurm = PerPartition()  # refuses every partition
    estimator = StartEstimator(query=slurm, clock=time.clock, sleep=time.sleep)

    async def scenario() -> list[StartEstimate | None]:
        ask = estimator.estimate_in_turn
        return [await ask("alice", ["--partition=cpu"], "", lane="cpu") for _ in range(3)]

    assert time.run(scenario()) == [[None, None, None]]
    assert time.now == 1000.0 and slurm.runs == {"cpu": 1}


@pytest.mark.parametrize(("refresh", "spacing"), [(30, 30), (2, 5), (0, 5)])
def test_a_partition_runs_once_per_refresh_interval_or_the_estimators_spacing(refresh, spacing):
    time = VirtualTime()
    slurm = PerPartition(cpu=timedelta(0))
    estimator = StartEstimator(query=slurm, clock=time.clock, sleep=time.sleep, min_spacing=5)
    ctx = context(slurm, estimator=estimator, refresh=refresh)

    async def two_changes() -> None:
        for cpus in ("1", "2"):
            assert await start_estimate(ctx, {**ONE_CPU, "nprocs": cpus}, NOW) is not None

    time.run(two_changes())
    assert time.now - 1000.0 == spacing  # the second waited for the lane
    assert slurm.runs == {"cpu": 2}


def test_twenty_viewers_changing_the_request_cost_one_estimate_per_partition_per_interval():
    """20 tabs and viewers of alice's form, each sending other CPU counts, for 10 intervals."""
    time = VirtualTime()
    slurm = PerPartition(cpu=hours(2), gpu=timedelta(0), debug=timedelta(minutes=10))
    estimator = StartEstimator(query=slurm, clock=time.clock, sleep=time.sleep)
    ctx = context(slurm, estimator=estimator, refresh=30)
    shown: list[object] = []

    async def viewer(n: int) -> None:
        for step in range(20):
            values = {**ONE_CPU, "nprocs": str(1 + (n + step) % 4)}
            shown.append(await start_estimate(ctx, values, datetime.now(timezone.utc)))
            await time.sleep(15)

    time.run(*(viewer(n) for n in range(20)))
    intervals = (time.now - 1000.0) / 30
    assert any(v is not None and v.sooner for v in shown)  # the feature did run
    for partition in ("cpu", "gpu", "debug"):
        assert 1 <= slurm.runs[partition] <= intervals + 1, (partition, slurm.runs, intervals)
