"""Benchmarks of this project's spawner against the reference, on the local Slurm cluster.

Run through ``benchmarks/run`` (which starts the cluster and sets its environment)::

    benchmarks/run              # the full run (about 30 minutes)
    benchmarks/run --quick      # a few seconds per scenario, to check that everything works
    benchmarks/run --only 1-3   # some scenarios only

For each group of scenarios a fresh hub is started for ours, then one for the reference, with
the same configuration; the figures of both land side by side in one table, which is printed
and written into ``docs/benchmarks.md``. Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

from tests.support.hub import HubProcess

from .hubs import CACHE, Implementation, ensure_reference_venv, implementations, running_hub
from .jobs import cancel_bench_jobs, node_names, other_jobs
from .report import DOC, Results, machine_info, results_section, write_doc
from .scenarios import page, polling, released, spawn
from .settings import FULL, QUICK, Settings

ScenarioRun = Callable[
    [HubProcess, Settings, Mapping[str, str], Results, Callable[[str], None]], Awaitable[None]
]


@dataclass(frozen=True)
class Group:
    """Scenarios that share one fresh hub per implementation."""

    name: str
    numbers: frozenset[int]
    run: ScenarioRun
    config: Callable[[Settings], str] = lambda _settings: ""


ALL_SCENARIOS = frozenset(range(1, 8))


def groups() -> list[Group]:
    return [
        Group("page", frozenset({1, 2, 3}), page.run),
        Group("polling", frozenset({4}), polling.run, polling.config),
        Group("spawn", frozenset({5}), spawn.run_ready),
        Group(
            "failure",
            frozenset({6}),
            spawn.run_failure,
            lambda settings: f"c.Spawner.start_timeout = {settings.failure_start_timeout}\n",
        ),
        # after 5: its target compares with scenario 5's figure of the same hub
        Group("released", frozenset({7}), released.run),
    ]


@dataclass
class Quietness:
    """What else was going on: other users' jobs, and whether the cluster's nodes changed."""

    most_other_jobs: int = 0
    layouts: list[str] = field(default_factory=list)

    def look(self, env: Mapping[str, str]) -> None:
        try:
            self.most_other_jobs = max(self.most_other_jobs, other_jobs(env))
            nodes = node_names(env)
        except RuntimeError:
            return
        if not self.layouts or self.layouts[-1] != nodes:
            self.layouts.append(nodes)

    def summary(self) -> str:
        if self.most_other_jobs == 0 and len(self.layouts) <= 1:
            return "quiet: no other jobs seen between scenarios"
        parts = []
        if self.most_other_jobs:
            parts.append(f"other users' jobs seen between scenarios: up to {self.most_other_jobs}")
        if len(self.layouts) > 1:
            parts.append("the cluster was restarted with other nodes: " + " → ".join(self.layouts))
        return "NOT quiet: " + "; ".join(parts) + " (a smoke test, not figures to publish)"


quiet = Quietness()


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def parse_only(text: str) -> set[int]:
    chosen: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            chosen.update(range(int(low), int(high) + 1))
        elif part.strip():
            chosen.add(int(part))
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds per scenario")
    parser.add_argument("--only", default="1-7", help="scenario numbers, e.g. 1-3,5")
    parser.add_argument(
        "--implementations", default="ours,reference", help="which hubs to run (comma-separated)"
    )
    parser.add_argument(
        "--sdiag-reset",
        action="store_true",
        help="run 'sdiag -r' before each window (before/after differences are used anyway)",
    )
    parser.add_argument(
        "--no-doc",
        action="store_true",
        help=f"print the table only; leave {DOC.name} alone (the default when --only or "
        "--implementations leaves something out)",
    )
    return parser.parse_args(argv)


async def run_group(
    group: Group,
    implementation: Implementation,
    settings: Settings,
    env: Mapping[str, str],
    results: Results,
) -> None:
    root = CACHE / "runs" / f"{group.name}-{implementation.key}"
    say(f"{group.name}: starting a hub for {implementation.label}")
    cancel_bench_jobs(env)
    quiet.look(env)
    try:
        with running_hub(implementation, root, group.config(settings)) as hub:
            await group.run(hub, settings, env, results, say)
    except Exception as error:  # one broken scenario must not lose the others' figures
        say(f"{group.name} failed for {implementation.label}: {error!r}")
        traceback.print_exc()
        results.notes.append(
            f"{implementation.key}: scenarios {sorted(group.numbers)} failed: "
            f"{type(error).__name__}: {str(error)[:300]} (hub log: {root / 'jupyterhub.log'})"
        )
    finally:
        quiet.look(env)
        leaked = cancel_bench_jobs(env)
        if leaked:
            say(f"cancelled leftover benchmark jobs {', '.join(leaked)}")


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A SIGTERM unwinds like Ctrl-C: hubs stopped, the benchmark user's jobs cancelled.
    main_task = asyncio.current_task()
    if main_task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    settings: Settings = QUICK if args.quick else FULL
    settings = replace(settings, sdiag_reset=args.sdiag_reset)
    env = dict(os.environ)
    if "SLURM_CONF" not in env:
        say('SLURM_CONF is not set: run through benchmarks/run, or eval "$(dev/cluster env)"')
        return 2
    only = parse_only(args.only)
    wanted = {name.strip() for name in args.implementations.split(",")}
    chosen = [impl for impl in implementations(settings.refresh_seconds) if impl.key in wanted]
    if any(impl.key == "reference" for impl in chosen):
        ensure_reference_venv(say)
    results = Results()
    started = time.monotonic()
    for group in groups():
        if not group.numbers & only:
            continue
        for implementation in chosen:
            await run_group(group, implementation, settings, env, results)
    mode = "quick (--quick: smoke run, not for comparison)" if settings.quick else "full"
    info = machine_info(mode)
    info["duration"] = f"{(time.monotonic() - started) / 60:.1f} min"
    info["cluster"] = quiet.summary()
    section = results_section(results, info)
    print(section)
    complete = only >= ALL_SCENARIOS and len(chosen) == len(implementations(1))
    if args.no_doc or not complete:
        say(f"{DOC} left as it was (only a complete run of both hubs writes it)")
    else:
        write_doc(section)
        say(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted: hubs stopped, the benchmark's jobs cancelled")
        sys.exit(130)
