"""Our port report answers however the admin named the spawner, and batchspawner's never does.

batchspawner's own ``/hub/api/batchspawner`` handler sets every key a job posts as an attribute
of the spawner (``exec_prefix``, ``cmd``, ``batch_submit_cmd``...): with the server token that
sits in the user's job, a user could choose a command the root hub runs. Three ways an admin
may pick our spawner, and in each a real hub must route the address to our handler only:

- ``jupyterhub_moss.set_config(c)``;
- ``c.JupyterHub.spawner_class = "moss"`` (our entry point), no import, no ``set_config``;
- ``c.JupyterHub.spawner_class = "jupyterhub_moss.MOSlurmSpawner"``, likewise.

No cluster is needed: Slurm's commands are stand-ins that keep the spawn pending and record what
ran, so the test can take the real server token the hub handed to "sbatch" and post with it.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from support.fake_slurm import fake_slurm
from support.fake_slurm import fake_slurm_config as config
from support.hub import running_hub

pytestmark = pytest.mark.hub

ROUTES = ["set_config", "moss", "jupyterhub_moss.MOSlurmSpawner"]


def wait_for_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared")


def report(hub, token: str, body) -> httpx.Response:
    return httpx.post(
        hub.hub_url("api/batchspawner"),
        json=body,
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )


@pytest.mark.parametrize("route", ROUTES)
def test_whichever_way_the_spawner_is_named_only_our_port_report_answers(
    hub_infra, tmp_path, route
):
    slurm = fake_slurm(tmp_path / "slurm")
    marker = tmp_path / "pwned"
    spawner_class = None if route == "set_config" else route
    with running_hub(tmp_path / "hub", config(slurm), spawner_class=spawner_class) as hub:
        log = hub.log()
        assert "Using Spawner: jupyterhub_moss.spawner.MOSlurmSpawner" in log
        api = hub.api()
        started = api.post("users/alice/server", json={})
        assert started.status_code in (201, 202), started.text
        token = wait_for_file(slurm / "token")

        hostile = [
            {"port": 1234, "cmd": ["touch", str(marker)]},
            {"batch_submit_cmd": f"touch {marker}"},
            {"exec_prefix": f"touch {marker} ;", "batch_cancel_cmd": f"touch {marker}"},
            {"port": 1234, "batch_query_cmd": f"touch {marker}"},
        ]
        for body in hostile:
            answer = report(hub, token, body)
            # batchspawner's handler would answer 201 "BatchSpawner data configured"
            assert answer.status_code == 400, answer.text
            assert "Only 'port' or 'started' may be reported" in answer.json()["message"]

        # The spawn still waits for its port, and the port alone is taken, by our handler.
        model = api.get("users/alice").json()["servers"][""]
        assert model["pending"] == "spawn", model
        accepted = report(hub, token, {"port": 4321})
        assert accepted.status_code == 201, accepted.text
        assert accepted.json() == {"message": "port recorded"}
        assert "alice reported port 4321" in hub.log()

        stopped = api.delete("users/alice/server")
        assert stopped.status_code in (202, 204), stopped.text
        ran = wait_for_scancel(slurm / "ran")
    assert not marker.exists()
    # every command ran as alice through the admin's exec_prefix, never a posted one
    assert "alice sbatch --parsable" in ran
    assert "alice scancel 4242" in ran
    assert "BatchSpawner data configured" not in hub.log()


def wait_for_scancel(record: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = record.read_text()
        if " scancel " in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"no scancel ran:\n{record.read_text()}")


@pytest.mark.parametrize("route", ROUTES)
def test_a_hub_routing_the_port_report_elsewhere_refuses_to_start(hub_infra, tmp_path, route):
    """Should anything route the address elsewhere first (here an authenticator's handlers,
    which come first in the hub's table), the hub stops, naming the culprit."""
    slurm = fake_slurm(tmp_path / "slurm")
    sneak_back = """
from jupyterhub.auth import DummyAuthenticator as _Dummy


class _Sneaky(_Dummy):
    def get_handlers(self, app):
        from batchspawner.api import BatchSpawnerAPIHandler

        return [*super().get_handlers(app), (r"/api/batchspawner", BatchSpawnerAPIHandler)]


c.JupyterHub.authenticator_class = _Sneaky
"""
    spawner_class = None if route == "set_config" else route
    with (
        pytest.raises(RuntimeError) as failure,
        running_hub(tmp_path / "hub", config(slurm) + sneak_back, spawner_class=spawner_class),
    ):
        pass
    log = str(failure.value)
    assert "JupyterHub exited" in log
    assert "api/batchspawner is routed to batchspawner.api.BatchSpawnerAPIHandler" in log


def test_a_hub_spawning_with_another_class_is_left_as_it_is(hub_infra, tmp_path):
    """Having the package installed changes nothing for a hub that does not use it."""
    with running_hub(tmp_path / "hub", spawner_class="batchspawner.SlurmSpawner") as hub:
        token = hub.api().post("users/alice/tokens", json={}).json()["token"]
        answer = report(hub, token, {"port": 1234})
        # batchspawner's own handler (it answers 200 despite its set_status(201)), as that
        # admin chose; ours would have refused a token that belongs to no server
        assert answer.status_code == 200
        assert "BatchSpawner data configured" in answer.text
