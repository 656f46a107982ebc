"""Hostile strings in a real Chromium: shown as text, never run, never turned into elements.

One hub on the real cluster, whose admin strings (partition description, architecture,
environment descriptions) are payloads; Slurm itself holds reservations with hostile (but legal)
names; saved ``user_options`` are planted through the REST API; a link with hostile query values
is followed; a job prints a payload in its output before failing, which the spawn-pending page
shows. Each test watches for dialogs (``alert`` in every payload) and counts the elements a
payload would inject. tests/browser/test_spawn_page.py covers admin strings on a config-only hub;
this adds Slurm's own strings, reflected values, the spawn-pending page and the admin's view.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect
from support.cluster_partitions import JOBENV_BIN
from support.hardening import cancel_jobs_named, cluster_config, unique_job_name
from support.hub import HubProcess, running_hub
from support.infra import running_cluster
from support.page_waits import TIMEOUT_MS, fragment_answered, is_fragment, open_spawn_page
from support.page_waits import log_in as log_in_on_login_page

pytestmark = pytest.mark.browser

ADMIN_PAYLOAD = "<script>alert(1)</script>'\"<img src=x onerror=alert(2)>"
#: Names slurmctld accepts for a reservation (no spaces: scontrol would cut the name there).
RESERVATION_NAMES = ("<script>alert(3)</script>", "'\"><svg/onload=alert(4)>")
#: Valid as an sbatch option, so it survives re-validation and is shown in the form as saved.
SAVED_OPTIONS = "--comment='</textarea>\"><script>alert(5)</script><img src=x onerror=alert(5)>'"
REFLECTED = '"><img src=x onerror=alert(6)><script>alert(6)</script>'
JOB_OUTPUT = "<img src=x onerror=alert(7)><script>alert(7)</script>"
#: Elements a payload would add. The only script of the form is htmx, by src.
INJECTED = "#spawn_form img, #spawn_form svg, #spawn_form script:not([src]), body img[src=x]"

ENVIRONMENTS = {
    "default": {"description": ADMIN_PAYLOAD, "path": JOBENV_BIN},
    # a job that prints hostile text, then fails before Jupyter starts
    "noisy": {
        "description": ADMIN_PAYLOAD,
        "path": JOBENV_BIN,
        "prologue": f"echo '{JOB_OUTPUT}'; exit 3",
    },
}


@pytest.fixture(scope="module")
def reservations(slurm_cluster) -> Iterator[tuple[str, ...]]:
    """Real reservations for alice, a week away (no job of today's limits reaches them)."""
    env = slurm_cluster.env
    made = []
    try:
        for name in RESERVATION_NAMES:
            done = subprocess.run(
                ["scontrol", "create", "reservation", f"reservationname={name}", "users=alice",
                 "starttime=now+7days", "duration=10", "nodes=ALL", "flags=overlap"],
                env=env, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            made.append(name)
        yield tuple(made)
    finally:
        for name in made:
            subprocess.run(
                ["scontrol", "delete", f"reservationname={name}"],
                env=env,
                capture_output=True,
                timeout=30,
            )


@pytest.fixture(scope="module")
def hub(reservations, hub_infra, slurm_cluster, tmp_path_factory) -> Iterator[HubProcess]:
    env = (running_cluster() or slurm_cluster).env
    job_name = unique_job_name("moss-xss")
    partitions = {
        "cpu": {"description": ADMIN_PAYLOAD, "architecture": ADMIN_PAYLOAD, "gpu": "",
                "jupyter_environments": ENVIRONMENTS},
        "gpu": {"description": ADMIN_PAYLOAD, "architecture": ADMIN_PAYLOAD,
                "jupyter_environments": ENVIRONMENTS},
    }  # fmt: skip
    config = cluster_config(
        textwrap.dedent(
            f"""
            c.MOSlurmSpawner.partitions = {partitions!r}
            c.MOSlurmSpawner.job_name = {job_name!r}
            c.MOSlurmSpawner.availability_refresh_interval = 2
            c.MOSlurmSpawner.cluster_refresh_interval = 5
            c.MOSlurmSpawner.startup_poll_interval = 1
            """
        )
    )
    try:
        with running_hub(tmp_path_factory.mktemp("xss-hub"), config, env=env) as started:
            started.job_name = job_name
            yield started
    finally:
        cancel_jobs_named(env, job_name)


@pytest.fixture
def dialogs(page) -> list[str]:
    seen: list[str] = []

    def dismiss(dialog) -> None:
        seen.append(dialog.message)
        with contextlib.suppress(Exception):
            dialog.dismiss()

    page.on("dialog", dismiss)
    return seen


def log_in(page, hub: HubProcess, user: str) -> None:
    page.goto(hub.hub_url("logout"))
    log_in_on_login_page(page, hub, user)


def assert_inert(page) -> None:
    assert page.locator(INJECTED).count() == 0, page.locator(INJECTED).evaluate_all(
        "els => els.map(e => e.outerHTML)"
    )


def plant_saved_options(hub: HubProcess, options: dict[str, str]) -> None:
    response = hub.api().patch("users/alice/server", json={"user_options": options})
    if response.status_code == 405:  # JupyterHub 5: no PATCH
        pytest.skip("this JupyterHub cannot set saved user_options through the REST API")
    assert response.status_code == 200, response.text


def use_advanced_tab(page) -> None:
    if page.locator("select[name=partition]").count() == 0:
        with fragment_answered(page, "body"):
            page.click("#moss-tab-advanced")


def next_table_refreshes(page, count: int) -> None:
    """Wait until the polled table has been answered and replaced ``count`` more times."""
    for _ in range(count):
        table = page.locator("#moss-availability").element_handle()
        with page.expect_response(is_fragment("availability"), timeout=TIMEOUT_MS):
            page.wait_for_function("table => !table.isConnected", arg=table, timeout=TIMEOUT_MS)


def test_admin_and_slurm_strings_on_the_page_and_every_fragment(hub, page, dialogs):
    log_in(page, hub, "alice")
    open_spawn_page(page, hub)
    assert ADMIN_PAYLOAD in page.text_content(".moss-partition-card")  # as text
    with fragment_answered(page, "partition"):
        page.check("input[name=partition][value=gpu]")
    use_advanced_tab(page)  # body fragment
    with fragment_answered(page, "partition"):
        page.select_option("select[name=partition]", "cpu")
    assert page.locator("[name=ngpus]").count() == 0
    names = page.eval_on_selector_all("#moss-reservation-list option", "os => os.map(o => o.value)")
    assert set(RESERVATION_NAMES) <= set(names)  # straight from Slurm, as values
    labels = page.eval_on_selector_all(
        "select[name=environment_id] option", "os => os.map(o => o.textContent)"
    )
    assert labels and all(ADMIN_PAYLOAD in label for label in labels)
    # the estimate fragment gets the reservation once the field is left (its `change`)
    with page.expect_response(
        is_fragment("estimate", containing="reservation=%"), timeout=TIMEOUT_MS
    ):
        page.fill("input[name=reservation]", RESERVATION_NAMES[1])
        page.fill("input[name=memory]", "1G")
    expect(page.locator("#moss-estimate")).not_to_have_class(re.compile("htmx-request"))
    next_table_refreshes(page, 2)
    assert_inert(page)
    assert dialogs == []


@pytest.mark.parametrize("viewer", ["alice", "admin"])
def test_saved_options_set_through_the_api_are_shown_as_text(hub, page, dialogs, viewer):
    plant_saved_options(
        hub,
        {"partition": "cpu", "options": SAVED_OPTIONS, "memory": REFLECTED,
         "root_dir": REFLECTED, "environment_id": ADMIN_PAYLOAD},
    )  # fmt: skip
    log_in(page, hub, viewer)
    open_spawn_page(page, hub, "spawn/alice" if viewer == "admin" else "spawn")
    use_advanced_tab(page)
    # the valid hostile value is kept and shown (as the hub re-quotes it); invalid ones dropped
    assert shlex.split(page.input_value("input[name=options]")) == shlex.split(SAVED_OPTIONS)
    assert page.input_value("input[name=memory]") == ""
    assert page.input_value("input[name=root_dir]") == ""
    if viewer == "admin":
        assert "/moss/form/body/alice/" in page.get_attribute("#moss-tab-simple", "hx-get")
    next_table_refreshes(page, 1)
    assert_inert(page)
    assert dialogs == []


def test_a_hostile_spawn_link_is_refused_and_shown_as_typed(hub, page, dialogs, slurm_cluster):
    log_in(page, hub, "alice")
    query = {"opt-partition": "cpu", "opt-memory": REFLECTED, "opt-root_dir": REFLECTED,
             "opt-options": REFLECTED, "opt-reservation": RESERVATION_NAMES[0]}  # fmt: skip
    response = page.goto(hub.hub_url("spawn") + "?" + urlencode(query))
    assert response.status == 400
    page.wait_for_selector("#moss-form")
    assert page.input_value("input[name=memory]") == REFLECTED
    assert page.input_value("input[name=reservation]") == RESERVATION_NAMES[0]
    assert page.text_content("#moss-memory-error").startswith("memory:")
    # and again through the form, typed by the user
    page.fill("input[name=root_dir]", REFLECTED)
    page.click("#spawn_form button[type=submit]")
    page.wait_for_selector("#moss-root-dir-error")
    assert page.input_value("input[name=root_dir]") == REFLECTED
    assert_inert(page)
    assert dialogs == []
    assert hub.api().get("users/alice").json()["servers"].get("", {}).get("pending") is None


def test_a_jobs_hostile_output_on_the_spawn_pending_and_failure_pages(
    hub, page, dialogs, slurm_cluster
):
    """The job prints a payload and exits: the failure message quotes its output, as text."""
    env = slurm_cluster.env
    output_files: list[Path] = []
    log_in(page, hub, "alice")
    query = {"partition": "cpu", "nprocs": "1", "runtime": "0:10:00",
             "environment_id": "noisy", "output": "true"}  # fmt: skip
    try:
        page.goto(hub.hub_url("spawn") + "?" + urlencode(query))
        page.wait_for_url(re.compile(r"/hub/spawn-pending/alice"))
        message = page.locator("#progress-message")
        page.wait_for_function(
            "document.querySelector('#progress-message').textContent.includes('ended before')",
            timeout=60000,
        )
        text = message.text_content()
        assert JOB_OUTPUT in text, text
        output_files += [
            Path(word.rstrip(":")) for word in text.split() if word.startswith("/home/alice/slurm-")
        ]
        assert_inert(page)
        page.click("#progress-details summary")  # the event log holds the same messages
        assert JOB_OUTPUT in page.text_content("#progress-log")
        assert_inert(page)
        # JupyterHub's own page for the failed server quotes the message too
        page.goto(hub.url + "user/alice/")
        page.wait_for_load_state()
        assert JOB_OUTPUT in page.text_content("body")
        assert_inert(page)
        assert dialogs == []
    finally:
        cancel_jobs_named(env, hub.job_name)
        for path in output_files:  # the job's log, written in alice's home
            path.unlink(missing_ok=True)
