"""JupyterHub configuration for `make demo`: jupyterhub_moss against the local dev/cluster.

Everything an admin of a real site would write is here; the rest is demo plumbing (loopback
addresses and a password-less login for the demo users alice and bob).
"""

import os

import jupyterhub_moss

c = get_config()  # noqa: F821
jupyterhub_moss.set_config(c)

job_env_bin = os.path.join(os.environ.get("MOSS_JOBENV", "/opt/moss-jobenv"), "bin", "")
default_environment = {
    "default": {"description": "JupyterLab (Python 3)", "path": job_env_bin},
}

c.MOSlurmSpawner.partitions = {
    "cpu": {
        "architecture": "x86_64",
        "description": "General purpose CPU nodes",
        "simple": True,
        "jupyter_environments": default_environment,
    },
    "gpu": {
        "architecture": "x86_64",
        "description": "Nodes with GPUs",
        "simple": True,
        "jupyter_environments": default_environment,
    },
    "debug": {
        "architecture": "x86_64",
        "description": "Short debugging jobs",
        "simple": False,
        "jupyter_environments": default_environment,
    },
    # Open to the chemistry account only (AllowAccounts): alice sees it, bob does not.
    "chem": {
        "description": "The chemistry group's nodes",
        "simple": False,
        "jupyter_environments": default_environment,
    },
}
# With slurmdbd (dev/cluster's default), each user's accounts and QOS are offered: alice
# charges physics (her default) or chemistry. Nothing to configure for that.

# Submit as the user; keep the Slurm configuration and a sane PATH for the Slurm commands.
c.MOSlurmSpawner.exec_prefix = "sudo -E -u {username}"
c.Spawner.env_keep = ["PATH", "LANG", "SLURM_CONF", "JUPYTERHUB_SINGLEUSER_APP"]

# Demo plumbing: loopback only, and any password for the demo users.
c.JupyterHub.bind_url = "http://127.0.0.1:8000"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:8081"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {"alice", "bob"}
c.Authenticator.admin_users = {"admin"}
