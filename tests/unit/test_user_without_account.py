"""A hub user with no account on the machine: the spawn is refused with words, never a 500.

JupyterHub users need not be Unix users (a hub's ``admin`` often is not). batchspawner looks the
user up with ``pwd.getpwnam`` to set ``HOME`` and ``SHELL`` and raised ``KeyError``, which a
form submission turned into a 500.
"""

from __future__ import annotations

import pwd
import types

import pytest

from jupyterhub_moss.job_reports import SpawnFailed
from jupyterhub_moss.spawner import MOSlurmSpawner

pytestmark = pytest.mark.unit

PARTITIONS = {"cpu": {"jupyter_environments": {"default": {"path": "/opt/env/bin/"}}}}
NOBODY = "moss-no-such-user"


def spawner_for(name: str) -> MOSlurmSpawner:
    return MOSlurmSpawner(partitions=PARTITIONS, user=types.SimpleNamespace(name=name, spawners={}))


def test_a_user_without_an_account_is_refused_with_a_403_that_says_why():
    with pytest.raises(KeyError):
        pwd.getpwnam(NOBODY)  # the premise: no such account here
    with pytest.raises(SpawnFailed) as refused:
        spawner_for(NOBODY).user_env({})
    assert refused.value.status_code == 403
    assert str(refused.value).startswith(f"{NOBODY} has no account on this cluster")


def test_a_user_with_an_account_gets_home_and_shell():
    root = pwd.getpwnam("root")
    env = spawner_for("root").user_env({})
    assert (env["USER"], env["HOME"], env["SHELL"]) == ("root", root.pw_dir, root.pw_shell)
