"""Spawning real single-user servers on the local cluster, and looking at what Slurm made of them.

Everything here talks to the real hub (REST API with the tests' admin service token) and to the
real cluster (Slurm commands as root, ``/proc`` as root). Every wait has a deadline and says
what it waited for when it gives up.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from .cluster_hub import cluster_hub_config
from .hub import HubProcess, wait_until_up
from .infra import NPM_BIN

DEBUG_OPTIONS = {"partition": "debug", "nprocs": "1", "runtime": "0:30:00"}
#: All 8 CPUs of the node: pends for as long as any other job runs there.
WHOLE_NODE_OPTIONS = {"partition": "debug", "nprocs": "8", "runtime": "0:30:00"}
SPAWN_DEADLINE = 120.0

T = TypeVar("T")


def lifecycle_config(extra: str = "") -> str:
    """Hub config for spawning on dev/cluster, as an admin would write it (see demo/)."""
    return (
        cluster_hub_config()
        + textwrap.dedent(
            """
            c.Spawner.start_timeout = 180
            c.Spawner.http_timeout = 90
            c.Spawner.poll_interval = 10
            """
        )
        + textwrap.dedent(extra)
    )


def wait_for(what: str, check: Callable[[], T | None], timeout: float, every: float = 0.25) -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


# -- the hub's side ---------------------------------------------------------------------------


def server_path(user: str, name: str = "") -> str:
    return f"users/{user}/servers/{name}" if name else f"users/{user}/server"


def request_spawn(
    api: httpx.Client, user: str, options: Mapping[str, Any], name: str = ""
) -> httpx.Response:
    """Ask for a server through the REST API (no waiting)."""
    return api.post(server_path(user, name), json={"user_options": dict(options)})


def user_model(api: httpx.Client, user: str) -> dict[str, Any]:
    response = api.get(f"users/{user}", params={"include_stopped_servers": "1"})
    response.raise_for_status()
    return response.json()


def server_model(api: httpx.Client, user: str, name: str = "") -> dict[str, Any] | None:
    return user_model(api, user).get("servers", {}).get(name)


def wait_until_ready(
    api: httpx.Client, user: str, name: str = "", timeout: float = SPAWN_DEADLINE
) -> dict[str, Any]:
    """Wait for the server to be ready; fail at once if its spawn fails."""

    def ready() -> dict[str, Any] | None:
        server = server_model(api, user, name)
        if server is None:
            return None
        if server.get("ready"):
            return server
        if not server.get("pending") and not server.get("started"):
            raise AssertionError(f"{user}/{name} is neither pending nor ready: {server}")
        return None

    try:
        return wait_for(f"{user}'s server {name!r} to be ready", ready, timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}; the server: {server_model(api, user, name)}") from None


def wait_until_stopped(api: httpx.Client, user: str, name: str = "", timeout: float = 60.0) -> None:
    def stopped() -> bool:
        server = server_model(api, user, name)
        return server is None or (not server.get("pending") and not server.get("ready"))

    wait_for(f"{user}'s server {name!r} to stop", stopped, timeout)


def stop_server(api: httpx.Client, user: str, name: str = "", timeout: float = 60.0) -> None:
    response = api.delete(server_path(user, name))
    assert response.status_code in (202, 204, 404), response.text
    wait_until_stopped(api, user, name, timeout)


def server_state(api: httpx.Client, user: str, name: str = "") -> dict[str, Any]:
    server = server_model(api, user, name) or {}
    return server.get("state") or {}


def progress_events(hub: HubProcess, user: str, name: str = "", timeout: float = 120.0):
    """The spawn's progress events as they come (JupyterHub's event stream)."""
    import json

    path = f"users/{user}/servers/{name}/progress" if name else f"users/{user}/server/progress"
    with (
        httpx.Client(
            base_url=hub.hub_url("api/"),
            headers={"Authorization": f"token {hub.admin_token}"},
            timeout=timeout,
        ) as client,
        client.stream("GET", path) as response,
    ):
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data:"):
                yield json.loads(line[len("data:") :])


def user_client(hub: HubProcess, token: str) -> httpx.Client:
    """A client of the public proxy with a token (reaches /user/... through the proxy)."""
    client = httpx.Client(base_url=hub.url, headers={"Authorization": f"token {token}"}, timeout=30)
    hub.clients.append(client)
    return client


def new_user_token(api: httpx.Client, user: str) -> str:
    response = api.post(f"users/{user}/tokens", json={"note": "lifecycle tests"})
    response.raise_for_status()
    return response.json()["token"]


def restart_hub(hub: HubProcess, env: Mapping[str, str]) -> HubProcess:
    """Stop the hub process (its servers keep running when ``cleanup_servers`` is off) and
    start a new one on the same configuration, database and ports, with environment ``env``.

    The same :class:`HubProcess` object is updated, so the fixture that started the hub still
    stops the new process at the end.
    """
    hub.stop()
    run_env = dict(env)
    run_env["PATH"] = f"{NPM_BIN}:{Path(sys.executable).parent}:{run_env.get('PATH', '')}"
    with open(hub.log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(hub.root / "jupyterhub_config.py")],
            cwd=hub.root,
            env=run_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub.process = process
    hub.clients = []
    wait_until_up(hub)
    return hub


def kill_hub(hub: HubProcess) -> None:
    """SIGKILL the hub process (not its proxy): a crash."""
    if hub.process.poll() is None:
        hub.process.send_signal(signal.SIGKILL)
        hub.process.wait(timeout=10)


# -- Slurm's side -----------------------------------------------------------------------------


def slurm(env: Mapping[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        list(args), env=dict(env), capture_output=True, text=True, timeout=30, check=False
    )
    if check:
        assert done.returncode == 0, f"{args} failed: {done.stderr}"
    return done


def listed_state(env: Mapping[str, str], job_id: str) -> str:
    """The job's state in a plain ``squeue`` (pending/running jobs only); "" when not listed."""
    done = slurm(env, "squeue", "-h", "-j", job_id, "-o", "%T", check=False)
    if done.returncode != 0 and "Invalid job id" in done.stderr:
        return ""
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def job_fields(env: Mapping[str, str], job_id: str) -> dict[str, str]:
    """``scontrol show job -o`` as a dict ({} once Slurm has forgotten the job)."""
    from jupyterhub_moss.slurm.scontrol import parse_scontrol_fields

    done = slurm(env, "scontrol", "show", "job", "-o", job_id, check=False)
    if done.returncode != 0:
        return {}
    return parse_scontrol_fields(done.stdout.strip())


def submit_as(env: Mapping[str, str], user: str, *sbatch_args: str) -> str:
    """Submit a job as ``user`` through sudo, as a hub would; return its id."""
    command = ["sudo", "-E", "-u", user, "sbatch", "--parsable", *sbatch_args]
    done = subprocess.run(
        command, env=dict(env), capture_output=True, text=True, timeout=30, check=False, cwd="/"
    )
    assert done.returncode == 0, f"sbatch as {user} failed: {done.stderr}"
    return done.stdout.strip().split(";")[0]


def cancel(env: Mapping[str, str], job_ids: Iterable[str]) -> None:
    ids = [job_id for job_id in job_ids if job_id]
    if ids:
        slurm(env, "scancel", *ids, check=False)


def wait_job_state(env: Mapping[str, str], job_id: str, states: set[str], timeout: float = 60):
    return wait_for(
        f"job {job_id} to be in {sorted(states)}",
        lambda: state if (state := listed_state(env, job_id)) in states else None,
        timeout,
    )


def blocker(env: Mapping[str, str], partition: str = "debug", user: str = "bob") -> str:
    """A sleeping one-CPU job of ``user``, running: a node of ``partition`` is then too busy
    for a request of all its CPUs (see :data:`WHOLE_NODE_OPTIONS`)."""
    job_id = submit_as(
        env,
        user,
        "-p",
        partition,
        "-c",
        "1",
        "--mem=100M",
        "-t",
        "10",
        "-o",
        "/dev/null",
        "-J",
        "moss-test-blocker",
        "--wrap",
        "sleep 600",
    )
    wait_job_state(env, job_id, {"RUNNING"}, timeout=120)
    return job_id


def wait_for_job_id(api: httpx.Client, user: str, name: str = "", timeout: float = 30) -> str:
    """The job id the spawner recorded (it saves it as soon as sbatch answers)."""
    return wait_for(
        f"{user}'s server {name!r} to have a job id",
        lambda: server_state(api, user, name).get("job_id"),
        timeout,
    )


def free_cpus(env: Mapping[str, str], partition: str) -> int:
    """Idle CPUs of a partition (sinfo's A/I/O/T)."""
    out = slurm(env, "sinfo", "-h", "-p", partition, "-o", "%C").stdout.split()
    return sum(int(item.split("/")[1]) for item in out)


def fill_partition(env: Mapping[str, str], partition: str, user: str = "bob") -> list[str]:
    """Keep every idle CPU of ``partition`` busy with ``user``'s sleeping jobs; their ids."""
    ids = []
    cpus = free_cpus(env, partition)
    if cpus:
        ids.append(
            submit_as(
                env,
                user,
                "-p",
                partition,
                "-c",
                str(cpus),
                "--mem=100M",
                "-t",
                "10",
                "-o",
                "/dev/null",
                "--wrap",
                "sleep 600",
            )
        )
        wait_job_state(env, ids[-1], {"RUNNING"})
    return ids


# -- processes ----------------------------------------------------------------------------------


def process_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def job_processes(job_id: str) -> list[int]:
    """Live processes started for ``job_id`` (their environment has SLURM_JOB_ID=job_id)."""
    pids = []
    marker = f"SLURM_JOB_ID={job_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and _alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def singleuser_pid(job_id: str) -> int | None:
    """The job's Jupyter server: the process running jupyterhub-singleuser."""
    for pid in job_processes(job_id):
        words = command_line(pid)
        if any("jupyterhub-singleuser" in word for word in words[:3]):
            return pid
    return None


# -- what a browser spawn waits for (the e2e tier) -----------------------------------------------

#: JupyterLab's main area: the page is JupyterLab, loaded.
LAB_SHELL = "#jp-main-dock-panel"


def wait_for_lab(page, path: str) -> None:
    """The browser lands on ``path`` (``/user/alice/lab``) and JupyterLab has loaded there."""
    page.wait_for_url(re.compile(rf".*{re.escape(path)}.*"), timeout=180_000)
    page.wait_for_selector(LAB_SHELL, timeout=120_000)


def assert_job_gone(env: Mapping[str, str], job_id: str) -> None:
    """squeue no longer lists the job, and none of its processes is left."""
    wait_for(f"squeue to drop job {job_id}", lambda: listed_state(env, job_id) == "", 60)
    wait_for(f"the processes of job {job_id} to end", lambda: not job_processes(job_id), 60)


def stop_from_home(page, hub: HubProcess, button: str) -> None:
    """Press a server's Stop button on the hub's home page."""
    page.goto(hub.hub_url("home"))
    page.click(button)
