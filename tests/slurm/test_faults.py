"""Faults on the real cluster, seen through a real hub.

- slurmctld stopped (SIGSTOP) while users look at the page: the page and its fragments keep
  answering within a bounded time, with the "Slurm did not answer" banner; a spawn fails with
  "Slurm is not answering" (not a 500, not a hang); and no job appears in the queue behind the
  user's back once the controller is back (a timed-out sbatch may still have reached it);
- a spawn cancelled by its user while ``sbatch`` waits for that stopped controller: the stop
  answers (not a 500), and the job the stopped sbatch may still create is cancelled;
- ``sinfo`` hanging past the hub's timeout: the same banner, and nothing else waits for it;
- a node drained while a server runs there: the server is still reported running, and the
  availability table shows the drain;
- a job cancelled by an admin (``scancel`` outside the hub): the hub notices within one poll
  interval and the user can start again.

A hub SIGKILLed mid-spawn is tests/slurm/test_lifecycle_restarts.py's (the pending job is
cancelled by the next hub); a slurmctld restart under running servers is too.

Other tests may use the cluster at the same time: every job here has a name of its own and only
those are cancelled; a stopped controller is always continued, a drained node always resumed.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bs4 import BeautifulSoup
from support.hardening import (
    cancel_jobs_named,
    cluster_config,
    jobs_named,
    stopped_slurmctld,
    unique_job_name,
)
from support.hub import HubProcess, running_hub, xsrf_from_page
from support.infra import running_cluster
from support.spawning import (
    listed_state,
    progress_events,
    request_spawn,
    server_model,
    server_state,
    stop_server,
    wait_for,
    wait_until_ready,
)

pytestmark = pytest.mark.slurm

SLURM_TIMEOUT = 2.0
POLL_INTERVAL = 5.0
GOOD = {"partition": "debug", "nprocs": "1", "memory": "200M", "runtime": "0:10:00"}
STALE = "Slurm did not answer"


def hub_config(job_name: str, extra: str = "", timeout: float = SLURM_TIMEOUT) -> str:
    """A short Slurm timeout makes the tests of a silent Slurm quick; spawning tests on a busy
    machine need the usual one (sbatch through sudo can take a few seconds)."""
    return cluster_config(
        textwrap.dedent(
            f"""
        c.MOSlurmSpawner.job_name = {job_name!r}
        c.MOSlurmSpawner.slurm_timeout = {timeout}
        c.MOSlurmSpawner.cluster_refresh_interval = 5
        c.MOSlurmSpawner.availability_refresh_interval = 2
        c.MOSlurmSpawner.startup_poll_interval = 1
        c.Spawner.poll_interval = {POLL_INTERVAL}
        c.Spawner.start_timeout = 120
        c.Spawner.http_timeout = 60
        """
        )
        + extra
    )


@pytest.fixture
def cluster_env(slurm_cluster) -> dict[str, str]:
    return (running_cluster() or slurm_cluster).env


@pytest.fixture
def job_name(cluster_env) -> Iterator[str]:
    name = unique_job_name("moss-faults")
    yield name
    cancel_jobs_named(cluster_env, name)


def availability(hub: HubProcess, client: httpx.Client) -> tuple[str, float, BeautifulSoup]:
    """The table's status line, how long the fragment took, and the fragment."""
    started = time.monotonic()
    response = client.get(
        hub.hub_url("moss/form/availability/alice/"),
        params={"partition": "debug", "moss_tab": "advanced"},  # debug is Advanced-only
    )
    took = time.monotonic() - started
    assert response.status_code == 200, response.text[:500]
    soup = BeautifulSoup(response.text, "html.parser")
    return soup.select_one(".moss-availability-status").get_text(" ", strip=True), took, soup


def wait_for_status(hub, client, wanted: str, timeout: float = 30.0) -> list[float]:
    """Poll the table until its status line says ``wanted``; every answer's time."""
    took: list[float] = []

    def check() -> bool:
        status, seconds, _ = availability(hub, client)
        took.append(seconds)
        return wanted in status

    wait_for(f"the availability status to say {wanted!r}", check, timeout, every=0.5)
    return took


def spawn_failure_message(hub: HubProcess, response: httpx.Response, user: str) -> str:
    if response.status_code >= 400:
        return response.json()["message"]
    events = list(progress_events(hub, user, timeout=60))
    assert events and events[-1].get("failed"), events
    return events[-1]["message"]


def test_a_stopped_controller_gives_a_stale_page_and_a_clear_spawn_error(
    slurm_cluster, hub_factory, cluster_env, job_name
):
    hub = hub_factory(extra_config=hub_config(job_name), env=cluster_env)
    alice, bob, api = hub.login("alice"), hub.login("bob"), hub.api()
    assert "Updated" in availability(hub, alice)[0]
    bob_xsrf = xsrf_from_page(bob.get(hub.hub_url("spawn")).text)

    with stopped_slurmctld(slurm_cluster.state_dir):
        took = wait_for_status(hub, alice, STALE)
        page = alice.get(hub.hub_url("spawn"))
        assert page.status_code == 200
        banner = BeautifulSoup(page.text, "html.parser").select_one(".moss-availability-status")
        assert "Showing data from" in banner.text and STALE in banner.text
        assert "alert-warning" in banner["class"]

        started = time.monotonic()
        by_api = request_spawn(api, "alice", GOOD)
        by_form = bob.post(
            hub.hub_url("spawn"), data={**GOOD, "_xsrf": bob_xsrf}, follow_redirects=False
        )
        assert by_api.status_code != 500 and by_form.status_code != 500
        for user, response in (("alice", by_api), ("bob", by_form)):
            if response.status_code == 302:  # the form: the error comes on spawn-pending
                response = httpx.Response(202)
            message = spawn_failure_message(hub, response, user)
            assert "Slurm is not answering" in message, message
        spawn_seconds = time.monotonic() - started

    print(
        f"faults: stopped slurmctld: fragment answers in at most {max(took):.2f} s; "
        f"two spawns failed clearly within {spawn_seconds:.1f} s"
    )
    assert max(took) <= SLURM_TIMEOUT + 1.5
    assert spawn_seconds <= 3 * SLURM_TIMEOUT + 15
    # A timed-out sbatch may still reach the controller once it runs again: the job it
    # creates must not stay in the queue, unknown to the hub (the hub looks twice, 5 s apart).
    queued = wait_until_no_job_is_queued(cluster_env, job_name)
    print(f"faults: jobs of the timed-out sbatch in the queue, second by second: {queued}")
    assert queued[-6:] == [[]] * 6
    if any(queued):
        assert "submitted by an sbatch that timed out" in hub.log()
    wait_for_status(hub, alice, "Updated", timeout=30)  # and the page is fresh again
    for user in ("alice", "bob"):
        server = server_model(api, user)
        assert server is None or not (server["ready"] or server["pending"]), server


def wait_until_no_job_is_queued(env, job_name: str) -> list[list[str]]:
    """The jobs named ``job_name`` second by second, until none was seen for 6 s in a row
    (at least 10 s after the call, for a late submission to show up) or 30 s passed."""
    queued: list[list[str]] = []
    looked_from, deadline = time.monotonic(), time.monotonic() + 30
    while time.monotonic() < deadline:
        queued.append(jobs_named(env, job_name))
        if time.monotonic() - looked_from > 10 and queued[-6:] == [[]] * 6:
            break
        time.sleep(1)
    return queued


def sbatch_running() -> bool:
    found = subprocess.run(["pgrep", "-x", "sbatch"], capture_output=True, check=False)
    return found.returncode == 0


def test_a_spawn_cancelled_while_sbatch_waits_answers_the_stop_and_leaves_no_job(
    slurm_cluster, hub_factory, cluster_env, job_name
):
    # sbatch may wait 60 s here: it is the user's cancel that stops it, not the hub's timeout
    hub = hub_factory(extra_config=hub_config(job_name, timeout=60), env=cluster_env)
    api = hub.api()
    with stopped_slurmctld(slurm_cluster.state_dir):
        started = request_spawn(api, "alice", GOOD)
        assert started.status_code == 202, started.text
        wait_for("sbatch to wait for the stopped controller", sbatch_running, 30)
        stopped = api.delete("users/alice/server")
        # JupyterHub gives a cancelled start one second to end, else the stop is a 500
        assert stopped.status_code in (202, 204), stopped.text
        wait_for("the stopped sbatch to end", lambda: not sbatch_running(), 10)
    queued = wait_until_no_job_is_queued(cluster_env, job_name)
    print(f"faults: jobs of the cancelled spawn's sbatch in the queue, second by second: {queued}")
    assert queued[-6:] == [[]] * 6
    if any(queued):
        assert "submitted by an sbatch whose spawn was cancelled" in hub.log()
    server = server_model(api, "alice")
    assert server is None or not (server["ready"] or server["pending"]), server


def slow_sinfo(folder: Path, flag: Path) -> Path:
    """An sinfo that hangs while ``flag`` exists (the hub's timeout then stops it)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    path = folder / "sinfo"
    path.write_text(
        "#!/bin/sh\n# Test wrapper: an sinfo that hangs while a flag file exists.\n"
        f'if [ -e "{flag}" ]; then sleep 60; fi\nexec /usr/bin/sinfo "$@"\n'
    )
    path.chmod(0o755)
    return path


def test_a_hanging_sinfo_gives_a_stale_page_and_blocks_nothing_else(
    slurm_cluster, hub_factory, cluster_env, job_name, tmp_path
):
    flag = tmp_path / "hang"
    wrapper = slow_sinfo(tmp_path / "bin", flag)
    config = hub_config(job_name, f'\nc.MOSlurmSpawner.slurm_commands = {{"sinfo": "{wrapper}"}}\n')
    hub = hub_factory(extra_config=config, env=cluster_env)
    alice = hub.login("alice")
    assert "Updated" in availability(hub, alice)[0]
    xsrf = xsrf_from_page(alice.get(hub.hub_url("spawn")).text)

    flag.touch()
    home: list[float] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        # meanwhile, hub pages that do not need Slurm, asked again and again
        stop = False

        def keep_asking() -> None:
            with httpx.Client(cookies=alice.cookies, timeout=30) as client:
                while not stop:
                    started = time.monotonic()
                    assert client.get(hub.hub_url("home")).status_code == 200
                    home.append(time.monotonic() - started)
                    time.sleep(0.1)

        asking = pool.submit(keep_asking)
        try:
            took = wait_for_status(hub, alice, STALE)
            started = time.monotonic()
            refused = alice.post(
                hub.hub_url("spawn"),
                data={**GOOD, "nprocs": "0", "_xsrf": xsrf},
                follow_redirects=False,
            )
            refusal_seconds = time.monotonic() - started
        finally:
            stop = True
            asking.result(timeout=30)
    flag.unlink()

    print(
        f"faults: hanging sinfo: /hub/home p100 {max(home):.3f} s over {len(home)} requests; "
        f"fragment at most {max(took):.2f} s; a refusal in {refusal_seconds:.2f} s"
    )
    assert refused.status_code == 400 and "nprocs:" in refused.text
    assert refusal_seconds < 1.0  # validation reads the last snapshot, it does not wait
    assert max(home) < 1.0  # the event loop never waited for sinfo
    assert max(took) <= SLURM_TIMEOUT + 1.5
    assert f"{wrapper}" in hub.log() or "sinfo" in hub.log()
    wait_for_status(hub, alice, "Updated", timeout=30)  # sinfo answers again: fresh data


@pytest.fixture(scope="module")
def spawning_hub(slurm_cluster, hub_infra, tmp_path_factory) -> Iterator[HubProcess]:
    env = (running_cluster() or slurm_cluster).env
    name = unique_job_name("moss-faults")
    config = hub_config(name, timeout=20)
    try:
        with running_hub(tmp_path_factory.mktemp("faults-hub"), config, env=env) as hub:
            yield hub
    finally:
        cancel_jobs_named(env, name)


def test_a_node_drained_under_a_running_server_is_reported_truthfully(spawning_hub, cluster_env):
    hub, api = spawning_hub, spawning_hub.api()
    alice = hub.login("alice")
    assert request_spawn(api, "alice", GOOD).status_code in (201, 202)
    wait_until_ready(api, "alice", timeout=120)
    job_id, node = server_state(api, "alice")["job_id"], server_state(api, "alice")["job_node"]
    drained = subprocess.run(
        ["scontrol", "update", f"nodename={node}", "state=drain", "reason=moss-faults-test"],
        env=cluster_env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    drained_at = time.monotonic()
    try:
        assert drained.returncode == 0, drained.stderr

        def drain_shown() -> str:
            _, _, table = availability(hub, alice)
            row = table.find("th", string="debug").find_parent("tr").get_text(" ", strip=True)
            # one node: the partition shows drained; several: some nodes are unavailable
            return row if "drained" in row or "some nodes unavailable" in row else ""

        text = wait_for("the table to show the drain", drain_shown, 20, every=1.0)
        time.sleep(max(0.0, drained_at + POLL_INTERVAL * 1.5 - time.monotonic()))  # a poll
        assert listed_state(cluster_env, job_id) == "RUNNING"
        server = server_model(api, "alice")
        assert server["ready"], server
        assert "has ended" not in hub.log()
        print(f"faults: drained node {node}: server still ready; the table says {text!r}")
    finally:
        subprocess.run(
            ["scontrol", "update", f"nodename={node}", "state=resume"],
            env=cluster_env, capture_output=True, timeout=30,
        )  # fmt: skip
    stop_server(api, "alice")
    assert listed_state(cluster_env, job_id) == ""


def test_a_job_cancelled_outside_the_hub_is_noticed_within_a_poll_interval(
    spawning_hub, cluster_env
):
    api = spawning_hub.api()
    assert request_spawn(api, "alice", GOOD).status_code in (201, 202)
    wait_until_ready(api, "alice", timeout=120)
    job_id = server_state(api, "alice")["job_id"]

    subprocess.run(["scancel", job_id], env=cluster_env, check=True, timeout=30)
    cancelled = time.monotonic()

    def noticed() -> bool:
        server = server_model(api, "alice")
        return server is None or not (server["ready"] or server["pending"])

    wait_for("the hub to notice the cancelled job", noticed, 4 * POLL_INTERVAL, every=0.2)
    seconds = time.monotonic() - cancelled
    print(f"faults: scancel outside the hub noticed after {seconds:.1f} s (poll {POLL_INTERVAL} s)")
    # JupyterHub polls every poll_interval, give or take its 10 % jitter; plus one squeue
    assert seconds <= POLL_INTERVAL * 1.1 + 2

    again = request_spawn(api, "alice", GOOD)  # the user can start again
    assert again.status_code in (201, 202), again.text
    wait_until_ready(api, "alice", timeout=120)
    new_job = server_state(api, "alice")["job_id"]
    assert new_job != job_id
    stop_server(api, "alice")
    assert listed_state(cluster_env, new_job) == ""
