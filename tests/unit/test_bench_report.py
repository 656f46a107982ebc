"""The benchmark report's ratio of medians: a figure that was not measured stays "—" (NaN),
never a division error or a made-up number."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

# The benchmarks are not an installed package: they are imported from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.report import median_ratio

pytestmark = pytest.mark.unit


def test_a_ratio_of_two_medians():
    assert median_ratio([3.0, 1.0, 2.0], [4.0, 4.0, 8.0]) == pytest.approx(0.5)


def test_a_ratio_to_a_figure_already_taken():
    assert median_ratio([3.0, 3.6, 4.0], 3.0) == pytest.approx(1.2)


@pytest.mark.parametrize(
    ("values", "other"),
    [([], [1.0]), ([1.0], []), ([1.0], None), ([1.0], float("nan")), ([1.0], 0.0)],
    ids=["no-values", "no-other-values", "other-not-taken", "other-nan", "other-zero"],
)
def test_anything_not_measured_gives_nan(values, other):
    assert math.isnan(median_ratio(values, other))
