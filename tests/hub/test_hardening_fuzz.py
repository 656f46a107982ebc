"""Fuzzing the real hub: form POST, query string (bare and ``opt-``) and REST API.

Each example is a spawn request with adversarial values (see ``support/hardening.py``). The
test asks the one model, :func:`~jupyterhub_moss.options.parse_user_options`, for its verdict
with the limits the hub has (same config, same live cluster), sends the request through the
real hub, and checks:

- no answer is a 500, and the hub logs no uncaught exception;
- the hub agrees with the model: a 400 exactly when the model refuses, and its message names
  every field the model names;
- nothing reaches ``sbatch`` for a refused request (the hub's ``sbatch`` is a wrapper that
  records each call and then runs the real one);
- an accepted request is really submitted (``req_options = "--hold"`` keeps the job from
  running; its server is deleted at once, which cancels it), and the script the hub gave sbatch
  has the template's shapes: one argument per ``#SBATCH`` line with the validated values, shell
  lines with exactly the intended words and no unquoted metacharacter.

CI runs 300 examples (one in ten to fifteen accepted). Long run: ``dev/fuzz-long`` or
``MOSS_FUZZ_EXAMPLES=N`` (this module then runs N * 3 / 20 examples, or
``MOSS_HUB_FUZZ_EXAMPLES`` when set).
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bs4 import BeautifulSoup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.hardening import (
    CLUSTER_POLICY,
    SbatchRecorder,
    cancel_jobs_named,
    cluster_config,
    hostile_request,
    live_limits,
    script_problems,
    unique_job_name,
)
from support.hub import TYPED_IN_ADDRESS_BAR, HubProcess, running_hub, xsrf_from_page
from support.infra import running_cluster

from jupyterhub_moss.options import UserOptionsError, parse_user_options
from jupyterhub_moss.request_values import normalise_query

pytestmark = pytest.mark.hub

MODEL_EXAMPLES = int(os.environ.get("MOSS_FUZZ_EXAMPLES", "2000"))
HUB_EXAMPLES = int(os.environ.get("MOSS_HUB_FUZZ_EXAMPLES", max(MODEL_EXAMPLES * 3 // 20, 20)))
WAYS = ("form", "query", "query-opt", "api")
ADMIN_OPTIONS = ["--hold"]


class Fuzzed:
    """The hub under test, its sbatch record, and what the examples did."""

    def __init__(self, hub: HubProcess, recorder: SbatchRecorder, job_name: str, env) -> None:
        self.hub = hub
        self.recorder = recorder
        self.job_name = job_name
        self.env = env
        self.api = hub.api()
        self.alice = hub.login("alice")
        self.xsrf = xsrf_from_page(self.alice.get(hub.hub_url("spawn")).text)
        self.limits = live_limits(env)
        self.jupyterhub_6 = self.api.get("").json()["version"].startswith("6.")
        self.names = (f"fz{n}" for n in itertools.count())
        self.started: list[str] = []
        self.counts = {"sent": 0, "refused": 0, "accepted": 0}


@pytest.fixture(scope="module")
def fuzzed(slurm_cluster, hub_infra, tmp_path_factory) -> Iterator[Fuzzed]:
    env = (running_cluster() or slurm_cluster).env
    recorder = SbatchRecorder()
    job_name = unique_job_name("moss-fuzz")
    config = cluster_config(
        f"""
        c.MOSlurmSpawner.slurm_commands = {{"sbatch": {str(recorder.path)!r}}}
        c.MOSlurmSpawner.req_options = "--hold"
        c.MOSlurmSpawner.job_name = {job_name!r}
        c.Spawner.start_timeout = 600
        # answer spawn and stop requests at once: the held jobs never start
        c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0, "slow_stop_timeout": 0}}
        """,
        reachable_from_nodes=False,
    )
    try:
        with running_hub(tmp_path_factory.mktemp("fuzz-hub"), config, env=env) as hub:
            state = Fuzzed(hub, recorder, job_name, env)
            try:
                yield state
            finally:
                for name in state.started:
                    state.api.delete(f"users/alice/servers/{name}")
                cancel_jobs_named(env, job_name)
            print(f"hub fuzz: {state.counts}")
    finally:
        cancel_jobs_named(env, job_name)
        recorder.remove()


def verdict(fuzzed: Fuzzed, raw: dict[str, Any]):
    """The model's answer: UserOptions, or the UserOptionsError naming the bad fields."""
    try:
        return parse_user_options(raw, fuzzed.limits, CLUSTER_POLICY)
    except UserOptionsError as error:
        return error


def as_hub_sees_it(way: str, raw: dict[str, Any]) -> dict[str, Any]:
    if way == "api":
        return raw
    # Tornado decodes form and query *keys* as Latin-1 (values stay bytes, which JupyterHub
    # decodes as UTF-8): an unknown key "é" reaches the spawner, and its message, as "Ã©".
    raw = {key.encode().decode("latin-1"): value for key, value in raw.items()}
    return normalise_query(raw) if way.startswith("query") else raw


def send(fuzzed: Fuzzed, way: str, raw: dict[str, Any], server: str) -> httpx.Response:
    hub, path = fuzzed.hub, f"spawn/alice/{server}" if server else "spawn"
    if way == "form":
        return fuzzed.alice.post(
            hub.hub_url(path), data={**raw, "_xsrf": fuzzed.xsrf}, follow_redirects=False
        )
    if way.startswith("query"):
        prefix = "opt-" if way == "query-opt" else ""
        params = {f"{prefix}{k}": v for k, v in raw.items()}
        return fuzzed.alice.get(
            hub.hub_url(path), params=params, headers=TYPED_IN_ADDRESS_BAR, follow_redirects=False
        )
    api_path = f"users/alice/servers/{server}" if server else "users/alice/server"
    # JupyterHub < 6 reads the whole body as the options
    body = {"user_options": raw} if fuzzed.jupyterhub_6 else raw
    return fuzzed.api.post(api_path, content=json.dumps(body))


def message_of(way: str, response: httpx.Response) -> str:
    if way == "api":
        return response.json()["message"]
    return BeautifulSoup(response.text, "html.parser").get_text(" ")


def check_refused(fuzzed: Fuzzed, way: str, error: UserOptionsError, response) -> None:
    assert response.status_code == 400, (way, error.errors, response.status_code)
    message = message_of(way, response)
    for field in error.errors:
        assert f"{field}:" in message, (way, field, message[:1500])


def check_accepted(fuzzed: Fuzzed, way: str, options, response, server: str, before: int):
    if way == "api":
        assert response.status_code in (201, 202), (way, response.status_code, response.text)
    else:
        assert response.status_code == 302, (way, response.status_code, response.text[:1500])
        assert f"/spawn-pending/alice/{server}" in response.headers["location"]
    call = fuzzed.recorder.wait_for_submissions(before + 1)[before]
    assert call.args == ["--parsable"]
    part = fuzzed.limits[options.partition]
    assert script_problems(call.script, options, part, ADMIN_OPTIONS) == []
    fuzzed.api.delete(f"users/alice/servers/{server}")  # cancels the held job


#: Valid, but with every character a script could trip on, in the fields that allow them.
TRICKY_BUT_VALID = {
    "partition": "gpu",
    "nprocs": "2",
    "ngpus": "1",
    "memory": "1G",
    "runtime": "0-6:30",
    "options": "--comment='a b; $(id) `id` \\\" #' --mail-type=END",
    "output": "on",
    "default_url": "/lab?x=1&y=2",
    "root_dir": "~/a b",
    "environment_modules": "gcc cuda/12",
}


@pytest.mark.parametrize("way", WAYS)
def test_each_way_submits_a_sound_script_for_tricky_but_valid_values(fuzzed, way):
    raw = dict(TRICKY_BUT_VALID)
    expected = verdict(fuzzed, as_hub_sees_it(way, raw))
    assert not isinstance(expected, UserOptionsError), expected
    assert expected.options == ['--comment=a b; $(id) `id` \\" #', "--mail-type=END"]
    server, before = next(fuzzed.names), len(fuzzed.recorder.submissions())
    response = send(fuzzed, way, raw, server)
    fuzzed.started.append(server)
    fuzzed.counts["sent"] += 1
    fuzzed.counts["accepted"] += 1
    check_accepted(fuzzed, way, expected, response, server, before)


@settings(
    max_examples=HUB_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_hub_agrees_with_the_model_and_submits_only_sound_scripts(fuzzed, data):
    way = data.draw(st.sampled_from(WAYS), label="way")
    raw = data.draw(hostile_request(json_values=way == "api", min_hostile=1), label="request")
    expected = verdict(fuzzed, as_hub_sees_it(way, raw))
    accepted = not isinstance(expected, UserOptionsError)
    # accepted requests spawn a fresh named server each; refused ones the default server
    server = next(fuzzed.names) if accepted else ""
    before = len(fuzzed.recorder.submissions())

    response = send(fuzzed, way, raw, server)
    fuzzed.counts["sent"] += 1
    assert response.status_code != 500, response.text[:2000]

    if accepted:
        fuzzed.started.append(server)
        fuzzed.counts["accepted"] += 1
        check_accepted(fuzzed, way, expected, response, server, before)
    else:
        fuzzed.counts["refused"] += 1
        check_refused(fuzzed, way, expected, response)
        assert len(fuzzed.recorder.submissions()) == before, "a refused request reached sbatch"


def test_after_the_fuzzing_nothing_was_left_behind(fuzzed):
    """Every submission came from an accepted request; no uncaught exception in the hub."""
    assert fuzzed.counts["sent"] >= HUB_EXAMPLES
    assert fuzzed.counts["accepted"] >= len(WAYS), fuzzed.counts
    assert len(fuzzed.recorder.submissions()) == fuzzed.counts["accepted"]
    log = fuzzed.hub.log()
    assert "Uncaught exception" not in log
    assert not re.search(r"\] 500 ", log)
    server = fuzzed.api.get("users/alice").json()["servers"].get("")
    assert server is None or not (server.get("ready") or server.get("pending"))


# -- Undecodable bytes: JupyterHub's SpawnHandler would answer them with its own 500; ours
# (jupyterhub_moss/handlers/spawn_page.py) refuses them with a 400 naming the field.


@pytest.mark.parametrize("way", ["form", "query"])
def test_invalid_utf8_bytes_are_refused_without_a_500(fuzzed, way):
    """Regression: JupyterHub decodes form and query bytes before the spawner sees them."""
    before = len(fuzzed.recorder.submissions())
    hub, client = fuzzed.hub, fuzzed.alice
    if way == "form":
        response = client.post(
            hub.hub_url("spawn"),
            content=f"_xsrf={fuzzed.xsrf}&partition=cpu&nprocs=%FF".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
    else:
        response = client.get(hub.hub_url("spawn") + "?partition=cpu&nprocs=%FF")
    assert len(fuzzed.recorder.submissions()) == before
    assert response.status_code == 400, response.text[:1500]
    assert "nprocs: not valid UTF-8" in response.text
