"""The start estimate: ``sbatch --test-only`` as the user, for the job ``start()`` would submit.

The arguments come from :func:`~jupyterhub_moss.batch_script.job_sbatch_arguments`, the one
function the batch script uses too, so the estimate cannot leave out what the admin adds
(``req_account``, ``req_qos``, ``req_options``, default memory and gres, reservation).

"Start sooner on…": when the chosen partition would not start at once, the same request is
estimated on each other partition the user may use where it validates unchanged, and those
that would start at least :data:`SOONER_MARGIN` sooner are offered. Each partition is a lane
of the shared estimator, spaced by the page's refresh interval: one user costs slurmctld at
most one estimate per partition per interval, however many tabs and viewers ask.
"""

from __future__ import annotations

import asyncio
import logging
import pwd
from collections.abc import Awaitable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ..batch_script import ScriptSettings, job_sbatch_arguments
from ..context import FormContext
from ..limits import PartitionLimits
from ..log_safe import log_safe
from ..options import UserOptions, UserOptionsError, parse_user_options
from ..slurm.models import StartEstimate
from .choices import describe_duration
from .values import SIMPLE, tab_partitions
from .views import EstimateView, StartSoonerView

log = logging.getLogger(__name__)

ESTIMATE_SCRIPT = "#!/bin/sh\ntrue\n"
#: Another partition is offered only when it would start at least this much sooner.
SOONER_MARGIN = timedelta(minutes=1)
#: sbatch processes one page request runs at once for the other partitions.
ALTERNATIVES_AT_ONCE = 4
#: Seconds an other partition's estimate waits for its lane. Their lanes were taken moments
#: after the chosen one's, so they free as it runs again; a lane taken later (the user chose
#: that partition a moment ago) is not waited for: the chosen partition's answer matters more.
ALTERNATIVE_MAX_WAIT = 3.0


def estimate_args(
    options: UserOptions, part: PartitionLimits, settings: ScriptSettings, *, home: str = ""
) -> list[str]:
    """The real submission's sbatch arguments (admin's included, in the script's order), plus
    what ``--test-only`` needs in place of the script's own ``#SBATCH`` lines."""
    fixed = [*([f"--chdir={home}"] if home else []), "--output=/dev/null"]
    return job_sbatch_arguments(options, part, settings, fixed=fixed)


def home_of(user_name: str) -> str:
    """The user's home folder: sbatch as the user needs a folder the user may enter, as the
    real submission has."""
    try:
        return pwd.getpwnam(user_name).pw_dir
    except KeyError:
        return ""


def describe_wait(estimate: StartEstimate, now: datetime) -> str:
    """ "would start now", or "in about 20 min"."""
    if estimate.starts_now(now):
        return "would start now"
    return f"in about {describe_duration((estimate.start - now).total_seconds())}"


def describe_estimate(
    estimate: StartEstimate,
    now: datetime,
    *,
    partition: str = "",
    sooner: tuple[StartSoonerView, ...] = (),
) -> EstimateView:
    """ "Would start now", or "Expected to start at 14:05 (in about 20 min)" in the hub's time,
    for the chosen ``partition``; ``sooner``: other partitions that would start sooner."""
    when = describe_wait(estimate, now)
    if estimate.starts_now(now):
        text = "Would start now"
    else:
        local = estimate.start.astimezone()
        same_day = local.date() == now.astimezone().date()
        at = f"{local:%H:%M}" if same_day else f"{local:%a %d %b %H:%M}"
        text = f"Expected to start at {at} ({when})"
    return EstimateView(
        text,
        estimate.starts_now(now),
        estimate.start.isoformat(),
        partition=partition or estimate.partition or "",
        when=when,
        sooner=sooner,
    )


def fitting_alternatives(
    ctx: FormContext, values: Mapping[str, Any], chosen: UserOptions
) -> list[UserOptions]:
    """The same request on each other partition the user may use, where it validates as it is:
    nothing dropped or adjusted (only the default environment may follow the partition)."""
    fits = []
    for name in ctx.limits:
        if name == chosen.partition or ctx.policy.partition_refusal(name):
            continue
        try:
            other = parse_user_options({**values, "partition": name}, ctx.limits, ctx.policy)
        except UserOptionsError:
            continue
        # e.g. an unset CPU count defaults to each partition's own cap: not the same request
        same = {"partition": chosen.partition, "environment_id": chosen.environment_id}
        if other.model_copy(update=same) == chosen:
            fits.append(other)
    return fits


def sooner_than(
    chosen: StartEstimate, answers: list[tuple[UserOptions, StartEstimate | None]]
) -> list[tuple[str, StartEstimate]]:
    """The partitions that would start at least :data:`SOONER_MARGIN` before ``chosen``,
    soonest first (ties in the admin's order)."""
    sooner = [
        (options.partition, estimate)
        for options, estimate in answers
        if estimate is not None and chosen.start - estimate.start >= SOONER_MARGIN
    ]
    return sorted(sooner, key=lambda pair: pair[1].start)


def _ask(
    ctx: FormContext, options: UserOptions, home: str, *, max_wait: float | None = None
) -> Awaitable[StartEstimate | None]:
    """One estimate in the partition's lane: spaced by the page's refresh interval (never less
    than the estimator's own spacing: a hub may refresh its table, which costs Slurm nothing,
    far more often), shared by every tab and viewer asking the same of the same user."""
    estimator = ctx.estimator
    assert estimator is not None and ctx.script_settings is not None
    args = estimate_args(options, ctx.limits[options.partition], ctx.script_settings, home=home)
    return estimator.estimate_in_turn(
        ctx.user_name,
        args,
        ESTIMATE_SCRIPT,
        lane=options.partition,
        spacing=max(float(ctx.refresh_seconds), estimator.min_spacing),
        max_wait=max_wait,
    )


async def _alternatives(
    ctx: FormContext, values: Mapping[str, Any], chosen: UserOptions, home: str
) -> list[tuple[UserOptions, StartEstimate | None]]:
    """Estimates of the other partitions that fit, a few at once."""
    at_once = asyncio.Semaphore(ALTERNATIVES_AT_ONCE)

    async def one(options: UserOptions) -> StartEstimate | None:
        async with at_once:
            return await _ask(ctx, options, home, max_wait=ALTERNATIVE_MAX_WAIT)

    others = fitting_alternatives(ctx, values, chosen)
    answers = await asyncio.gather(*(one(o) for o in others), return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            _log_failure(ctx, answer)
    return [
        (options, None if isinstance(answer, BaseException) else answer)
        for options, answer in zip(others, answers, strict=True)
    ]


def _sooner_views(
    ctx: FormContext, sooner: list[tuple[str, StartEstimate]], now: datetime
) -> tuple[StartSoonerView, ...]:
    simple = {p.name for p in tab_partitions(ctx.limits, SIMPLE)}
    return tuple(
        StartSoonerView(name, describe_wait(e, now), e.start.isoformat(), name in simple)
        for name, e in sooner
    )


def _log_failure(ctx: FormContext, error: BaseException) -> None:
    # Slurm's refusals are None; reaching here is a bug worth seeing in the log
    log.warning("no start estimate for %s: %s", log_safe(ctx.user_name), log_safe(repr(error)))


async def start_estimate(
    ctx: FormContext, values: Mapping[str, Any], now: datetime
) -> EstimateView | None:
    """When these options would start, and on which other partitions they would start sooner;
    or None (invalid options, or Slurm would not say)."""
    if ctx.estimator is None or ctx.script_settings is None:
        return None
    try:
        options = parse_user_options(values, ctx.limits, ctx.policy)
    except UserOptionsError:
        return None
    try:
        home = home_of(ctx.user_name)
        estimate = await _ask(ctx, options, home)
        if estimate is None:
            return None
        sooner: list[tuple[str, StartEstimate]] = []
        if not estimate.starts_now(now):  # nothing starts sooner than now
            sooner = sooner_than(estimate, await _alternatives(ctx, values, options, home))
    except Exception as error:  # an estimate is a nicety: never an error on the page
        _log_failure(ctx, error)
        return None
    return describe_estimate(
        estimate, now, partition=options.partition, sooner=_sooner_views(ctx, sooner, now)
    )
