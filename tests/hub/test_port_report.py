"""The port-report endpoint takes a port from a server's own token, and nothing else.

batchspawner's handler at ``/hub/api/batchspawner`` sets every key of the JSON body as an
attribute of the spawner. Ours shadows it (same address, earlier in the hub's table). These
hub-tier tests need no cluster: they show what is refused before any spawner is looked at.
The tests with a real server's token, from a real job, are in
tests/slurm/test_lifecycle_port_report.py.
"""

from __future__ import annotations

import httpx
import pytest
from support.hub import running_hub

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def hub(hub_infra, tmp_path_factory):
    """One hub for the module: these tests change nothing in it."""
    with running_hub(tmp_path_factory.mktemp("port-report-hub")) as started:
        yield started


def post(hub, body, token: str | None = None, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.post(hub.hub_url("api/batchspawner"), json=body, headers=headers, **kwargs)


@pytest.fixture
def alice_token(hub) -> str:
    response = hub.api().post("users/alice/tokens", json={"note": "not a server token"})
    response.raise_for_status()
    return response.json()["token"]


def test_anonymous_reports_are_refused(hub):
    response = post(hub, {"port": 1234})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"port": 1234, "exec_prefix": "touch /tmp/pwned", "batch_query_cmd": "true"},
        {"cmd": ["touch", "/tmp/pwned"]},
        {"port": 1234, "ip": "evil.example"},
        {},
        {"port": "1234"},
        {"port": 12.5},
        {"port": True},
        {"port": 0},
        {"port": 65536},
        {"port": -1},
        {"started": False},
        {"started": "true"},
        {"started": True, "port": 1234},
        {"started": True, "node": "evil.example"},
        [1234],
        "1234",
        None,
    ],
)
def test_anything_but_a_lone_port_or_started_is_a_400(hub, alice_token, body):
    response = post(hub, body, alice_token)
    assert response.status_code == 400, response.text
    assert response.json()["status"] == 400


def test_a_body_that_is_not_json_is_a_400(hub, alice_token):
    response = httpx.post(
        hub.hub_url("api/batchspawner"),
        content=b"port=1234",
        headers={"Authorization": f"token {alice_token}"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize("body", [{"port": 1234}, {"started": True}])
def test_a_users_own_token_is_not_a_servers_token(hub, alice_token, body):
    """A valid body from a token that belongs to no server: refused, nothing to change."""
    response = post(hub, body, alice_token)
    assert response.status_code == 403
    assert "own token" in response.json()["message"]


def test_a_service_token_cannot_report_either(hub):
    response = post(hub, {"port": 1234}, hub.admin_token)
    assert response.status_code == 403
