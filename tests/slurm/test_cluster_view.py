"""The shared cluster view, job poller and estimator against the real local cluster.

- the view reads the right numbers from the live cluster (single or multi layout);
- 50 concurrent readers over 20 s cost slurmctld at most ceil(20 / interval) + 1 partition-info
  and node-info requests each, counted by ``sdiag``;
- a slow ``sinfo`` (a wrapper that sleeps, then runs the real one) does not stop the event loop,
  and with a shorter timeout the readers keep the stale snapshot;
- with slurmctld stopped (SIGSTOP) readers keep the stale snapshot with a clear error, and
  recover once it runs again (SIGCONT).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from jupyterhub_moss.slurm.commands import SlurmRunner, SlurmTimeout
from jupyterhub_moss.slurm.estimates import StartEstimator
from jupyterhub_moss.slurm.jobs import JobStatusPoller
from jupyterhub_moss.slurm.view import ClusterUnavailable, ClusterView, read_cluster

pytestmark = pytest.mark.slurm

# The two layouts of dev/cluster: partition -> (nodes, CPUs, GPUs of type "fake", time limit)
LAYOUTS = {
    "single": {
        "cpu": (1, 8, 2, 86400),
        "gpu": (1, 8, 2, 12 * 3600),
        "debug": (1, 8, 2, 3600),
        "chem": (1, 8, 2, 4 * 3600),
        "lab": (1, 8, 2, 6 * 3600),
        "hidden": (1, 8, 2, 3 * 86400),  # Hidden=YES: read all the same (sinfo --all)
    },
    "multi": {
        "cpu": (2, 16, 0, 86400),
        "gpu": (1, 8, 2, 12 * 3600),
        "debug": (2, 16, 0, 3600),
        "chem": (2, 16, 0, 4 * 3600),
        "lab": (2, 16, 0, 6 * 3600),
        "hidden": (2, 16, 0, 3 * 86400),
    },
}


def runner_for(cluster, **kwargs) -> SlurmRunner:
    return SlurmRunner(env={"SLURM_CONF": cluster.conf}, **kwargs)


def layout_of(cluster) -> str:
    return (Path(cluster.state_dir) / "layout").read_text().strip()


def run_root(cluster, *argv: str) -> str:
    done = subprocess.run(argv, env=cluster.env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


def slurm_setting(cluster, name: str) -> str:
    for line in Path(cluster.conf).read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip().lower() == name.lower():
            return value.split("#")[0].strip()
    raise AssertionError(f"{name} not in {cluster.conf}")


async def test_reads_the_live_cluster(slurm_cluster):
    view = ClusterView(runner_for(slurm_cluster), interval=5)
    snapshot = await view.snapshot()
    await view.close()
    expected = LAYOUTS[layout_of(slurm_cluster)]
    assert sorted(snapshot.partitions) == sorted(expected)
    assert next(iter(snapshot.partitions)) == "cpu"  # the default partition comes first
    for name, (nodes, cpus, gpus, time_limit) in expected.items():
        partition = snapshot.partitions[name]
        assert partition.state == "up"
        assert partition.is_default is (name == "cpu")
        assert partition.nodes_total == nodes
        assert partition.cpus_total == cpus
        assert partition.cpus_per_node == 8
        assert partition.memory_per_node_mb == 8000
        assert partition.max_runtime == time_limit
        assert partition.gpus_per_node == ({"fake": 2} if gpus else {})
        assert partition.gpus_total == gpus
        assert partition.gpus_used is not None
    assert snapshot.error is None
    assert snapshot.age_seconds() < 5


async def test_busy_cluster_and_job_states(slurm_cluster):
    """A job holding a GPU shows in the snapshot; the poller follows it with one squeue."""
    runner = runner_for(slurm_cluster)
    job_id = run_root(
        slurm_cluster,
        "sbatch", "--parsable", "--chdir=/tmp", "--output=/dev/null", "-p", "gpu",
        "--gres=gpu:1", "-c", "2", "--mem=500", "-t", "5", "--job-name=moss-view-test",
        "--wrap=sleep 120",
    ).strip().split(";")[0]  # fmt: skip
    poller = JobStatusPoller(runner, interval=30, min_interval=0.5)
    try:
        deadline = time.monotonic() + 30
        status = await poller.status(job_id)
        while status is None or status.state != "RUNNING":
            assert time.monotonic() < deadline, f"job {job_id} never ran: {status}"
            status = await poller.status(job_id, max_age=0)
        assert status.node in ("localhost", "g1")
        assert status.running
        partitions, _, _ = await read_cluster(runner)
        gpu = partitions["gpu"]
        assert gpu.gpus_used is not None and gpu.gpus_used >= 1
        assert gpu.cpus_idle <= gpu.cpus_total - 2
        # an unknown job is not confused with ours, and is gone after a second look
        assert (await poller.status("999999999")) is None
        gone = await poller.status("999999999", max_age=0)
        assert gone is not None and gone.finished and gone.state == "GONE"
    finally:
        run_root(slurm_cluster, "scancel", job_id)
    status = await poller.status(job_id, max_age=0)
    while status.state not in ("CANCELLED", "GONE"):
        assert time.monotonic() < deadline + 30
        status = await poller.status(job_id, max_age=0)
    assert status.finished
    await poller.close()


async def test_estimate_as_the_user(slurm_cluster):
    estimator = StartEstimator(runner_for(slurm_cluster), "sudo -n -E -u {username}")
    args = ["-p", "debug", "-c", "1", "-t", "10", "--chdir=/tmp", "--output=/dev/null"]
    estimate = await estimator.estimate("alice", args, "#!/bin/sh\ntrue\n")
    assert estimate is not None
    assert estimate.partition == "debug"
    assert estimate.cpus == 1
    refused = await estimator.estimate("bob", ["-p", "gpu", "--gres=gpu:9"], "#!/bin/sh\n")
    assert refused is None
    assert estimator.run_count == 2
    assert await estimator.estimate("alice", args, "#!/bin/sh\ntrue\n") == estimate  # cached
    assert estimator.run_count == 2


# ---------------------------------------------------------------------------------------------
# Controller load


def sdiag_section(text: str, title: str) -> dict[str, int]:
    """Counts from one "Remote Procedure Call statistics by ..." section of sdiag."""
    section = text.split(f"Remote Procedure Call statistics by {title}", 1)[1]
    section = section.split("Remote Procedure Call statistics by", 1)[0]
    section = section.split("Pending RPC statistics", 1)[0]
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^\s*(\S+)\s+\(\s*\d+\)\s+count:(\d+)", section, re.MULTILINE)
    }


async def test_fifty_readers_cost_one_sinfo_per_interval(slurm_cluster):
    """The view reads as user ``nobody`` so its RPCs can be told from other clients' in sdiag."""
    interval, duration, readers = 5.0, 20.0, 50
    runner = runner_for(slurm_cluster, query_prefix=["sudo", "-n", "-E", "-u", "nobody"])
    view = ClusterView(runner, interval=interval)
    seen = []

    async def reader() -> None:
        while True:
            seen.append((await view.snapshot()).taken_at)
            await asyncio.sleep(random.uniform(0.05, 0.5))

    run_root(slurm_cluster, "sdiag", "-r")
    tasks = [asyncio.ensure_future(reader()) for _ in range(readers)]
    await asyncio.sleep(duration)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await view.close()
    sdiag = run_root(slurm_cluster, "sdiag")
    by_type = sdiag_section(sdiag, "message type")
    by_user = sdiag_section(sdiag, "user")

    allowed = math.ceil(duration / interval) + 1
    assert len(seen) > 1000  # every reader was answered, many times
    assert 1 <= len(set(seen)) <= allowed
    assert 1 <= view.refresh_count <= allowed
    # one refresh = sinfo (partition info + node info) + scontrol show reservation + scontrol
    # show partition (the access rules)
    assert 4 <= by_user.get("nobody", 0) <= 4 * allowed, by_user
    # By message type, as the issue asks. Every RPC of another client (another test run on a
    # shared cluster, slurmd reporting a job's end) may add one; on a quiet cluster extra is 0
    # and the bound is exactly ceil(20 / interval) + 1.
    others = sum(n for user, n in by_user.items() if user not in ("nobody", "root"))
    extra = others + max(by_user.get("root", 0) - by_type.get("REQUEST_STATS_INFO", 0), 0)
    if extra:
        print(f"slurmctld had {extra} RPCs from other clients meanwhile: {by_user}")
    # sinfo and scontrol show partition: two partition reads per refresh
    assert 2 <= by_type.get("REQUEST_PARTITION_INFO", 0) <= 2 * allowed + extra, by_type
    assert 1 <= by_type.get("REQUEST_NODE_INFO", 0) <= allowed + extra, by_type


# ---------------------------------------------------------------------------------------------
# Slow or absent controller


@pytest.fixture
def slow_slurm_bin(tmp_path, slurm_cluster) -> Path:
    """A bin folder whose sinfo sleeps 3 s before running the real one."""
    real = {name: shutil.which(name, path=slurm_cluster.env.get("PATH")) for name in
            ("sinfo", "scontrol")}  # fmt: skip
    assert all(real.values()), real
    (tmp_path / "sinfo").write_text(f'#!/bin/sh\nsleep 3\nexec {real["sinfo"]} "$@"\n')
    (tmp_path / "sinfo").chmod(0o755)
    (tmp_path / "scontrol").symlink_to(real["scontrol"])
    return tmp_path


async def test_a_slow_sinfo_does_not_block_the_event_loop(slurm_cluster, slow_slurm_bin):
    loop = asyncio.get_running_loop()
    view = ClusterView(runner_for(slurm_cluster, bin_dir=str(slow_slurm_bin)), interval=5)
    ticks: list[float] = []

    async def unrelated_request() -> None:
        while True:
            started = loop.time()
            await asyncio.sleep(0.05)
            ticks.append(loop.time() - started)

    ticker = asyncio.ensure_future(unrelated_request())
    started = loop.time()
    snapshot = await view.snapshot()
    waited = loop.time() - started
    ticker.cancel()
    assert waited >= 3  # the first reader did wait for the slow sinfo...
    assert "cpu" in snapshot.partitions
    assert len(ticks) >= 40  # ...while the loop kept serving everything else
    assert max(ticks) < 0.5
    await view.close()


async def test_a_timeout_keeps_the_stale_snapshot(slurm_cluster, slow_slurm_bin):
    runner = runner_for(slurm_cluster, bin_dir=str(slow_slurm_bin), timeout=10)
    view = ClusterView(runner)
    good = await view.snapshot()  # slow, but within the timeout
    runner.timeout = 1
    started = time.monotonic()
    stale = await view.refresh()
    assert time.monotonic() - started < 3  # the sinfo was stopped at the timeout
    assert stale is not None and stale.is_stale
    assert stale.partitions == good.partitions and stale.taken_at == good.taken_at
    assert "no answer within 1 s" in stale.error
    assert (await view.snapshot()) is stale
    await view.close()
    # with no snapshot ever, the same timeout is an error for the reader
    never_answered = ClusterView(runner)
    with pytest.raises(ClusterUnavailable, match=r"Slurm is not answering: .*no answer within 1 s"):
        await never_answered.snapshot()
    await never_answered.close()


def controller_pid(cluster) -> int:
    pid_file = Path(slurm_setting(cluster, "SlurmctldPidFile"))
    pid = int(pid_file.read_text().strip())
    exe = os.readlink(f"/proc/{pid}/exe")
    assert "slurmctld" in os.path.basename(exe), f"pid {pid} from {pid_file} is {exe}"
    return pid


async def test_stopped_controller_keeps_readers_on_the_stale_snapshot(slurm_cluster):
    view = ClusterView(runner_for(slurm_cluster, timeout=2), interval=5)
    good = await view.snapshot()
    never_answered = ClusterView(runner_for(slurm_cluster, timeout=2), interval=5)
    pid = controller_pid(slurm_cluster)
    os.kill(pid, signal.SIGSTOP)
    try:
        stale = await view.refresh()
        readers = await asyncio.gather(*(view.snapshot() for _ in range(20)))
        with pytest.raises(ClusterUnavailable, match="Slurm is not answering"):
            await never_answered.snapshot()
    finally:
        os.kill(pid, signal.SIGCONT)
    assert stale is not None and stale.is_stale
    assert stale.partitions == good.partitions and stale.taken_at == good.taken_at
    assert "no answer within 2 s" in stale.error
    assert stale.age_seconds() >= 2
    assert all(r is stale for r in readers)  # at once, no reader waited for another attempt
    # slurmctld is back: the next refresh clears the error
    deadline = time.monotonic() + 30
    fresh = await view.refresh()
    while fresh.is_stale:
        assert time.monotonic() < deadline, fresh.error
        await asyncio.sleep(1)
        fresh = await view.refresh()
    assert fresh.taken_at > good.taken_at
    assert fresh.partitions.keys() == good.partitions.keys()
    recovered = await never_answered.refresh()  # a reader would wait min_interval first
    assert recovered is not None and recovered.error is None
    assert (await never_answered.snapshot()) is recovered
    await view.close()
    await never_answered.close()


def test_a_timed_out_command_is_an_error_with_context(slurm_cluster, slow_slurm_bin):
    runner = runner_for(slurm_cluster, bin_dir=str(slow_slurm_bin), timeout=0.5)
    with pytest.raises(SlurmTimeout) as caught:
        asyncio.run(runner.run("sinfo", ["-h"]))
    assert caught.value.argv[0] == str(slow_slurm_bin / "sinfo")
    assert "no answer within 0.5 s" in str(caught.value)
