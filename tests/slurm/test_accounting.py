"""A real site's accounting, on the cluster with slurmdbd (`dev/cluster start`, the default).

The site is the one `dev/cluster accounting` prints: alice charges physics (default) or
chemistry, bob physics only; QOS normal, short (2 h, 4 CPUs), long, gpu; partition chem is open
to the account chemistry only, lab to the Unix group mosslab (alice), and hidden is hidden.
Every check reads the hub's pages and API as a user would, and Slurm as its admin would.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator

import pytest
from bs4 import BeautifulSoup
from support.cluster_hub import (
    cluster_hub_config,
    sdiag_count,
    spawn_via_api,
    spawn_via_query,
    user_jobs,
)
from support.cluster_partitions import CLUSTER_PARTITIONS, JOBENV_BIN
from support.hub import running_hub, xsrf_from_page
from support.infra import CLUSTER_SCRIPT

pytestmark = pytest.mark.accounting

SITE = {
    **CLUSTER_PARTITIONS,
    **{
        name: {
            "description": name,
            "simple": False,
            "jupyter_environments": {"default": {"path": JOBENV_BIN}},
        }
        for name in ("chem", "lab", "hidden")
    },
}
#: Short refreshes, so that changes made with sacctmgr and scontrol show within the test.
CONFIG = (
    cluster_hub_config(SITE)
    + "c.MOSlurmSpawner.accounting_refresh_interval = 5\n"
    + "c.MOSlurmSpawner.cluster_refresh_interval = 5\n"
    + 'c.MOSlurmSpawner.req_options = "--hold"\n'
)


@pytest.fixture(scope="module")
def site_hub(accounting_cluster, slurm_cluster, hub_infra, tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("accounting"), CONFIG, env=slurm_cluster.env) as hub:
        yield hub


def run(env, *argv: str) -> str:
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=30, check=True
    ).stdout


def fragment(hub, client, **values: str) -> BeautifulSoup:
    """The partition-dependent controls for these values, on the Advanced tab."""
    params = {"moss_tab": "advanced", **values}
    response = client.get(
        hub.hub_url("moss/form/partition/" + client.moss_user + "/"), params=params
    )
    response.raise_for_status()
    return BeautifulSoup(response.text, "html.parser")


def login(hub, user: str):
    client = hub.login(user)
    client.moss_user = user
    return client


def page(hub, client) -> BeautifulSoup:
    response = client.get(hub.hub_url("spawn"))
    response.raise_for_status()
    return BeautifulSoup(response.text, "html.parser")


def options_of(soup: BeautifulSoup, name: str) -> list[str]:
    select = soup.find("select", attrs={"name": name})
    return [option["value"] for option in select.find_all("option")] if select else []


def partitions_of(soup: BeautifulSoup) -> set[str]:
    radios = soup.find_all("input", attrs={"name": "partition"})
    return {radio["value"] for radio in radios} | set(options_of(soup, "partition"))


def test_each_user_sees_their_own_accounts_qos_and_partitions(site_hub):
    alice, bob = login(site_hub, "alice"), login(site_hub, "bob")
    alice_controls = fragment(site_hub, alice, partition="cpu")
    assert options_of(alice_controls, "account") == ["physics", "chemistry"]
    assert options_of(alice_controls, "qos") == ["long", "normal", "short"]
    assert options_of(fragment(site_hub, alice, partition="cpu", account="chemistry"), "qos") == [
        "gpu",
        "long",
        "normal",
    ]
    # on gpu, alice's physics association made for that partition wins over the general one
    assert options_of(fragment(site_hub, alice, partition="gpu"), "qos") == ["gpu", "normal"]
    assert options_of(fragment(site_hub, bob, partition="cpu"), "account") == ["physics"]

    advanced = {"moss_tab": "advanced"}
    alice_page = BeautifulSoup(
        alice.get(site_hub.hub_url("moss/form/body/alice/"), params=advanced).text, "html.parser"
    )
    bob_page = BeautifulSoup(
        bob.get(site_hub.hub_url("moss/form/body/bob/"), params=advanced).text, "html.parser"
    )
    assert partitions_of(alice_page) == set(SITE)
    # bob: not in the account chemistry, not in the group mosslab; hidden is open to all
    assert partitions_of(bob_page) == set(SITE) - {"chem", "lab"}


def test_the_hidden_partition_has_slurms_limits(site_hub):
    controls = fragment(site_hub, login(site_hub, "alice"), partition="hidden", qos="long")
    hint = controls.find(id="moss-runtime-help").get_text(" ")
    assert "at most 2-00:00:00 (QOS long)" in hint  # the partition allows 3 days
    controls = fragment(site_hub, login(site_hub, "alice"), partition="hidden", qos="normal")
    assert "at most 1-00:00:00 (QOS normal)" in controls.find(id="moss-runtime-help").get_text(" ")


def test_a_tighter_qos_shows_on_the_page(site_hub):
    controls = fragment(site_hub, login(site_hub, "alice"), partition="cpu", qos="short")
    assert "at most 02:00:00 (QOS short)" in controls.find(id="moss-runtime-help").get_text(" ")
    assert controls.find("input", attrs={"name": "nprocs"})["max"] == "4"
    assert "(QOS short)" in controls.find(id="moss-nprocs-help").get_text(" ")
    # the association's own limits: chemistry allows 8 h and 6 CPUs a job
    controls = fragment(site_hub, login(site_hub, "alice"), partition="cpu", account="chemistry")
    assert "at most 08:00:00 (account chemistry)" in controls.find(id="moss-runtime-help").get_text(
        " "
    )
    assert controls.find("input", attrs={"name": "nprocs"})["max"] == "6"


GOOD = {"partition": "debug", "nprocs": "1", "runtime": "00:30:00"}
REFUSED = [
    ("account", {"account": "geology"}, "bob"),
    ("account", {"account": "chemistry"}, "bob"),
    ("qos", {"qos": "gpu"}, "alice"),  # physics may not use gpu on debug
    ("qos", {"qos": "nosuch"}, "alice"),
    ("qos", {"qos": "short", "account": "chemistry"}, "alice"),
    ("runtime", {"partition": "cpu", "qos": "short", "runtime": "3:00:00"}, "alice"),
    ("nprocs", {"partition": "cpu", "qos": "short", "nprocs": "5"}, "alice"),
    ("runtime", {"partition": "cpu", "account": "chemistry", "runtime": "9:00:00"}, "alice"),
    ("partition", {"partition": "chem"}, "bob"),
    ("partition", {"partition": "lab"}, "bob"),
]


def ask(way: str, hub, user: str, options: dict[str, str]):
    if way == "api":
        return spawn_via_api(hub, user, options)
    client = login(hub, user)
    if way == "form":
        # (spawn_via_form is alice's: this is the same for any user)
        page_ = client.get(hub.hub_url("spawn"))
        page_.raise_for_status()
        xsrf = xsrf_from_page(page_.text)
        return client.post(
            hub.hub_url("spawn"), data={**options, "_xsrf": xsrf}, follow_redirects=False
        )
    return spawn_via_query(hub, client, options)


def message_of(way: str, response) -> str:
    if way == "api":
        return response.json()["message"]
    return BeautifulSoup(response.text, "html.parser").get_text(" ")


@pytest.mark.parametrize("way", ["form", "query", "api"])
@pytest.mark.parametrize(
    ("field", "bad", "user"),
    REFUSED,
    ids=[f"{f}-{u}-{'-'.join(b.values())}" for f, b, u in REFUSED],
)
def test_each_refusal_names_its_field_on_every_way_in_and_nothing_reaches_slurm(
    slurm_cluster, site_hub, way, field, bad, user
):
    env = slurm_cluster.env
    submissions = sdiag_count(env, "REQUEST_SUBMIT_BATCH_JOB")
    jobs = set(user_jobs(env, user))
    response = ask(way, site_hub, user, {**GOOD, **bad})
    assert response.status_code == 400, response.text[:1000]
    assert f"{field}:" in message_of(way, response)
    assert sdiag_count(env, "REQUEST_SUBMIT_BATCH_JOB") == submissions
    assert set(user_jobs(env, user)) <= jobs


def held_job(env, user: str, deadline: float = 30) -> str:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        jobs = user_jobs(env, user)
        if jobs:
            return jobs[0]
        time.sleep(0.2)
    raise AssertionError(f"no job for {user}")


def test_the_job_slurm_records_carries_the_chosen_account_and_qos(slurm_cluster, site_hub):
    env = slurm_cluster.env
    assert user_jobs(env, "bob") == []
    options = {**GOOD, "partition": "cpu", "account": "physics", "qos": "short", "nprocs": "2"}
    try:
        assert spawn_via_api(site_hub, "bob", options).status_code in (201, 202)
        job = run(env, "scontrol", "show", "job", "-o", held_job(env, "bob"))
        assert " Account=physics " in job and " QOS=short " in job, job
    finally:
        site_hub.api().delete("users/bob/server")
        end = time.monotonic() + 30
        while user_jobs(env, "bob") and time.monotonic() < end:
            time.sleep(0.2)
    assert user_jobs(env, "bob") == []


@pytest.fixture
def geology(slurm_cluster) -> Iterator[None]:
    """bob in a new account geology, as an admin would add him at runtime; removed after."""
    env = slurm_cluster.env
    run(env, "sacctmgr", "-i", "add", "account", "geology", "parent=root")
    run(env, "sacctmgr", "-i", "add", "user", "bob", "account=geology")
    try:
        yield
    finally:
        subprocess.run(
            ["sacctmgr", "-i", "delete", "user", "bob", "account=geology"],
            env=env,
            capture_output=True,
            timeout=30,
        )
        subprocess.run(
            ["sacctmgr", "-i", "delete", "account", "geology"],
            env=env,
            capture_output=True,
            timeout=30,
        )


def wait_for(check, seconds: float = 25) -> None:
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, "not seen within the refresh interval"
        time.sleep(0.5)


def test_accounts_added_at_runtime_appear_within_one_refresh(site_hub, geology):
    bob = login(site_hub, "bob")
    wait_for(lambda: "geology" in options_of(fragment(site_hub, bob, partition="cpu"), "account"))


def test_partitions_opened_at_runtime_appear_within_one_refresh(slurm_cluster, site_hub):
    env = slurm_cluster.env
    bob = login(site_hub, "bob")

    def bob_sees_lab() -> bool:
        body = bob.get(site_hub.hub_url("moss/form/body/bob/"), params={"moss_tab": "advanced"})
        return "lab" in partitions_of(BeautifulSoup(body.text, "html.parser"))

    assert not bob_sees_lab()
    run(env, "scontrol", "update", "PartitionName=lab", "AllowGroups=ALL")
    try:
        wait_for(bob_sees_lab)
    finally:
        run(env, "scontrol", "update", "PartitionName=lab", "AllowGroups=mosslab")


def dbd_count(env, message: str) -> int:
    """How many RPCs of one type slurmdbd has served (``sacctmgr show stats``)."""
    out = run(env, "sacctmgr", "show", "stats")
    match = re.search(rf"^\s*{message}\s+\(\s*\d+\)\s+count:(\d+)", out, re.MULTILINE)
    return int(match.group(1)) if match else 0


def test_page_views_do_not_grow_the_accounting_databases_load(slurm_cluster, site_hub):
    """20 views of alice's page in a few seconds cost slurmdbd at most one read of users per
    refresh interval (5 s here), plus one for her first view; and slurmctld none."""
    env = slurm_cluster.env
    alice = login(site_hub, "alice")
    page(site_hub, alice)  # alice is known to the view now
    users_before = dbd_count(env, "DBD_GET_USERS")
    started = time.monotonic()
    for _ in range(20):
        page(site_hub, alice)
        fragment(site_hub, alice, partition="cpu", account="chemistry")
    elapsed = time.monotonic() - started
    reads = dbd_count(env, "DBD_GET_USERS") - users_before
    # the stats command itself is no DBD_GET_USERS; background reads: one per 5 s at most
    assert reads <= int(elapsed / 5) + 2, (reads, elapsed)


# -- slurmdbd down ---------------------------------------------------------------------------


@pytest.fixture
def fresh_hub(accounting_cluster, slurm_cluster, hub_infra, tmp_path):
    """A hub of its own: its accounting view has seen nobody yet."""
    with running_hub(tmp_path / "fresh", CONFIG, env=slurm_cluster.env) as hub:
        yield hub


def sacctmgr_answers(env) -> bool:
    done = subprocess.run(
        ["sacctmgr", "-n", "show", "qos"], env=env, capture_output=True, timeout=30
    )
    return done.returncode == 0


def test_the_page_works_while_slurmdbd_is_down_and_says_the_choices_may_be_stale(
    slurm_cluster, fresh_hub
):
    env = slurm_cluster.env
    alice = login(fresh_hub, "alice")  # (logging in opens the spawn page: bob logs in later)
    assert options_of(fragment(fresh_hub, alice, partition="cpu"), "account") == [
        "physics",
        "chemistry",
    ]
    outage = subprocess.Popen(
        [str(CLUSTER_SCRIPT), "restart-accounting", "--down", "30"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: not sacctmgr_answers(env), 15)
        bob = login(fresh_hub, "bob")  # never read before: his first read finds slurmdbd down
        # within one refresh (5 s, doubled after a failure), alice's choices are kept and flagged
        wait_for(
            lambda: fragment(fresh_hub, alice, partition="cpu").find(class_="moss-accounting-note")
        )
        kept = fragment(fresh_hub, alice, partition="cpu")
        assert options_of(kept, "account") == ["physics", "chemistry"]
        assert "may be out of date" in kept.find(class_="moss-accounting-note").get_text(" ")
        # bob was never read: his page still works, says so, and offers no made-up accounts
        bobs = fragment(fresh_hub, bob, partition="cpu")
        assert options_of(bobs, "account") == []
        assert "could not be read" in bobs.find(class_="moss-accounting-note").get_text(" ")
        assert page(fresh_hub, bob).find(id="moss-form") is not None
    finally:
        assert outage.wait(timeout=90) == 0
    # back: the note goes within one refresh
    wait_for(
        lambda: (
            fragment(fresh_hub, alice, partition="cpu").find(class_="moss-accounting-note") is None
        ),
        40,
    )
