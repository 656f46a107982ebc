"""The partitions the test and benchmark hubs describe are those dev/cluster writes into slurm.conf.

The hubs' description (tests/support/cluster_partitions.py) is Python, the cluster's is bash:
this reads the node and partition lines of dev/cluster's ``node_lines`` for each layout.
"""

from __future__ import annotations

import re

import pytest
from support.cluster_partitions import (
    CLUSTER_PARTITIONS,
    MULTI_LAYOUT_GPUS,
    SITE_PARTITIONS,
    SLURM_GPU_TEMPLATE,
    SLURM_LIMITS,
    every_field_spelled_out,
)
from support.infra import CLUSTER_SCRIPT

from jupyterhub_moss.config import load_partitions

LAYOUTS = ("single", "multi")


def slurm_conf_lines(layout: str) -> dict[str, list[dict[str, str]]]:
    """dev/cluster's NodeName and PartitionName lines for ``layout``, as key=value fields."""
    script = CLUSTER_SCRIPT.read_text()
    node_lines = script[script.index("node_lines() {") :]
    block = re.search(rf"^\s*{layout}\)\n\s*cat <<EOF\n(.*?)\nEOF$", node_lines, re.S | re.M)
    assert block, f"no {layout} layout in dev/cluster's node_lines"
    lines: dict[str, list[dict[str, str]]] = {"NodeName": [], "PartitionName": []}
    for line in block.group(1).splitlines():
        if line.startswith("$(site_partition_lines"):
            continue  # the site's restricted partitions: see test_the_site_partitions_...
        fields = dict(word.split("=", 1) for word in line.split() if "=" in word)
        kind = next(iter(fields))
        lines[kind].append(fields)
    return lines


def seconds(max_time: str) -> int:
    """Slurm's ``[days-]hours:minutes:seconds``."""
    days, _, clock = max_time.rpartition("-")
    hours, minutes, secs = (int(part) for part in clock.split(":"))
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + secs


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_hubs_partitions_are_the_clusters_in_its_order_the_first_its_default(layout):
    partitions = slurm_conf_lines(layout)["PartitionName"]
    assert [p["PartitionName"] for p in partitions] == list(CLUSTER_PARTITIONS)
    assert list(SLURM_LIMITS) == list(CLUSTER_PARTITIONS)
    assert [p.get("Default") for p in partitions] == ["YES"] + [None] * (len(partitions) - 1)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_spelled_out_limits_are_slurms(layout):
    lines = slurm_conf_lines(layout)
    nodes = {node["NodeName"]: node for node in lines["NodeName"]}
    for partition in lines["PartitionName"]:
        name = partition["PartitionName"]
        limits = SLURM_LIMITS[name]
        its_nodes = [nodes[node] for node in partition["Nodes"].split(",")]
        assert seconds(partition["MaxTime"]) == limits["max_runtime"], name
        assert {int(node["CPUs"]) for node in its_nodes} == {limits["max_nprocs"]}, name
        if "gpu" in CLUSTER_PARTITIONS[name]:  # the hub says which GPUs (none)
            assert CLUSTER_PARTITIONS[name]["gpu"] == ""
            assert limits["max_ngpus"] == 0, name
        else:  # left to Slurm: its nodes' GPUs (of the template's type, and others on multi)
            gres = SLURM_GPU_TEMPLATE.format(limits["max_ngpus"])
            expected = {gres}
            if layout == "multi":
                expected = {",".join(f"gpu:{t}:{n}" for t, n in MULTI_LAYOUT_GPUS.items())}
                assert gres in next(iter(expected)).split(","), name
            assert {node.get("Gres") for node in its_nodes} == expected, name


def test_both_descriptions_are_valid_configurations_of_the_same_partitions():
    spelled_out = every_field_spelled_out()
    assert list(spelled_out) == list(CLUSTER_PARTITIONS)
    assert list(load_partitions(spelled_out)) == list(load_partitions(CLUSTER_PARTITIONS))


def site_partition_lines() -> list[dict[str, str]]:
    script = CLUSTER_SCRIPT.read_text()
    body = re.search(
        r"^site_partition_lines\(\) \{\n\s*cat <<EOF\n(.*?)\nEOF$", script, re.S | re.M
    )
    assert body, "no site_partition_lines in dev/cluster"
    group = re.search(r"^LAB_GROUP=(\S+)$", script, re.M)
    assert group, "no LAB_GROUP in dev/cluster"
    text = body.group(1).replace("$LAB_GROUP", group.group(1))
    return [
        dict(word.split("=", 1) for word in line.split() if "=" in word)
        for line in text.splitlines()
    ]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_both_layouts_have_the_site_partitions(layout):
    script = CLUSTER_SCRIPT.read_text()
    node_lines = script[script.index("node_lines() {") :]
    block = re.search(rf"^\s*{layout}\)\n\s*cat <<EOF\n(.*?)\nEOF$", node_lines, re.S | re.M)
    assert block and "$(site_partition_lines " in block.group(1)


def test_the_site_partitions_are_the_clusters():
    lines = {line["PartitionName"]: line for line in site_partition_lines()}
    assert list(lines) == list(SITE_PARTITIONS)
    for name, expected in SITE_PARTITIONS.items():
        line = lines[name]
        assert seconds(line["MaxTime"]) == expected["max_runtime"], name
        for key in ("AllowAccounts", "AllowGroups", "Hidden"):
            assert line.get(key) == expected.get(key), (name, key)
