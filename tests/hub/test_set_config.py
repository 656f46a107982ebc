"""`set_config(c)` and the admin's partitions, as a real hub starts with them."""

from __future__ import annotations

import copy

import httpx
import pytest
from support.hub import running_hub
from support.reference_example import README_EXAMPLE, README_EXAMPLE_7_0_1


def partitions_config(partitions: dict) -> str:
    return f"c.MOSlurmSpawner.partitions = {partitions!r}\n"


def broken(partition: str, field: str, value) -> dict:
    partitions = copy.deepcopy(README_EXAMPLE)
    partitions[partition][field] = value
    return partitions


BROKEN_COPIES = [
    (broken("partition_2", "gpu", "gpu:V100-SXM2-32GB:2"), "partition_2", "gpu"),
    (broken("partition_1", "max_nprocs", -28), "partition_1", "max_nprocs"),
    (broken("partition_1", "max_nprocs", "many"), "partition_1", "max_nprocs"),
    (broken("partition_1", "colour", "red"), "partition_1", "colour"),
    (broken("partition_2", "jupyter_environments", {}), "partition_2", "jupyter_environments"),
]


def test_the_reference_readme_example_loads_and_the_hub_serves_pages(hub_factory):
    hub = hub_factory(partitions_config(README_EXAMPLE))
    alice = hub.login("alice")
    page = alice.get(hub.hub_url("spawn"))
    assert page.status_code == 200
    assert "partition_1" in page.text and "partition_2" in page.text


@pytest.mark.parametrize(("partitions", "partition", "field"), BROKEN_COPIES)
def test_a_broken_copy_stops_the_hub_at_start_up_naming_partition_and_field(
    hub_infra, tmp_path, partitions, partition, field
):
    config = partitions_config(partitions)
    with pytest.raises(RuntimeError) as failure, running_hub(tmp_path / "hub", config):
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


@pytest.mark.parametrize(
    "section", ["MOSlurmSpawner", "SlurmSpawner", "BatchSpawnerBase", "Spawner"]
)
def test_req_options_that_do_not_split_stop_the_hub_at_start_up(hub_infra, tmp_path, section):
    """Otherwise every user's spawn would fail on the admin's typo."""
    config = partitions_config(README_EXAMPLE) + f'c.{section}.req_options = "--comment=\\"open"\n'
    with pytest.raises(RuntimeError) as failure, running_hub(tmp_path / "hub", config):
        pass
    log = str(failure.value)
    assert "JupyterHub exited" in log
    assert "jupyterhub_moss cannot start: req_options: cannot split into words" in log, log[-3000:]


def test_a_reference_config_starts_and_names_each_unused_setting_once(hub_factory, tmp_path):
    """The reference's README example and its other settings: the hub serves pages, and each
    setting it does not use is named once, with what to use instead, however many spawners."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "option_form.html").write_text("{% block stylesheet %}{% endblock %}")
    hub = hub_factory(
        partitions_config(README_EXAMPLE_7_0_1)
        + f"""
c.MOSlurmSpawner.slurm_info_cmd = 'echo "partition_1 2/46/0/48 35+"'
c.MOSlurmSpawner.singularity_cmd = ["singularity", "exec"]
c.SlurmSpawner.req_runtime = "2:00:00"
c.JupyterHub.template_paths = [{str(templates)!r}]
"""
    )
    for user in ("alice", "bob"):
        assert hub.login(user).get(hub.hub_url("spawn")).status_code == 200
    log = hub.log()
    expected = {
        "c.MOSlurmSpawner.slurm_info_cmd is not used": "slurm_commands",
        "c.MOSlurmSpawner.singularity_cmd is not used": "container_command = ",
        "c.SlurmSpawner.req_runtime is not used": "max_runtime",
        "option_form.html is not used": "moss_form.html",
    }
    for start, replacement in expected.items():
        lines = [line for line in log.splitlines() if start in line]
        assert len(lines) == 1, (start, lines)
        assert "[W " in lines[0] and replacement in lines[0]
    assert log.count("jupyterhub_moss: ") == len(expected), log[-3000:]
