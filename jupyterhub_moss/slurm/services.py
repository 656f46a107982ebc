"""TEMPORARY stand-in until the shared-services registry lands (issue 12)."""

from __future__ import annotations

from .commands import SlurmRunner
from .estimates import StartEstimator
from .view import ClusterView

_estimators: dict[tuple, StartEstimator] = {}


def cluster_view(runner: SlurmRunner, interval: float) -> ClusterView:
    return ClusterView.shared(runner, interval)


def start_estimator(runner: SlurmRunner, user_prefix: str) -> StartEstimator:
    key = (runner.cache_key(), user_prefix)
    if key not in _estimators:
        _estimators[key] = StartEstimator(runner, user_prefix)
    return _estimators[key]
