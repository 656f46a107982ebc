"""Partitions and environments per JupyterHub group, in a real Chromium, on the real cluster.

dev/cluster's partitions, with ``gpu`` kept for the JupyterHub group ``gpulab`` and cpu's
environment ``second`` for the group ``ml``: alice is in both, bob in neither. Each sees only
theirs, on both tabs and in the availability table, and switching tabs never brings back what
is hidden.
"""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from support.cluster_hub import cluster_hub_config
from support.cluster_partitions import CLUSTER_PARTITIONS
from support.hub import HubProcess, running_hub
from support.page_waits import fragment_answered, log_in, open_spawn_page

PARTITIONS = copy.deepcopy(CLUSTER_PARTITIONS)
PARTITIONS["gpu"]["groups"] = ["gpulab"]
PARTITIONS["cpu"]["jupyter_environments"]["second"]["groups"] = ["ml"]
GROUPS = textwrap.dedent(
    """
    c.JupyterHub.load_groups = {"gpulab": {"users": ["alice"]}, "ml": {"users": ["alice"]}}
    """
)


@pytest.fixture(scope="module")
def hub(hub_infra, slurm_cluster, tmp_path_factory) -> Iterator[HubProcess]:
    config = cluster_hub_config(PARTITIONS) + GROUPS
    with running_hub(tmp_path_factory.mktemp("groups"), config, env=slurm_cluster.env) as hub:
        yield hub


def values(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.value)")


def table_rows(page) -> list[str]:
    return page.eval_on_selector_all(
        "#moss-availability tbody th[scope=row]", "ths => ths.map(t => t.textContent.trim())"
    )


@pytest.mark.parametrize(
    ("user", "simple", "advanced", "environments"),
    [
        ("alice", ["cpu", "gpu"], ["cpu", "gpu", "debug"], ["default", "second"]),
        ("bob", ["cpu"], ["cpu", "debug"], ["default"]),
    ],
)
def test_each_user_sees_only_the_partitions_and_environments_of_their_groups(
    hub, page, user, simple, advanced, environments
):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, hub, user)
    open_spawn_page(page, hub)
    assert values(page, "input[name=partition][type=radio]") == simple
    assert values(page, "select[name=environment_id] option") == environments
    expect(page.locator("#moss-availability tbody th[scope=row]")).to_have_count(len(simple))
    assert table_rows(page) == simple

    with fragment_answered(page, "body"):
        page.click("#moss-tab-advanced")
    assert values(page, "select[name=partition] option") == advanced
    assert values(page, "select[name=environment_id] option") == environments
    expect(page.locator("#moss-availability tbody th[scope=row]")).to_have_count(len(advanced))
    assert table_rows(page) == advanced

    with fragment_answered(page, "body"):
        page.click("#moss-tab-simple")
    assert values(page, "input[name=partition][type=radio]") == simple
    if user == "bob":
        expect(page.locator("#moss-form")).not_to_contain_text("GPU nodes")
        expect(page.locator("#moss-form")).not_to_contain_text("Second")
    assert errors == []
