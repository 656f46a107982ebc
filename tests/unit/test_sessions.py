"""Rows of "Your sessions" and the admins' jobs page, from the facts the hub holds.

The rows are plain functions of :class:`ServerFacts` and the clock; the spawner's side
(:mod:`jupyterhub_moss.session_report`) gathers the facts from JupyterHub and the job poller's
last answer, and keeps how the last job ended.
"""

from __future__ import annotations

import asyncio
import types
from datetime import datetime, timedelta, timezone

import pytest
from bs4 import BeautifulSoup

from jupyterhub_moss import MOSlurmSpawner
from jupyterhub_moss.form.templates import render_block, template_environment
from jupyterhub_moss.handlers.jobs_page import JobsView
from jupyterhub_moss.session_report import STATE_KEY, _saved_end, end_from_state, user_server_facts
from jupyterhub_moss.sessions import (
    SORT_KEYS,
    EndedSession,
    ServerFacts,
    describe_time_left,
    session_row,
    session_rows,
    sessions_view,
    sort_rows,
    stop_api_url,
)
from jupyterhub_moss.slurm.jobs import JobStatusPoller
from jupyterhub_moss.slurm.models import JobStatus

NOW = datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc)
OPTIONS = {"partition": "cpu", "nprocs": "4", "ngpus": "0", "memory": "", "runtime": "2:00:00"}


def running(job_id="41", left=timedelta(hours=1, minutes=2, seconds=3), node="c1"):
    # the poller's status carries when Slurm will end the job (squeue's %e)
    return JobStatus(
        job_id, "RUNNING", "None", node, None, started=NOW - timedelta(minutes=5), ends=NOW + left
    )


def facts(**changes) -> ServerFacts:
    base = dict(
        user_name="alice",
        server_name="",
        job_id="41",
        status=running(),
        options=OPTIONS,
        active=True,
        ready=True,
        pending="",
        open_url="/user/alice/",
        partition="cpu",
    )
    return ServerFacts(**{**base, **changes})


def row(warning_minutes=15, **changes):
    return session_row(
        facts(**changes), NOW, warning_seconds=warning_minutes * 60, hub_prefix="/hub/"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00:00"),
        (59, "0:00:59"),
        (3723, "1:02:03"),
        (86400 + 3600, "1-01:00:00"),
        (-5, "0:00:00"),
    ],
)
def test_time_left_reads_like_squeue(seconds, text):
    assert describe_time_left(seconds) == text


def test_a_running_server_shows_where_it_runs_and_its_time_left():
    shown = row()
    assert (shown.state, shown.node, shown.cpus, shown.gpus, shown.memory) == (
        "Running",
        "c1",
        "4",
        "—",
        "default",
    )
    assert shown.time_left == "1:02:03 left" and shown.seconds_left == 3723
    assert not shown.warning
    assert shown.open_url == "/user/alice/"
    assert shown.stop_url == "/hub/api/users/alice/server"


@pytest.mark.parametrize(("minutes_left", "warned"), [(14, True), (15, False), (60, False)])
def test_time_left_turns_into_a_warning_under_the_threshold(minutes_left, warned):
    shown = row(status=running(left=timedelta(minutes=minutes_left)))
    assert shown.warning is warned


def test_no_warning_when_the_admin_turns_it_off():
    assert not row(warning_minutes=0, status=running(left=timedelta(minutes=1))).warning


def test_a_queued_server_says_why_in_words_and_when_it_should_start():
    expected = NOW + timedelta(minutes=20)
    status = JobStatus("42", "PENDING", "Resources", "", expected)
    shown = row(status=status, ready=False, pending="spawn")
    assert shown.state == "Queued"
    assert "Waiting for resources (Resources); expected start" in shown.detail
    assert shown.time_left == "" and shown.open_url == ""
    assert shown.stop_url, "a queued spawn can be stopped"


@pytest.mark.parametrize(
    ("changes", "state", "detail"),
    [
        (dict(job_id="", status=None, ready=False, pending="spawn"), "Starting", "Submitting"),
        (dict(status=None, ready=False, pending="spawn"), "Starting", "first answer"),
        (dict(ready=False, pending="spawn"), "Starting", "Starting Jupyter"),
        (dict(ready=False, pending="stop"), "Stopping", ""),
    ],
)
def test_the_states_between(changes, state, detail):
    shown = row(**changes)
    assert shown.state == state
    assert detail in shown.detail
    assert shown.open_url == ""


def test_a_job_that_ended_before_the_hub_noticed_says_how():
    status = JobStatus("41", "TIMEOUT", "TimeLimit", "c1", None)
    shown = row(status=status)
    assert shown.state == "Ending"
    assert "time limit reached" in shown.detail


def test_an_ended_server_says_how_its_job_ended_and_offers_nothing_to_click():
    end = EndedSession("41", "cpu", "TIMEOUT (time limit reached)", NOW, "TIMEOUT")
    shown = row(active=False, ready=False, job_id="", status=None, last_end=end)
    assert shown.state == "Ended"
    assert shown.detail == "Job 41: TIMEOUT (time limit reached)"
    assert (shown.job_id, shown.partition) == ("41", "cpu")
    assert shown.open_url == "" and shown.stop_url == "" and shown.time_left == ""


@pytest.mark.parametrize(
    ("user", "server", "url"),
    [
        ("alice", "", "/hub/api/users/alice/server"),
        ("alice", "big one", "/hub/api/users/alice/servers/big%20one"),
        ("a/b", "x/../y", "/hub/api/users/a%2Fb/servers/x%2F..%2Fy"),
        ("<s>", "?a=1#", "/hub/api/users/%3Cs%3E/servers/%3Fa%3D1%23"),
    ],
)
def test_stop_addresses_cannot_be_bent_by_names(user, server, url):
    assert stop_api_url("/hub/", user, server) == url


def test_the_list_puts_active_servers_first_and_lives_while_one_may_change():
    end = EndedSession("40", "cpu", "CANCELLED", NOW)
    ended = facts(server_name="old", active=False, ready=False, status=None, last_end=end)
    view = sessions_view(
        [ended, facts(server_name="b"), facts()],
        NOW,
        warning_minutes=15,
        refresh_seconds=30,
        hub_prefix="/hub/",
    )
    assert [r.server_name for r in view.rows] == ["", "b", "old"]
    assert view.live and "every 30s" in view.hx_trigger
    only_ended = sessions_view(
        [ended], NOW, warning_minutes=15, refresh_seconds=30, hub_prefix="/hub/"
    )
    assert not only_ended.live


def test_idle_time_comes_from_jupyterhubs_last_activity():
    naive_utc = (NOW - timedelta(minutes=90)).replace(tzinfo=None)  # as JupyterHub stores it
    shown = row(last_activity=naive_utc)
    assert (shown.idle, shown.idle_seconds) == ("1 h 30 min", 5400)


def test_sorting_is_numeric_where_numbers_are_and_unknowns_go_last():
    rows = session_rows(
        [
            facts(user_name="b", job_id="9", options={**OPTIONS, "nprocs": "16"}),
            facts(user_name="a", job_id="10", status=running("10", left=timedelta(minutes=3))),
            facts(user_name="c", job_id="100", status=None, ready=False, pending="spawn"),
        ],
        NOW,
        warning_seconds=900,
        hub_prefix="/hub/",
    )
    assert [r.job_id for r in sort_rows(rows, "job", False)] == ["9", "10", "100"]
    assert [r.user_name for r in sort_rows(rows, "cpus", True)] == ["b", "a", "c"]
    assert [r.user_name for r in sort_rows(rows, "user", False)] == ["a", "b", "c"]
    assert [r.user_name for r in sort_rows(rows, "no-such-column", False)] == ["a", "b", "c"]
    assert [r.user_name for r in sort_rows(rows, "time_left", False)] == ["a", "b", "c"]
    assert set(SORT_KEYS) >= {"user", "partition", "node", "gpus", "state", "idle"}


# -- the spawner's side --------------------------------------------------------------------


class _NoSlurm:
    """A poller query that fails the test if the session list ever asks Slurm."""

    calls = 0

    async def __call__(self, job_ids):
        type(self).calls += 1
        raise AssertionError("the session list asked Slurm")


def _spawner(poller: JobStatusPoller) -> MOSlurmSpawner:
    spawner = MOSlurmSpawner(
        partitions={"cpu": {"jupyter_environments": {"d": {"path": "/opt/x/bin/"}}}},
        user=types.SimpleNamespace(
            name="alice", spawners={}, server_url=lambda n: f"/user/alice/{n}"
        ),
    )
    spawner.orm_spawner = types.SimpleNamespace(name="", user_options={}, server=None)
    spawner.job_poller = lambda: poller  # type: ignore[method-assign]
    return spawner


def test_session_facts_never_ask_slurm():
    query = _NoSlurm()
    poller = JobStatusPoller(query=query)
    spawner = _spawner(poller)
    spawner.job_id = "77"
    fact = spawner.session_facts()
    assert fact.job_id == "77" and fact.status is None
    assert _NoSlurm.calls == 0


def test_a_job_that_hit_its_time_limit_is_remembered_after_the_hub_noticed():
    ended = JobStatus("77", "TIMEOUT", "TimeLimit", "c1", None)

    async def query(job_ids):
        return {"77": ended}

    async def scenario():
        spawner = _spawner(JobStatusPoller(query=query))
        spawner.job_id, spawner.job_partition = "77", "cpu"
        assert await spawner.poll() == 1
        return spawner.session_facts()

    fact = asyncio.run(scenario())
    assert fact.job_id == "" and fact.last_end is not None
    assert fact.last_end.summary == "TIMEOUT (time limit reached; TimeLimit)"
    assert (fact.last_end.job_id, fact.last_end.partition) == ("77", "cpu")


def test_the_last_end_is_saved_with_the_state_and_survives_a_new_spawner():
    ended = JobStatus("77", "TIMEOUT", "TimeLimit", "c1", None)

    async def query(job_ids):
        return {"77": ended}

    async def scenario():
        spawner = _spawner(JobStatusPoller(query=query))
        spawner.job_id, spawner.job_partition = "77", "cpu"
        await spawner.poll()
        # what JupyterHub does after a stop: clear the state, save it
        spawner.clear_state()
        return spawner.get_state()

    state = asyncio.run(scenario())
    reborn = _spawner(JobStatusPoller(query=_NoSlurm()))
    reborn.load_state(state)
    end = reborn.session_facts().last_end
    assert end is not None and end.job_id == "77" and "time limit reached" in end.summary


@pytest.mark.parametrize(
    "saved",
    [
        None,
        "TIMEOUT",
        {"job_id": 77, "partition": "cpu", "summary": "x", "ended_at": NOW.isoformat()},
        {"job_id": "77", "partition": "cpu", "summary": "x", "ended_at": "yesterday"},
        {"job_id": "77", "partition": "cpu", "summary": ["x"], "ended_at": NOW.isoformat()},
    ],
)
def test_a_saved_state_that_is_not_ours_is_ignored(saved):
    assert end_from_state({STATE_KEY: saved}) is None


def test_stopped_servers_come_from_the_database_without_creating_spawners():
    end = EndedSession("77", "gpu", "CANCELLED (cancelled by its owner or an administrator)", NOW)
    saved = {STATE_KEY: _saved_end(end)}

    class NoNewSpawners(dict):
        def __missing__(self, key):
            raise AssertionError(f"a spawner was created for {key!r}")

    orm = {
        "old": types.SimpleNamespace(state=saved, server=None, user_options={"nprocs": "2"}),
        "never-ran": types.SimpleNamespace(state={}, server=None, user_options={}),
    }
    user = types.SimpleNamespace(name="alice", orm_spawners=orm, spawners=NoNewSpawners())
    (fact,) = user_server_facts(user)
    assert (fact.server_name, fact.active, fact.last_end) == ("old", False, end)
    shown = session_row(fact, NOW, warning_seconds=900, hub_prefix="/hub/")
    assert (shown.state, shown.partition, shown.cpus, shown.job_id) == ("Ended", "gpu", "2", "77")


HOSTILE = '"><img src=x onerror=alert(1)>'


def test_everything_a_row_shows_is_escaped_in_both_lists():
    hostile_status = JobStatus("41", "PENDING", HOSTILE, "", None)
    hostile = facts(
        user_name=HOSTILE,
        server_name=HOSTILE,
        status=hostile_status,
        ready=False,
        pending="spawn",
        partition=HOSTILE,
        options={"nprocs": HOSTILE, "memory": HOSTILE},
        open_url=HOSTILE,
    )
    view = sessions_view([hostile], NOW, warning_minutes=15, refresh_seconds=30, hub_prefix="/hub/")
    env = template_environment(())
    page = types.SimpleNamespace(sessions=view, fragment_url=lambda name: f"/hub/{name}")
    sessions_html = render_block(env, "sessions", page)
    rows = session_rows([hostile], NOW, warning_seconds=900, hub_prefix="/hub/")
    jobs = JobsView(rows, "user", False, "/hub/", 30)
    jobs_html = render_block(env, "jobs_table", jobs, "moss_jobs.html")
    for html in (sessions_html, jobs_html):
        assert "<img" not in html and "&lt;img" in html
        soup = BeautifulSoup(html, "html.parser")
        assert soup.find("img") is None
        assert all(not attr.startswith("on") for tag in soup.find_all() for attr in tag.attrs)
    stop = BeautifulSoup(sessions_html, "html.parser").select_one("button.moss-session-stop")
    assert stop["hx-delete"].startswith("/hub/api/users/%22%3E%3Cimg")
