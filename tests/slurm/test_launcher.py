"""The job side of a spawn on the real cluster: our launcher, without batchspawner, and the spawn's
timeline.

The cluster's job environment (``$MOSS_JOBENV``, built by dev/jobenv) holds jupyterhub and
jupyterlab only. The launcher reports the port the server really bound, and the job's own
reports (it started, its port) drive the spawn rather than the hub's polls.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading

import pytest
from support.cluster_partitions import JOBENV_BATCHSPAWNER_BIN, JOBENV_BIN
from support.spawning import (
    DEBUG_OPTIONS,
    cancel,
    command_line,
    fill_partition,
    job_processes,
    lifecycle_config,
    new_user_token,
    progress_events,
    request_spawn,
    server_model,
    server_state,
    stop_server,
    user_client,
    wait_for_job_id,
    wait_job_state,
    wait_until_ready,
)

from jupyterhub_moss.spawn_timeline import LOG_PREFIX, POINTS

pytestmark = pytest.mark.slurm

#: Far longer than any test here waits: a spawn that gets on within it was woken by its job.
SLOW_POLLS = """
c.MOSlurmSpawner.startup_poll_interval = 300
c.MOSlurmSpawner.pending_poll_interval = 300
"""


@pytest.fixture
def cluster_hub(slurm_cluster, hub_factory):
    return hub_factory(extra_config=lifecycle_config(), env=slurm_cluster.env)


def has_batchspawner(bin_dir: str) -> bool:
    found = subprocess.run(
        [
            f"{bin_dir}python",
            "-c",
            "import importlib.util as u; print(bool(u.find_spec('batchspawner')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip() == "True"


def timelines(hub) -> list[dict]:
    return [
        json.loads(line.split(LOG_PREFIX, 1)[1])
        for line in hub.log().splitlines()
        if LOG_PREFIX in line
    ]


def where_jupyter_runs(hub) -> list[tuple[str, str, int]]:
    """(job id, node, port) of every server the hub started, from its log."""
    found = re.findall(r"Job (\d+) of \S+: Jupyter on (\S+):(\d+)", hub.log())
    return [(job, node, int(port)) for job, node, port in found]


def answers(hub, api, user: str, name: str = "") -> bool:
    client = user_client(hub, new_user_token(api, user))
    path = f"user/{user}/{name}/api/status" if name else f"user/{user}/api/status"
    return client.get(path).status_code == 200


def spawn_until_it_answers(hub, api, options: dict, started: list[str]) -> str:
    """Spawn alice's default server and wait until it answers through the proxy; its job id,
    also put in ``started`` as soon as it is known (for the test's clean-up)."""
    assert request_spawn(api, "alice", options).status_code in (201, 202)
    started.append(wait_for_job_id(api, "alice"))
    wait_until_ready(api, "alice")
    assert answers(hub, api, "alice")
    return started[-1]


def job_commands(job_id: str) -> list[list[str]]:
    """The command lines of the job's live processes."""
    return [command_line(pid) for pid in job_processes(job_id)]


def test_an_environment_without_batchspawner_runs_the_server_through_our_launcher(
    slurm_cluster, cluster_hub
):
    assert not has_batchspawner(JOBENV_BIN), f"{JOBENV_BIN} must hold no batchspawner"
    env, api = slurm_cluster.env, cluster_hub.api()
    started: list[str] = []
    try:
        job_id = spawn_until_it_answers(cluster_hub, api, DEBUG_OPTIONS, started)
        # The server runs with the port the system gave it, under the job step's own pid
        commands = job_commands(job_id)
        # (srun's own command line holds the launcher's source: look at the programs run)
        programs = [words[:3] for words in commands]
        server = next(
            words
            for words in commands
            if not words[0].endswith("srun") and any("jupyterhub-singleuser" in w for w in words)
        )
        assert server[-1] == "--port=0"
        assert not any("batchspawner" in word for words in programs for word in words)
        # every point of the spawn, in order
        (timeline,) = [t for t in timelines(cluster_hub) if t["job"] == job_id]
        assert timeline["user"] == "alice"
        assert [point for point in POINTS if point in timeline] == list(POINTS)
        times = [timeline[point] for point in POINTS]
        assert times == sorted(times), timeline
        assert timeline["port"] == timeline["listening"]  # reported as the server listened
        stop_server(api, "alice")
    finally:
        cancel(env, started)


def test_two_servers_starting_at_once_on_one_node_each_get_their_own_port(
    slurm_cluster, cluster_hub
):
    env, api = slurm_cluster.env, cluster_hub.api()
    names = ("first", "second")
    job_ids: list[str] = []
    try:
        for name in names:  # both submitted before either can have started
            assert request_spawn(api, "alice", DEBUG_OPTIONS, name).status_code in (201, 202)
        job_ids = [wait_for_job_id(api, "alice", name) for name in names]
        for name in names:
            wait_until_ready(api, "alice", name)
        urls = {server_model(api, "alice", name)["url"] for name in names}
        assert len(urls) == 2
        nodes = {server_state(api, "alice", name)["job_node"] for name in names}
        assert len(nodes) == 1, "the single-node layout runs both on one node"
        ports = {
            job: port for job, _node, port in where_jupyter_runs(cluster_hub) if job in job_ids
        }
        assert set(ports) == set(job_ids)
        assert len(set(ports.values())) == 2, ports
        for name in names:
            assert answers(cluster_hub, api, "alice", name)
            stop_server(api, "alice", name)
    finally:
        cancel(env, job_ids)


def test_a_job_whose_node_is_released_is_seen_at_once_without_waiting_for_a_poll(
    slurm_cluster, hub_factory
):
    """With looks at a starting job 5 minutes apart, only the job's own reports can make the
    spawn see it run and answer within the test's time."""
    env = slurm_cluster.env
    hub = hub_factory(extra_config=lifecycle_config(SLOW_POLLS), env=env)
    api = hub.api()
    holders = fill_partition(env, "debug")
    job_id = ""
    try:
        assert holders, "the debug partition had no idle CPU to fill"
        assert request_spawn(api, "alice", DEBUG_OPTIONS).status_code == 202
        job_id = wait_for_job_id(api, "alice")
        wait_job_state(env, job_id, {"PENDING"})
        events: list[str] = []
        reader = threading.Thread(
            target=lambda: events.extend(
                e.get("message", "") for e in progress_events(hub, "alice")
            ),
            daemon=True,
        )
        reader.start()
        cancel(env, holders)  # the node is released
        wait_until_ready(api, "alice", timeout=120)
        reader.join(timeout=30)
        assert any(message.startswith("Running on node") for message in events), events
        (timeline,) = [t for t in timelines(hub) if t["job"] == job_id]
        assert {"running", "port", "answering", "returned"} <= set(timeline)
        assert "The job of alice reported that it started" in hub.log()
        stop_server(api, "alice")
    finally:
        cancel(env, [*holders, *([job_id] if job_id else [])])


def test_an_environment_with_batchspawner_still_works_with_its_wrapper(slurm_cluster, hub_factory):
    assert has_batchspawner(JOBENV_BATCHSPAWNER_BIN)
    env = slurm_cluster.env
    config = lifecycle_config('c.MOSlurmSpawner.server_launcher = "batchspawner"\n')
    hub = hub_factory(extra_config=config, env=env)
    api = hub.api()
    options = {**DEBUG_OPTIONS, "environment_path": JOBENV_BATCHSPAWNER_BIN}
    started: list[str] = []
    try:
        job_id = spawn_until_it_answers(hub, api, options, started)
        commands = job_commands(job_id)
        assert any(
            word.endswith("batchspawner-singleuser") for words in commands for word in words[:3]
        ), commands
        (timeline,) = [t for t in timelines(hub) if t["job"] == job_id]
        # batchspawner's wrapper reports before the server listens: no "listening" point
        assert "listening" not in timeline and "port" in timeline
        stop_server(api, "alice")
    finally:
        cancel(env, started)
