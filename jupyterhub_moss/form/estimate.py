"""The start estimate: ``sbatch --test-only`` as the user, for the job ``start()`` would submit.

The arguments come from :func:`~jupyterhub_moss.batch_script.job_sbatch_arguments`, the one
function the batch script uses too, so the estimate cannot leave out what the admin adds
(``req_account``, ``req_qos``, ``req_options``, default memory and gres, reservation).
"""

from __future__ import annotations

import asyncio
import logging
import pwd
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..batch_script import ScriptSettings, job_sbatch_arguments
from ..context import FormContext
from ..limits import PartitionLimits
from ..log_safe import log_safe
from ..options import UserOptions, UserOptionsError, parse_user_options
from ..slurm.models import StartEstimate
from .choices import describe_duration
from .views import EstimateView

log = logging.getLogger(__name__)

ESTIMATE_SCRIPT = "#!/bin/sh\ntrue\n"


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


def describe_estimate(estimate: StartEstimate, now: datetime) -> EstimateView:
    """ "Would start now", or "Expected to start at 14:05 (in about 20 min)" in the hub's time."""
    if estimate.starts_now(now):
        return EstimateView("Would start now", True, estimate.start.isoformat())
    local = estimate.start.astimezone()
    same_day = local.date() == now.astimezone().date()
    when = f"{local:%H:%M}" if same_day else f"{local:%a %d %b %H:%M}"
    wait = describe_duration((estimate.start - now).total_seconds())
    return EstimateView(
        f"Expected to start at {when} (in about {wait})", False, estimate.start.isoformat()
    )


async def _ask(ctx: FormContext, args: list[str]) -> StartEstimate | None:
    estimator = ctx.estimator
    assert estimator is not None
    estimate = await estimator.estimate(ctx.user_name, args, ESTIMATE_SCRIPT)
    if estimate is None:
        # None is also the answer when this user asked for another estimate moments ago (the
        # Slurm layer spaces them out): ask once more when that spacing has passed. A request
        # that failed for real is then answered from the estimator's cache.
        await asyncio.sleep(estimator.min_spacing)
        estimate = await estimator.estimate(ctx.user_name, args, ESTIMATE_SCRIPT)
    return estimate


async def start_estimate(
    ctx: FormContext, values: Mapping[str, Any], now: datetime
) -> EstimateView | None:
    """When these options would start, or None (invalid options, or Slurm would not say)."""
    if ctx.estimator is None or ctx.script_settings is None:
        return None
    try:
        options = parse_user_options(values, ctx.limits, ctx.policy)
    except UserOptionsError:
        return None
    try:
        part = ctx.limits[options.partition]
        args = estimate_args(options, part, ctx.script_settings, home=home_of(ctx.user_name))
        estimate = await _ask(ctx, args)
    except Exception as error:  # an estimate is a nicety: never an error on the page
        # Slurm's refusals are None above; reaching here is a bug worth seeing in the log
        log.warning("no start estimate for %s: %s", log_safe(ctx.user_name), log_safe(repr(error)))
        return None
    return describe_estimate(estimate, now) if estimate is not None else None
