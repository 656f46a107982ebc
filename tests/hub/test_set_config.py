"""`set_config(c)` and the admin's partitions, as a real hub starts with them."""

from __future__ import annotations

import textwrap

import httpx
import pytest
from support.hub import running_hub

# The example from the reference's README, typo ("x86_86") and all: it must load unchanged.
REFERENCE_EXAMPLE = textwrap.dedent(
    """
    c.MOSlurmSpawner.partitions = {
        "partition_1": {
            "architecture": "x86_86",
            "description": "Partition 1",
            "gpu": None,
            "max_ngpus": 0,
            "max_nprocs": 28,
            "max_runtime": 12 * 3600,
            "simple": True,
            "jupyter_environments": {
                "default": {
                    "description": "Default",
                    "path": "/env/path/bin/",
                    "modules": "",
                    "add_to_path": True,
                    "prologue": "",
                },
            },
        },
        "partition_2": {
            "architecture": "ppc64le",
            "description": "Partition 2",
            "gpu": "gpu:V100-SXM2-32GB:{}",
            "max_ngpus": 2,
            "max_nprocs": 128,
            "max_runtime": 1 * 3600,
            "simple": True,
            "jupyter_environments": {
                "default": {"description": "Default", "path": "", "modules": "JupyterLab/3.6.0"},
            },
        },
    }
    """
)

BROKEN_COPIES = [
    ('"gpu": "gpu:V100-SXM2-32GB:{}"', '"gpu": "gpu:V100-SXM2-32GB:2"', "partition_2", "gpu"),
    ('"max_nprocs": 28', '"max_nprocs": -28', "partition_1", "max_nprocs"),
    ('"max_nprocs": 28', '"max_nprocs": "many"', "partition_1", "max_nprocs"),
    ('"simple": True,\n', '"simple": True, "colour": "red",\n', "partition_1", "colour"),
    (
        '"path": "", "modules": "JupyterLab/3.6.0"',
        '"path": "", "modules": ""',
        "partition_2",
        "jupyter_environments",
    ),
]


def test_the_reference_readme_example_loads_and_the_hub_serves_pages(hub_factory):
    hub = hub_factory(REFERENCE_EXAMPLE)
    alice = hub.login("alice")
    page = alice.get(hub.hub_url("spawn"))
    assert page.status_code == 200
    assert "partition_1" in page.text and "partition_2" in page.text


@pytest.mark.parametrize(("old", "new", "partition", "field"), BROKEN_COPIES)
def test_a_broken_copy_stops_the_hub_at_start_up_naming_partition_and_field(
    hub_infra, tmp_path, old, new, partition, field
):
    assert old in REFERENCE_EXAMPLE
    broken = REFERENCE_EXAMPLE.replace(old, new, 1)
    with pytest.raises(RuntimeError) as failure, running_hub(tmp_path / "hub", broken):
        pass
    log = str(failure.value)
    assert "JupyterHub exited" in log
    assert f"partition '{partition}'" in log, log[-3000:]
    assert field in log


def test_set_config_keeps_the_admins_extra_handlers_and_logs_no_deprecation_of_ours(hub_factory):
    hub = hub_factory(
        """
        from tornado import web

        class Hello(web.RequestHandler):
            def get(self):
                self.write("hello from the admin")

        c.JupyterHub.extra_handlers = [(r"/hello", Hello)]
        jupyterhub_moss.set_config(c)  # a second call is harmless
        """
    )
    assert httpx.get(hub.hub_url("hello")).text == "hello from the admin"
    assert httpx.get(hub.hub_url("moss/static/htmx.min.js")).status_code == 200
    log = hub.log()
    assert (
        "moss"
        not in " ".join(line for line in log.splitlines() if "deprecat" in line.lower()).lower()
    )


def test_everything_works_under_a_sub_path(hub_factory):
    hub = hub_factory(base_url="/jupyter/")
    assert hub.url.endswith("/jupyter/")
    assert httpx.get(hub.hub_url("moss/static/htmx.min.js")).status_code == 200
    alice = hub.login("alice")
    page = alice.get(hub.hub_url("spawn"))
    assert page.status_code == 200
    assert "/jupyter/hub/moss/static/htmx.min.js" in page.text
