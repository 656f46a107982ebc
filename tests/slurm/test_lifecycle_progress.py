"""What the spawn-pending page says while the job waits, starts and becomes ready.

The cluster is kept busy (bob's job holds a CPU, alice asks for all of them), so alice's job
pends with a real Slurm reason; then bob's job ends and hers runs. The events are read from
JupyterHub's progress API, the stream the spawn-pending page shows.
"""

from __future__ import annotations

import re
import time

import pytest
from support.spawning import (
    WHOLE_NODE_OPTIONS,
    blocker,
    cancel,
    lifecycle_config,
    progress_events,
    request_spawn,
    stop_server,
    wait_for_job_id,
    wait_until_ready,
)

pytestmark = pytest.mark.slurm


def test_progress_tells_the_job_the_slurm_reason_the_expected_start_and_the_node(
    slurm_cluster, hub_factory
):
    env = slurm_cluster.env
    hub = hub_factory(extra_config=lifecycle_config(), env=env)
    api = hub.api()
    blocking = blocker(env)
    job_id = ""
    messages: list[str] = []
    try:
        response = request_spawn(api, "alice", WHOLE_NODE_OPTIONS)
        assert response.status_code == 202, response.text
        job_id = wait_for_job_id(api, "alice")
        deadline = time.monotonic() + 150
        for event in progress_events(hub, "alice"):
            assert "html_message" not in event or event.get("ready"), event
            messages.append(event["message"])
            if "expected start" in event["message"] and blocking:
                cancel(env, [blocking])  # free the node: alice's job can start now
                blocking = ""
            assert time.monotonic() < deadline, messages
        wait_until_ready(api, "alice")
    finally:
        cancel(env, [blocking])
        if job_id:
            stop_server(api, "alice")

    assert f"Submitted job {job_id} to partition debug" in messages
    waiting = [m for m in messages if m.startswith("Waiting for resources (Resources)")]
    assert waiting, messages
    assert any(re.search(r"; expected start \d\d:\d\d$", m) for m in waiting), messages
    assert "Running on node localhost, waiting for Jupyter to start" in messages
    assert messages[-1].startswith("Server ready at /user/alice/")
    # in that order
    order = [
        messages.index(f"Submitted job {job_id} to partition debug"),
        messages.index(waiting[0]),
        messages.index("Running on node localhost, waiting for Jupyter to start"),
        len(messages) - 1,
    ]
    assert order == sorted(order), messages
