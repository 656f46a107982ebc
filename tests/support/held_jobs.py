"""Jobs a test hub submits with ``req_options = "--hold"``: they wait in the queue while the test
reads them back from Slurm, found by the ``--comment`` the test gave them, then the server is
stopped through the REST API, which cancels the job.

Also :func:`switch_layout`, for the tests that need dev/cluster's multi layout (and put the
single layout back at the end, as every other test expects it).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping

from .hub import HubProcess
from .infra import CLUSTER_SCRIPT


def scontrol(env: Mapping[str, str], *args: str) -> str:
    done = subprocess.run(
        ["scontrol", *args], env=dict(env), capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def job_fields(env: Mapping[str, str], job_id: str) -> dict[str, str]:
    """``scontrol show job -o``, as ``{key: value}`` (the first of a repeated key)."""
    fields: dict[str, str] = {}
    for word in scontrol(env, "show", "job", "-o", job_id).split():
        key, _, value = word.partition("=")
        fields.setdefault(key, value)
    return fields


def jobs_with_comment(env: Mapping[str, str], comment: str, user: str = "alice") -> list[str]:
    """``user``'s jobs carrying this comment (other tests may run jobs as that user too)."""
    out = subprocess.run(
        ["squeue", "-h", "-u", user, "-o", "%i|%k"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return [line.split("|")[0] for line in out.splitlines() if line.endswith(f"|{comment}")]


def submitted_job(
    env: Mapping[str, str], comment: str, deadline: float = 30, user: str = "alice"
) -> str:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        jobs = jobs_with_comment(env, comment, user)
        if jobs:
            assert len(jobs) == 1, jobs
            return jobs[0]
        time.sleep(0.2)
    raise AssertionError(f"no job with comment {comment!r} was submitted for {user}")


def stop_and_wait(
    hub: HubProcess, env: Mapping[str, str], comment: str, user: str = "alice"
) -> None:
    """Stop ``user``'s default server through the REST API; its job must then be gone."""
    hub.api().delete(f"users/{user}/server")
    end = time.monotonic() + 30
    while jobs_with_comment(env, comment, user) and time.monotonic() < end:
        time.sleep(0.2)
    assert jobs_with_comment(env, comment, user) == []


def switch_layout(layout: str) -> None:
    """Restart dev/cluster in ``layout`` (single or multi); this cancels every job."""
    subprocess.run(
        [str(CLUSTER_SCRIPT), "start", "--nodes", layout],
        check=True,
        timeout=180,
        capture_output=True,
    )
