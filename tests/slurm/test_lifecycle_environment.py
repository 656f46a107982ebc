"""What the single-user server's environment holds, read from its own /proc/PID/environ.

``#SBATCH --export=LIST`` alone would leave the server without PATH or LANG (the reference's
does); the batch script sets the step's export to ALL, puts the environment's ``bin/`` first
on PATH, and runs the admin's and the environment's prologues and ``module load``.
"""

from __future__ import annotations

import os
import pwd
import textwrap

import pytest
from support.cluster_partitions import JOBENV_BIN
from support.spawning import (
    DEBUG_OPTIONS,
    cancel,
    lifecycle_config,
    process_environ,
    request_spawn,
    server_state,
    singleuser_pid,
    stop_server,
    wait_for,
    wait_until_ready,
)

pytestmark = pytest.mark.slurm

#: There is no Lmod or Environment Modules on this machine. The environment's prologue defines
#: a tiny ``module`` shell function that records what it was asked to load: what this test
#: shows is that our batch script runs the prologue, then ``module load`` with the configured
#: modules, in the job's shell, before the server starts. It does not test a real module system.
FAKE_MODULE_PROLOGUE = (
    'module() { if [ "$1" = load ]; then shift; export MOSS_LOADED_MODULES="$*"; fi; }; '
    'export MOSS_ORDER="${MOSS_ORDER:-},environment"'
)


def running_server_environ(api, env, user="alice", options=DEBUG_OPTIONS):
    assert request_spawn(api, user, options).status_code in (201, 202)
    wait_until_ready(api, user)
    job_id = server_state(api, user)["job_id"]
    pid = wait_for("the Jupyter process", lambda: singleuser_pid(job_id), 30)
    return job_id, pid, process_environ(pid)


def test_the_server_runs_as_the_user_with_path_lang_and_the_hubs_variables(
    slurm_cluster, hub_factory
):
    env = {**slurm_cluster.env, "LANG": "C.UTF-8"}
    hub = hub_factory(extra_config=lifecycle_config(), env=env)
    api = hub.api()
    job_id = ""
    try:
        options = {**DEBUG_OPTIONS, "default_url": "/lab"}
        job_id, pid, server_env = running_server_environ(api, env, options=options)
        alice = pwd.getpwnam("alice")
        assert os.stat(f"/proc/{pid}").st_uid == alice.pw_uid

        path = server_env["PATH"].split(":")
        assert path[0].rstrip("/") == JOBENV_BIN.rstrip("/")
        assert {"/usr/bin", "/bin"} & set(path)
        assert server_env["LANG"] == "C.UTF-8"
        assert server_env["USER"] == "alice"
        assert server_env["HOME"] == alice.pw_dir
        assert server_env["SHELL"] == alice.pw_shell
        assert server_env["SLURM_JOB_ID"] == job_id

        assert server_env["JUPYTERHUB_USER"] == "alice"
        assert server_env["JUPYTERHUB_SERVICE_PREFIX"] == "/user/alice/"
        assert server_env["JUPYTERHUB_API_URL"].startswith("http://127.0.0.1:")
        assert len(server_env["JUPYTERHUB_API_TOKEN"]) >= 32
        assert server_env["JUPYTERHUB_DEFAULT_URL"] == "/lab"
        # the hub's own secrets stay in the hub
        assert not {"JPY_COOKIE_SECRET", "CONFIGPROXY_AUTH_TOKEN"} & set(server_env)
        stop_server(api, "alice")
    finally:
        cancel(slurm_cluster.env, [job_id])


def test_the_admin_prologue_then_the_environments_prologue_and_module_load_take_effect(
    slurm_cluster, hub_factory
):
    config = lifecycle_config(
        textwrap.dedent(
            f"""
            c.MOSlurmSpawner.partitions["debug"]["jupyter_environments"] = {{
                "modules": {{
                    "description": "With modules",
                    "path": "{JOBENV_BIN}",
                    "modules": "fakemod/1.0 other-tool",
                    "prologue": {FAKE_MODULE_PROLOGUE!r},
                }},
            }}
            c.MOSlurmSpawner.req_prologue = "export MOSS_ORDER=admin"
            """
        )
    )
    hub = hub_factory(extra_config=config, env=slurm_cluster.env)
    api = hub.api()
    job_id = ""
    try:
        options = {**DEBUG_OPTIONS, "environment_id": "modules"}
        job_id, _, server_env = running_server_environ(api, slurm_cluster.env, options=options)
        assert server_env["MOSS_ORDER"] == "admin,environment"
        assert server_env["MOSS_LOADED_MODULES"] == "fakemod/1.0 other-tool"
        assert server_env["PATH"].split(":")[0].rstrip("/") == JOBENV_BIN.rstrip("/")
        stop_server(api, "alice")
    finally:
        cancel(slurm_cluster.env, [job_id])
