"""The one registry of the hub process's shared Slurm services, and their shutdown.

A hub reads Slurm through a few long-lived objects, one per configuration, shared by every
spawner and request: the :class:`~.view.ClusterView`, the :class:`~.accounts_view.AccountsView`,
the :class:`~.jobs.JobStatusPoller` and the :class:`~.estimates.StartEstimator`. This module
creates each on first use, hands out the same object for the same configuration, and closes them
all when the hub stops (:func:`close_all`, called from :mod:`jupyterhub_moss.hub_config`).
Creating a service runs nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar, cast

from ..log_safe import log_safe
from .accounts_view import AccountsView
from .commands import SlurmRunner
from .estimates import StartEstimator
from .jobs import JobStatusPoller
from .view import MIN_INTERVAL, ClusterView

log = logging.getLogger(__name__)


class SharedService(Protocol):
    async def close(self) -> None: ...


Service = TypeVar("Service", bound=SharedService)

# (kind, configuration...) -> the service; the kind keeps the kinds' keys apart
_services: dict[tuple, SharedService] = {}


def _shared(key: tuple, create: Callable[[], Service]) -> Service:
    service = _services.get(key)
    if service is None:
        service = _services[key] = create()
    return cast(Service, service)


def cluster_view(runner: SlurmRunner, interval: float) -> ClusterView:
    """The view for this runner configuration and refresh interval (clamped as the view
    clamps it, so intervals that end up the same share one view)."""
    key = ("cluster view", runner.cache_key(), max(float(interval), MIN_INTERVAL))
    return _shared(key, lambda: ClusterView(runner, interval))


def accounts_view(runner: SlurmRunner, interval: float) -> AccountsView:
    """The view of the accounting database for this runner configuration and interval."""
    key = ("accounts view", runner.cache_key(), float(interval))
    return _shared(key, lambda: AccountsView(runner, interval))


def job_poller(runner: SlurmRunner, interval: float) -> JobStatusPoller:
    """The job status poller for this runner configuration and poll interval."""
    key = ("job poller", runner.cache_key(), float(interval))
    return _shared(key, lambda: JobStatusPoller(runner, interval=interval, min_interval=1.0))


def start_estimator(runner: SlurmRunner, user_prefix: str) -> StartEstimator:
    """The start estimator for this runner configuration and command prefix for the user."""
    key = ("start estimator", runner.cache_key(), user_prefix)
    return _shared(key, lambda: StartEstimator(runner, user_prefix))


async def close_all() -> int:
    """Close every service (background loops, work in flight) and forget them all.

    Returns how many closed cleanly. A service asked for afterwards is a new one. One service
    failing to close is logged and does not keep the others open.
    """
    services = list(_services.values())
    _services.clear()
    results = await asyncio.gather(
        *(service.close() for service in services), return_exceptions=True
    )
    closed = 0
    for service, result in zip(services, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("closing %s failed: %s", type(service).__name__, log_safe(repr(result)))
        else:
            closed += 1
    return closed
