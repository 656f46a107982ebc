"""Spawning through a hub as the benchmark user, and watching the spawn from outside.

Spawns go through the query string (``GET /hub/spawn[/user/server]?partition=…``), the one way
in that both implementations document. The hub's REST API (admin token) tells when a server is
ready or its spawn is over; its progress stream is what the spawn-pending page shows the user.
"""

from __future__ import annotations

import asyncio
import json
import pwd
import secrets
import shlex
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from tests.support.cluster_partitions import JOBENV_BIN
from tests.support.hub import TYPED_IN_ADDRESS_BAR, HubProcess, free_port

from .hubs import BENCH_USER, job_api_url

#: A small job both implementations accept: 1 CPU for an hour on the cpu partition.
BASE_OPTIONS = {
    "partition": "cpu",
    "nprocs": "1",
    "runtime": "01:00:00",
    "environment_id": "default",
}


def api_client(hub: HubProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(headers=hub.api_headers(), timeout=30)


async def request_spawn(
    client: httpx.AsyncClient, hub: HubProcess, options: Mapping[str, str], server: str = ""
) -> httpx.Response:
    """Ask for a spawn as a user's browser does when opening a bookmarked spawn link.

    The Fetch Metadata headers say the user typed it (jupyterhub_moss starts at once only then;
    the reference ignores them).
    """
    path = f"spawn/{BENCH_USER}/{server}" if server else "spawn"
    return await client.get(
        hub.hub_url(path),
        params=dict(options),
        headers=TYPED_IN_ADDRESS_BAR,
        follow_redirects=False,
    )


async def server_model(api: httpx.AsyncClient, hub: HubProcess, server: str = "") -> dict | None:
    """The user's server as the REST API shows it, or None when there is none."""
    answer = await api.get(hub.api_url(f"users/{BENCH_USER}"))
    answer.raise_for_status()
    return (answer.json().get("servers") or {}).get(server)


async def wait_ready(api: httpx.AsyncClient, hub: HubProcess, server: str, timeout: float) -> bool:
    """Poll until the server is ready (True) or its spawn is over without it (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = await server_model(api, hub, server)
        if model is not None and model.get("ready"):
            return True
        if model is None or (not model.get("pending") and not model.get("ready")):
            # Not pending and not ready: gone, or failed. Give a just-requested spawn a moment.
            await asyncio.sleep(0.1)
            model = await server_model(api, hub, server)
            if model is None or (not model.get("pending") and not model.get("ready")):
                return False
        await asyncio.sleep(0.1)
    return False


#: How often the harness looks, where it times a spawn: fine enough that the polling itself
#: adds at most 50 ms to a figure.
FINE_POLL = 0.05


async def wait_answering(client: httpx.AsyncClient, url: str, timeout: float) -> bool:
    """GET ``url`` (through the proxy, following the OAuth redirects) until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = await client.get(url, follow_redirects=True)
            if answer.status_code == 200 and answer.url.path.startswith(f"/user/{BENCH_USER}/"):
                return True
        except httpx.HTTPError:
            pass
        await asyncio.sleep(FINE_POLL)
    return False


async def stop_server(
    api: httpx.AsyncClient, hub: HubProcess, server: str = "", timeout=90
) -> None:
    """Stop (and for a named server, delete) the server; wait until the hub has let go."""
    path = f"users/{BENCH_USER}/servers/{server}" if server else f"users/{BENCH_USER}/server"
    body = {"remove": True} if server else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = await api.request("DELETE", hub.api_url(path), json=body)
        if answer.status_code in (202, 204, 404) or (
            answer.status_code == 400 and "not running" in answer.text.lower()
        ):
            break
        await asyncio.sleep(0.5)  # e.g. still pending: try again once it has settled
    while time.monotonic() < deadline:
        model = await server_model(api, hub, server)
        if model is None or not (model.get("pending") or model.get("ready")):
            return
        await asyncio.sleep(0.2)


@dataclass(frozen=True)
class SpawnOutcome:
    seconds: float
    failed: bool
    message: str


async def watch_progress(api: httpx.AsyncClient, hub: HubProcess, started: float, timeout: float):
    """Follow the spawn-pending page's event stream until the spawn is ready or has failed.

    ``started`` is the ``time.perf_counter()`` of the spawn request: the outcome's time is when
    the user's page would show it.
    """
    url = hub.api_url(f"users/{BENCH_USER}/server/progress")

    async def follow() -> SpawnOutcome:
        async with api.stream("GET", url, timeout=timeout) as answer:
            if answer.status_code != 200:
                text = (await answer.aread()).decode(errors="replace")
                return SpawnOutcome(
                    time.perf_counter() - started,
                    True,
                    f"{answer.status_code} from the progress stream: {text[:200]}",
                )
            async for line in answer.aiter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("failed"):
                    return SpawnOutcome(
                        time.perf_counter() - started, True, str(event.get("message", ""))
                    )
                if event.get("ready"):
                    return SpawnOutcome(time.perf_counter() - started, False, "ready")
        return SpawnOutcome(time.perf_counter() - started, True, "progress stream ended")

    return await asyncio.wait_for(follow(), timeout=timeout)


# -- the floors: a bare sbatch of a Jupyter server ---------------------------------------------

#: The named server the jupyterhub-singleuser floor pretends to be: no spawner ever starts it,
#: so the hub's routes and servers are left alone.
FLOOR_SERVER = "bench-floor"

#: Where a job finds its node's address: 127.0.0.1 on the single-node layout, the node's own
#: address in the multi-node layout's namespaces (where the hub reaches a real server too).
_NODE_ADDRESS = 'address=$(getent ahostsv4 "$SLURMD_NODENAME" | head -n 1 | cut -d " " -f 1)'


def _script_head(job_name: str) -> list[str]:
    home = pwd.getpwnam(BENCH_USER).pw_dir
    return [
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name}",
        "#SBATCH --partition=cpu",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --time=00:10:00",
        "#SBATCH --output=/dev/null",
        f"#SBATCH --chdir={home}",
        # sudo -E keeps root's HOME; Jupyter writes its runtime files under HOME
        f"export HOME={home}",
        f"export PATH={JOBENV_BIN}:$PATH",
        _NODE_ADDRESS,
    ]


def floor_script(port: int, token: str) -> str:
    """A job that starts JupyterLab from the job-side environment, and nothing else."""
    return "\n".join(
        [
            *_script_head("mossbench-floor"),
            f'exec jupyter-lab --no-browser --ip="${{address:-127.0.0.1}}" --port={port} '
            f"--IdentityProvider.token={token}",
            "",
        ]
    )


def singleuser_floor_script(port: int, token: str, hub_api_url: str) -> str:
    """A job that starts ``jupyterhub-singleuser`` as a spawner would, minus the spawner.

    It gets the environment JupyterHub gives a server (token, API URL, prefix, OAuth client),
    for a named server no spawner uses; nothing reports its port, the job just serves.
    """
    prefix = f"/user/{BENCH_USER}/{FLOOR_SERVER}/"
    scopes = json.dumps([f"access:servers!server={BENCH_USER}/{FLOOR_SERVER}"])
    environment = {
        "JUPYTERHUB_API_TOKEN": token,
        "JUPYTERHUB_API_URL": hub_api_url,
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_USER": BENCH_USER,
        "JUPYTERHUB_SERVER_NAME": FLOOR_SERVER,
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{BENCH_USER}-{FLOOR_SERVER}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": scopes,
        "JUPYTERHUB_HOST": "",
    }
    exports = [f"export {name}={shlex.quote(value)}" for name, value in environment.items()]
    return "\n".join(
        [
            *_script_head("mossbench-floor-singleuser"),
            *exports,
            f'export JUPYTERHUB_SERVICE_URL="http://${{address:-127.0.0.1}}:{port}{prefix}"',
            "exec jupyterhub-singleuser",
            "",
        ]
    )


def _job_node(env: Mapping[str, str], job_id: str) -> str | None:
    out = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T %N"],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    ).stdout.split()
    return out[1] if len(out) == 2 and out[0] == "RUNNING" else None


async def submit_as_bench_user(env: Mapping[str, str], script: str) -> str:
    """``sbatch`` a script as the benchmark's user, as the hubs do; the job's id."""
    process = await asyncio.create_subprocess_exec(
        "sudo", "-E", "-u", BENCH_USER, "sbatch", "--parsable",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
    )  # fmt: skip
    out, err = await process.communicate(script.encode())
    if process.returncode != 0:
        raise RuntimeError(f"sbatch failed: {err.decode(errors='replace').strip()}")
    return out.decode().strip().split(";")[0]


async def scancel(env: Mapping[str, str], job_id: str) -> None:
    cancel = await asyncio.create_subprocess_exec(
        "scancel", job_id, env=dict(env), stdout=asyncio.subprocess.DEVNULL
    )
    await cancel.wait()


async def _time_bare_job(
    env: Mapping[str, str],
    script: str,
    port: int,
    path: str,
    token: str,
    timeout: float,
    start_clock: Callable[[str], Awaitable[float | None]] | None = None,
) -> float | None:
    """Seconds from ``sbatch`` until the job's server answers ``path`` with 200 (or None).

    With ``start_clock``, the seconds are counted from the ``perf_counter()`` it returns
    instead; it is awaited with the job's id once the job is submitted (None: not measured).
    squeue and HTTP are both polled every 50 ms, as finely as the spawn they are compared with.
    """
    started = time.perf_counter()
    job_id = await submit_as_bench_user(env, script)
    try:
        if start_clock is not None and (started := await start_clock(job_id)) is None:
            return None
        deadline = started + timeout
        address = None
        while address is None and time.perf_counter() < deadline:
            node = await asyncio.to_thread(_job_node, env, job_id)
            if node:
                address = socket.gethostbyname(node)
            else:
                await asyncio.sleep(FINE_POLL)
        headers = {"Authorization": f"token {token}"}
        async with httpx.AsyncClient(timeout=5, headers=headers) as client:
            while address and time.perf_counter() < deadline:
                try:
                    answer = await client.get(f"http://{address}:{port}{path}")
                    if answer.status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(FINE_POLL)
        return None
    finally:
        await scancel(env, job_id)


async def floor_once(
    env: Mapping[str, str],
    timeout: float,
    start_clock: Callable[[str], Awaitable[float | None]] | None = None,
) -> float | None:
    """Seconds from a bare ``sbatch`` (as the user, like the hubs) until JupyterLab answers,
    or from what ``start_clock`` returns (see :func:`_time_bare_job`)."""
    port, token = free_port(), secrets.token_hex(16)
    script = floor_script(port, token)
    return await _time_bare_job(env, script, port, "/lab", token, timeout, start_clock)


async def singleuser_floor_once(
    env: Mapping[str, str], api: httpx.AsyncClient, hub: HubProcess, timeout: float
) -> float | None:
    """Seconds from a bare ``sbatch`` of ``jupyterhub-singleuser`` until its /lab answers.

    The server talks to the running hub (it checks the token it is asked with there), but is
    asked directly, not through the proxy. Its token is the benchmark user's, made through the
    REST API for this one job and deleted after it.
    """
    made = await api.post(
        hub.api_url(f"users/{BENCH_USER}/tokens"),
        json={"note": "benchmark: jupyterhub-singleuser floor", "expires_in": 900},
    )
    made.raise_for_status()
    token, token_id = made.json()["token"], made.json()["id"]
    try:
        port = free_port()
        script = singleuser_floor_script(port, token, job_api_url(hub))
        path = f"/user/{BENCH_USER}/{FLOOR_SERVER}/lab"
        return await _time_bare_job(env, script, port, path, token, timeout)
    finally:
        await api.delete(hub.api_url(f"users/{BENCH_USER}/tokens/{token_id}"))
