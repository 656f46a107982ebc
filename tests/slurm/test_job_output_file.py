"""The failure message reads the output file the hub's script named, never the one Slurm reports.

A job's owner can point its ``StdOut`` elsewhere with ``scontrol update`` while it pends. The hub
reads the output file as root to show the last lines of a failed job, so it reads only
``{home}/slurm-{job}.out``, the path its own script gave ``#SBATCH --output``.
"""

from __future__ import annotations

import contextlib
import os
import pwd

import pytest
from support.spawning import (
    WHOLE_NODE_OPTIONS,
    blocker,
    cancel,
    job_fields,
    lifecycle_config,
    progress_events,
    request_spawn,
    slurm,
    wait_for_job_id,
    wait_job_state,
)

pytestmark = pytest.mark.slurm


def test_a_stdout_changed_by_the_user_while_pending_is_not_read(slurm_cluster, hub_factory):
    env = slurm_cluster.env
    hub = hub_factory(extra_config=lifecycle_config(), env=env)
    api = hub.api()
    alice = pwd.getpwnam("alice")
    decoy = os.path.join(alice.pw_dir, "moss-decoy.txt")
    with open(decoy, "w") as handle:
        handle.write("DECOY: the hub must not show this\n")
    os.chown(decoy, alice.pw_uid, alice.pw_gid)  # alice's own file: only the path is wrong
    blocking = blocker(env)
    job_id = ""
    try:
        response = request_spawn(api, "alice", {**WHOLE_NODE_OPTIONS, "output": "true"})
        assert response.status_code == 202, response.text
        job_id = wait_for_job_id(api, "alice")
        wait_job_state(env, job_id, {"PENDING"})
        # as alice herself, through sudo as the hub would run her commands
        slurm(env, "sudo", "-E", "-u", "alice", "scontrol", "update", f"JobId={job_id}",
              f"StdOut={decoy}")  # fmt: skip
        assert job_fields(env, job_id).get("StdOut") == decoy  # Slurm took it
        slurm(env, "scancel", job_id)
        events = list(progress_events(hub, "alice"))
        message = events[-1]["message"]
        assert f"Slurm job {job_id} ended before Jupyter started: CANCELLED" in message
        assert "DECOY" not in message and decoy not in message
        assert "DECOY" not in hub.log()
    finally:
        cancel(env, [blocking, job_id])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(decoy)
        if job_id:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{alice.pw_dir}/slurm-{job_id}.out")
