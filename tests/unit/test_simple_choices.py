"""The Simple tab's choices come from the spawner's traits, capped by each partition's limits."""

import pytest

from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.limits import SimpleChoices, merge_partition_limits

ENV = {"default": {"path": "/opt/env/bin/"}}


def limits_for(choices=None, **partition):
    configs = load_partitions({"p": {"jupyter_environments": ENV, **partition}})
    return merge_partition_limits(configs, None, choices)["p"]


def test_default_cpu_choices_are_1_2_4_and_a_quarter_half_and_whole_node():
    assert limits_for(max_nprocs=32).cpu_choices() == [1, 2, 4, 8, 16, 32]


def test_cpu_choices_never_exceed_the_partition():
    assert limits_for(max_nprocs=3).cpu_choices() == [1, 2, 3]


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        (SimpleChoices(cpu_counts=(1, 6), node_fractions=()), [1, 6]),
        (SimpleChoices(cpu_counts=(), node_fractions=(1 / 3, 1.0)), [8, 24]),
        (SimpleChoices(cpu_counts=(100,), node_fractions=(0.5,)), [12]),
    ],
)
def test_admin_cpu_choices(choices, expected):
    assert limits_for(choices, max_nprocs=24).cpu_choices() == expected


def test_runtime_choices_follow_the_trait_and_the_partition_maximum():
    choices = SimpleChoices(runtime_hours=(0.5, 3, 48))
    assert limits_for(choices, max_runtime=24 * 3600).runtime_choices() == [1800, 3 * 3600]


def test_a_maximum_shorter_than_every_choice_is_itself_the_choice():
    assert limits_for(max_runtime=1200).runtime_choices() == [1200]
