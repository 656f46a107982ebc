"""The local cluster from dev/cluster behaves like the real Slurm the spawner will face.

These tests talk to the running slurmctld with the same commands a hub would run: argument
lists, the cluster's SLURM_CONF, and jobs submitted as the test users through sudo.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

# and the site's restricted partitions; hidden is listed by `sinfo --all` only
EXPECTED_TIME_LIMITS = {
    "cpu": "1-00:00:00",
    "gpu": "12:00:00",
    "debug": "1:00:00",
    "chem": "4:00:00",
    "lab": "6:00:00",
}
DEADLINE_SECONDS = 30.0


def slurm(cluster, *args: str) -> str:
    """Run a Slurm client command as root and return its stdout."""
    done = subprocess.run(
        list(args), env=cluster.env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, f"{args} failed: {done.stderr}"
    return done.stdout


def submit_as(cluster, user: str, *sbatch_args: str) -> str:
    """Submit a batch job as USER, the way a hub does it through sudo; return its id."""
    command = ["sudo", "-u", user, "env", f"SLURM_CONF={cluster.conf}"]
    command += ["sbatch", "--parsable", *sbatch_args]
    # cwd="/": the job user may not be able to enter the test runner's folder.
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False, cwd="/")
    assert done.returncode == 0, f"sbatch as {user} failed: {done.stderr}"
    return done.stdout.strip().split(";")[0]


def job_state(cluster, job_id: str) -> str:
    """The job's state as squeue lists it, or "" once squeue no longer lists it."""
    done = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0 and "Invalid job id" in done.stderr:
        return ""
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def cancel_quietly(cluster, job_id: str | None) -> None:
    if job_id:
        subprocess.run(["scancel", job_id], env=cluster.env, capture_output=True, timeout=30)


def home_of(user: str) -> Path:
    return Path(pwd.getpwnam(user).pw_dir)


def test_sinfo_lists_the_partitions_with_their_time_limits(slurm_cluster) -> None:
    # as a user: root (the SlurmUser) is shown hidden partitions without --all
    out = slurm(slurm_cluster, "sudo", "-u", "alice", "sinfo", "-h", "-o", "%R %l")
    # A partition whose nodes are in different states takes several lines: keep one per name.
    limits = dict(line.split() for line in out.splitlines() if line.strip())
    assert limits == EXPECTED_TIME_LIMITS

    out = slurm(slurm_cluster, "sinfo", "--all", "-h", "-o", "%R %l")
    limits = dict(line.split() for line in out.splitlines() if line.strip())
    assert limits == {**EXPECTED_TIME_LIMITS, "hidden": "3-00:00:00"}


def test_cpu_is_the_default_partition(slurm_cluster) -> None:
    out = slurm(slurm_cluster, "sinfo", "-h", "-o", "%P")

    assert "cpu*" in out.split()


def test_a_job_of_alice_runs_as_alice_and_can_be_cancelled(slurm_cluster) -> None:
    home = home_of("alice")
    marker = home / f"moss-smoke-{uuid.uuid4().hex}.txt"
    job_id = None
    try:
        job_id = submit_as(
            slurm_cluster,
            "alice",
            f"--chdir={home}",
            "--output=/dev/null",
            "--time=00:05:00",
            f"--wrap=echo written-by-job > {marker}; sleep 300",
        )
        wait_for("alice's job to write its file", marker.exists)
        wait_for("alice's job to be RUNNING", lambda: job_state(slurm_cluster, job_id) == "RUNNING")

        assert os.stat(marker).st_uid == pwd.getpwnam("alice").pw_uid
        assert marker.read_text().strip() == "written-by-job"

        slurm(slurm_cluster, "scancel", job_id)
        wait_for("squeue to drop the cancelled job", lambda: job_state(slurm_cluster, job_id) == "")
        assert job_id not in slurm(slurm_cluster, "squeue", "-h", "-o", "%i").split()
    finally:
        cancel_quietly(slurm_cluster, job_id)
        marker.unlink(missing_ok=True)


def test_a_gpu_job_sees_cuda_visible_devices(slurm_cluster) -> None:
    home = home_of("bob")
    output = home / f"moss-smoke-gpu-{uuid.uuid4().hex}.out"
    job_id = None
    try:
        job_id = submit_as(
            slurm_cluster,
            "bob",
            "--partition=gpu",
            "--gres=gpu:1",
            "--time=00:05:00",
            f"--chdir={home}",
            f"--output={output}",
            "--wrap=echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES",
        )
        wait_for("the GPU job to finish", lambda: job_state(slurm_cluster, job_id) == "")
        wait_for("the GPU job's output", lambda: output.exists() and output.stat().st_size > 0)

        assert re.fullmatch(r"CUDA_VISIBLE_DEVICES=\d+", output.read_text().strip())
    finally:
        cancel_quietly(slurm_cluster, job_id)
        output.unlink(missing_ok=True)
