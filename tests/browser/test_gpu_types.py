"""Choosing a GPU type and a count in a real Chromium, against a real hub on the local cluster.

The hub's admin declares two GPU types on the gpu partition (``gpu_types``: fake, up to 2, and
spare, up to 1), so the single layout is enough: the count's maximum follows the chosen type, on
both tabs, through htmx fragments alone. The submitted job is held (``req_options = "--hold"``)
and read back with ``scontrol show job``; the test then stops the server through the REST API.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.axe import serious_axe_violations
from support.cluster_hub import cluster_hub_config
from support.cluster_partitions import CLUSTER_PARTITIONS
from support.held_jobs import job_fields, stop_and_wait, submitted_job
from support.hub import HubProcess, running_hub
from support.page_waits import fragment_answered, log_in
from support.page_waits import open_spawn_page as open_form

PAYLOAD = "<script>alert(1)</script>'\"<img src=x onerror=alert(2)>"
PARTITIONS = {
    **CLUSTER_PARTITIONS,
    "gpu": {
        **CLUSTER_PARTITIONS["gpu"],
        "gpu_types": {
            "fake": {"description": "Fake " + PAYLOAD, "max_ngpus": 2},
            "spare": {"max_ngpus": 1},
        },
    },
}


@pytest.fixture(scope="module")
def hub(hub_infra, slurm_cluster, tmp_path_factory) -> Iterator[HubProcess]:
    config = cluster_hub_config(PARTITIONS) + '\nc.MOSlurmSpawner.req_options = "--hold"\n'
    with running_hub(tmp_path_factory.mktemp("gpu-hub"), config, env=slurm_cluster.env) as hub:
        yield hub


@pytest.fixture
def console_errors(page) -> Iterator[list[str]]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    yield errors


COMMENT = "gpu-type-browser"


def option_values(page, name: str) -> list[str]:
    return page.eval_on_selector_all(f"select[name={name}] option", "os => os.map(o => o.value)")


def option_labels(page, name: str) -> list[str]:
    return page.eval_on_selector_all(
        f"select[name={name}] option", "os => os.map(o => o.textContent)"
    )


def test_the_gpu_count_follows_the_chosen_type_and_the_type_reaches_the_job(
    hub, page, slurm_cluster, console_errors
):
    log_in(page, hub, "alice")
    open_form(page, hub)
    assert page.locator("select[name=gpu_type]").count() == 0  # cpu: no GPUs

    with fragment_answered(page, "partition"):
        page.check("input[name=partition][value=gpu]")
    assert option_values(page, "gpu_type") == ["", "fake", "spare"]
    labels = option_labels(page, "gpu_type")
    assert labels == ["Any type", f"fake — Fake {PAYLOAD} (up to 2)", "spare (up to 1)"]
    assert option_values(page, "ngpus") == ["0", "1", "2"]  # any type: the node's 2

    with fragment_answered(page, "partition"):
        page.select_option("select[name=gpu_type]", "spare")
    assert option_values(page, "ngpus") == ["0", "1"]
    assert page.input_value("select[name=gpu_type]") == "spare"
    assert page.locator("label[for=moss-gpu-type]").text_content() == "GPU type"

    with fragment_answered(page, "body"):
        page.click("#moss-tab-advanced")
    assert page.input_value("select[name=gpu_type]") == "spare"  # carried over
    assert page.get_attribute("input[name=ngpus]", "max") == "1"

    with fragment_answered(page, "partition"):
        page.select_option("select[name=gpu_type]", "fake")
    assert page.get_attribute("input[name=ngpus]", "max") == "2"
    page.fill("input[name=ngpus]", "1")
    assert serious_axe_violations(page, "#moss-form") == []
    page.fill("input[name=options]", f"--comment={COMMENT}")

    env = slurm_cluster.env
    try:
        page.click("#spawn_form button[type=submit]")
        job = submitted_job(env, COMMENT)
        saved = hub.api().get("users/alice").json()["servers"][""]["user_options"]
        assert (saved["partition"], saved["gpu_type"], saved["ngpus"]) == ("gpu", "fake", "1")
        assert job_fields(env, job)["TresPerNode"] == "gres:gpu:fake:1"
    finally:
        stop_and_wait(hub, env, COMMENT)
    assert console_errors == []
