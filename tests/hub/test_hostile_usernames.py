"""A username ``sudo -u`` would misread is refused before any command runs, never a 500.

``sudo -u '#0'`` runs as uid 0 (root) and ``sudo -u -x`` reads an option. JupyterHub and its
authenticators may allow such names (an admin can create them through the REST API, as here), so
the spawner refuses them itself: the spawn is a 400 naming the problem, no ``sbatch`` runs, and
the log line stays one line.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from support.fake_slurm import fake_slurm, fake_slurm_config
from support.hub import running_hub

pytestmark = pytest.mark.hub

HOSTILE = ["#0", "-x", "-u0", "#1000"]


@pytest.fixture(scope="module")
def fake_hub(hub_infra, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-usernames")
    slurm = fake_slurm(root / "slurm")
    # JupyterHub's own slow_spawn_timeout (10 s): a spawn that fails at once answers with it
    config = fake_slurm_config(slurm) + "c.JupyterHub.tornado_settings = {}\n"
    with running_hub(root / "hub", config) as hub:
        yield hub, slurm


@pytest.mark.parametrize("name", HOSTILE)
def test_a_spawn_for_a_name_sudo_would_misread_is_a_400_and_runs_nothing(fake_hub, name):
    hub, slurm = fake_hub
    api = hub.api()
    path = f"users/{quote(name, safe='')}"
    created = api.post(path)
    assert created.status_code in (201, 409), created.text
    assert api.get(path).json()["name"] == name  # JupyterHub took the name as it is

    response = api.post(f"{path}/server", json={})
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert f"The username '{name}' cannot be used with Slurm" in message
    ran = (slurm / "ran").read_text() if (slurm / "ran").exists() else ""
    assert "sbatch" not in ran and "scancel" not in ran and name not in ran
    assert f"Refusing to spawn for user {name}: " in hub.log()
    server = api.get(path).json()["servers"].get("")
    assert not server or not server.get("ready")


def test_an_ordinary_user_on_the_same_hub_does_reach_sbatch(fake_hub):
    """The control: the same stand-ins record alice's submission, through exec_prefix."""
    hub, slurm = fake_hub
    api = hub.api()
    response = api.post("users/alice/server", json={})
    assert response.status_code in (201, 202), response.text
    try:
        for _ in range(100):
            if (slurm / "ran").exists() and "alice sbatch" in (slurm / "ran").read_text():
                break
            time.sleep(0.1)
        assert "alice sbatch --parsable" in (slurm / "ran").read_text()
    finally:
        api.delete("users/alice/server")
