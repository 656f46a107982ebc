"""The spawn page's render cache: a repeated render is served from it, and nothing else is.

Every test renders through a real MOSlurmSpawner, as the hub does, with a fixed cluster
snapshot and a fixed user access. Renders are counted (through the cache's hit and miss
counts, and by counting calls of the template's render), never timed.
"""

from __future__ import annotations

import asyncio
import os
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

import jupyterhub_moss.form as form
from jupyterhub_moss.context import LinkToConfirm
from jupyterhub_moss.form.render_cache import MAX_ENTRIES, MAX_INPUT_CHARS, RENDERS
from jupyterhub_moss.rejections import Rejection
from jupyterhub_moss.slurm.models import PartitionInfo, Reservation
from jupyterhub_moss.slurm.partition_access import PartitionAccess
from jupyterhub_moss.slurm.view import ClusterSnapshot
from jupyterhub_moss.spawner import MOSlurmSpawner
from jupyterhub_moss.user_access import UserAccess

pytestmark = pytest.mark.unit

PAYLOAD = "<script>alert(1)</script>'\""
ENV = {"default": {"description": "Default", "path": "/opt/env/bin/"}}
PARTITIONS = {
    "cpu": {"description": "CPU nodes", "gpu": "", "max_nprocs": 28, "jupyter_environments": ENV},
    "gpu": {"description": "GPU nodes", "gpu": "gpu:fake:{}", "max_ngpus": 2, "max_nprocs": 8,
            "jupyter_environments": ENV},
    "debug": {"description": "Debug", "gpu": "", "simple": False, "max_nprocs": 8,
              "jupyter_environments": ENV},
}  # fmt: skip
GROUPS = {"alice": frozenset({"alice", "gpulab"}), "bob": frozenset({"bob"})}


def info(name: str, **kw) -> PartitionInfo:
    fields = dict(name=name, state="up", is_default=name == "cpu", nodes_idle=1, nodes_total=2,
                  cpus_idle=20, cpus_total=56, cpus_per_node=28, memory_per_node_mb=64000,
                  max_runtime=86400)  # fmt: skip
    return PartitionInfo(**{**fields, **kw})


def snapshot(cpus_idle: int = 20, age: float = 12) -> ClusterSnapshot:
    """The gpu partition is open to the group gpulab only (alice is in it, bob is not)."""
    return ClusterSnapshot(
        partitions={
            "cpu": info("cpu", cpus_idle=cpus_idle),
            "gpu": info("gpu", gpus_total=4, gpus_used=1, gpus_per_node={"fake": 2}),
            "debug": info("debug"),
        },
        reservations=(),
        taken_at=datetime.now(timezone.utc) - timedelta(seconds=age),
        access={"gpu": PartitionAccess("gpu", allow_groups=frozenset({"gpulab"}))},
    )


SNAPSHOT = snapshot()


class Handler:
    """What JupyterHub's spawn handler gives the spawner: a live request and its token."""

    _finished = False

    def __init__(self, xsrf_token: str) -> None:
        self.xsrf_token = xsrf_token


def make_spawner(
    user: str = "alice",
    snap: ClusterSnapshot = SNAPSHOT,
    saved: dict | None = None,
    xsrf_token: str = "token-1",
    groups: frozenset[str] | None = None,
    partitions: dict = PARTITIONS,
    hub_groups: frozenset[str] = frozenset(),
    hub_admin: bool = False,
) -> MOSlurmSpawner:
    spawner = MOSlurmSpawner(
        partitions=partitions, user=types.SimpleNamespace(name=user, spawners={})
    )
    spawner.orm_spawner = types.SimpleNamespace(name="", user_options=saved or {}, server=None)
    spawner.handler = Handler(xsrf_token)

    async def fixed_snapshot():
        return snap

    async def fixed_access():
        unix = GROUPS.get(user, frozenset()) if groups is None else groups
        return UserAccess(user, unix, hub_groups=hub_groups, hub_admin=hub_admin)

    spawner.cluster_snapshot = fixed_snapshot
    spawner.user_access = fixed_access
    return spawner


def page(spawner: MOSlurmSpawner) -> str:
    return asyncio.run(spawner.render_options_form())


def fragment(spawner: MOSlurmSpawner, name: str, **sent: str) -> str:
    query = {k: [v.encode()] for k, v in sent.items()}
    return asyncio.run(spawner.render_form_fragment(name, "", query, xsrf_token="token-1"))


@contextmanager
def no_cache() -> Iterator[None]:
    """Renders as without a cache: every entry is dropped as soon as it is kept."""
    RENDERS.max_entries = 0
    try:
        yield
    finally:
        RENDERS.max_entries = MAX_ENTRIES


def uncached_page(spawner: MOSlurmSpawner) -> str:
    with no_cache():
        return page(spawner)


@pytest.fixture(autouse=True)
def empty_cache():
    RENDERS.clear()
    yield
    RENDERS.clear()


@pytest.fixture
def template_renders(monkeypatch) -> list[str]:
    """One item per full render of the page's template."""
    calls: list[str] = []
    original = form.render_page

    def counting(env, view):
        calls.append(view.target.user_name)
        return original(env, view)

    monkeypatch.setattr(form, "render_page", counting)
    return calls


# -- the same HTML as without a cache ------------------------------------------------------


@pytest.mark.parametrize(
    "saved",
    [
        None,
        {"partition": "gpu", "nprocs": "4", "ngpus": "1"},
        {"partition": "debug", "memory": "4G", "options": "--comment=x"},  # the Advanced tab
        {"partition": "cpu", "root_dir": PAYLOAD},
    ],
)
def test_a_cached_page_is_the_page_an_uncached_render_gives(saved):
    spawner = make_spawner(saved=saved)
    first = page(spawner)
    again = page(spawner)
    assert (RENDERS.misses, RENDERS.hits) == (1, 1)
    assert again == first == uncached_page(spawner)


def test_a_cached_page_stays_escaped():
    hostile = {**PARTITIONS, "cpu": {**PARTITIONS["cpu"], "description": PAYLOAD}}
    spawner = make_spawner(partitions=hostile)
    page(spawner)
    cached = page(spawner)
    assert RENDERS.hits == 1
    assert "<script>alert(1)" not in cached
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in cached


def test_n_views_with_the_same_inputs_render_the_template_once(template_renders):
    spawner = make_spawner()
    pages = {page(spawner) for _ in range(25)}
    assert len(pages) == 1
    assert len(template_renders) == 1
    assert (RENDERS.misses, RENDERS.hits) == (1, 24)


@pytest.fixture
def frozen_clock(monkeypatch) -> datetime:
    """The form's clock stopped: "Updated 12 s ago" must not turn into "13 s" between two
    renders the test compares (it did, about once in a hundred runs, across a second boundary)."""
    start = datetime.now(timezone.utc)

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return start

    monkeypatch.setattr(form, "datetime", Clock)
    return start


@pytest.mark.parametrize("name", ["body", "partition", "availability"])
def test_a_cached_fragment_is_the_fragment_an_uncached_render_gives(name, frozen_clock):
    spawner = make_spawner()
    sent = {"moss_tab": "advanced", "partition": "gpu", "nprocs": "3"}
    first = fragment(spawner, name, **sent)
    again = fragment(spawner, name, **sent)
    assert (RENDERS.misses, RENDERS.hits) == (1, 1)
    with no_cache():
        assert fragment(spawner, name, **sent) == again == first


# -- what makes a fresh render ------------------------------------------------------------


def test_a_new_snapshot_is_rendered_afresh_even_when_equal(template_renders):
    page(make_spawner(snap=SNAPSHOT))
    page(make_spawner(snap=snapshot()))  # same content, another refresh
    assert len(template_renders) == 2


def test_a_new_snapshot_shows_its_own_numbers():
    # Taken at the same time, so only the snapshot itself tells the renders apart.
    def with_idle_cpus(n: int) -> ClusterSnapshot:
        return replace(
            SNAPSHOT, partitions={**SNAPSHOT.partitions, "cpu": info("cpu", cpus_idle=n)}
        )

    before = page(make_spawner(snap=with_idle_cpus(11)))
    after = page(make_spawner(snap=with_idle_cpus(3)))
    assert "11 / 56" in before and "3 / 56" in after and "11 / 56" not in after


def test_a_failed_refresh_shows_stale_data_at_once():
    fresh = page(make_spawner(snap=SNAPSHOT))
    stale = page(make_spawner(snap=replace(SNAPSHOT, error="sinfo timed out")))
    assert RENDERS.misses == 2
    assert "Slurm did not answer" in stale and "Slurm did not answer" not in fresh


def test_the_age_of_the_data_is_never_served_old(monkeypatch):
    start = datetime.now(timezone.utc)
    clock = [start]

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return clock[0]

    monkeypatch.setattr(form, "datetime", Clock)
    spawner = make_spawner(snap=replace(SNAPSHOT, taken_at=start - timedelta(seconds=12)))
    assert "Updated 12 s ago." in page(spawner)
    clock[0] = start + timedelta(seconds=30)
    later = page(spawner)
    assert "Updated 42 s ago." in later and RENDERS.misses == 2


@pytest.mark.parametrize(
    "other",
    [
        {"saved": {"partition": "cpu", "nprocs": "2"}},
        {"xsrf_token": "token-2"},
        {"groups": frozenset({"bob"})},  # alice, without the group that opens gpu
    ],
)
def test_other_values_token_or_access_give_a_fresh_render(other, template_renders):
    first = page(make_spawner())
    second = page(make_spawner(**other))
    assert len(template_renders) == 2
    assert first != second


def test_another_merge_of_the_limits_gives_a_fresh_render():
    # e.g. an admin hook that gives this user other partitions: same user, token and snapshot
    described = {**PARTITIONS, "cpu": {**PARTITIONS["cpu"], "description": "Big iron"}}
    first = page(make_spawner())
    second = page(make_spawner(partitions=described))
    assert RENDERS.misses == 2
    assert "Big iron" in second and "Big iron" not in first


def test_another_policy_gives_a_fresh_render():
    advanced = {"partition": "debug"}  # not on the Simple tab: the page opens on Advanced
    allowed = page(make_spawner(saved=advanced))
    spawner = make_spawner(saved=advanced)
    spawner.allow_custom_environments = False
    refused = page(spawner)
    assert 'name="environment_path"' in allowed and 'name="environment_path"' not in refused


def test_a_reservation_that_ended_is_not_offered_from_the_cache(monkeypatch):
    start = datetime.now(timezone.utc)
    clock = [start]

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return clock[0]

    monkeypatch.setattr(form, "datetime", Clock)
    ending = Reservation("ending-soon", "ACTIVE", start - timedelta(hours=1),
                         start + timedelta(seconds=10), ("alice",), (), None, "c1", ())  # fmt: skip
    # Five minutes old: the age shown ("5 min") stays the same while the reservation ends.
    snap = replace(SNAPSHOT, reservations=(ending,), taken_at=start - timedelta(minutes=5))
    spawner = make_spawner(snap=snap, saved={"partition": "debug"})
    assert "ending-soon" in page(spawner)
    clock[0] = start + timedelta(seconds=20)
    assert "ending-soon" not in page(spawner)


def test_an_edited_admin_template_is_rendered_afresh(tmp_path):
    template = tmp_path / "moss_form.html"
    template.write_text(
        '{% extends "jupyterhub_moss/moss_form.html" %}{% block intro %}v1{% endblock %}'
    )
    spawner = make_spawner()
    spawner.config.JupyterHub.template_paths = [str(tmp_path)]
    assert "v1" in page(spawner)
    template.write_text(
        '{% extends "jupyterhub_moss/moss_form.html" %}{% block intro %}v2{% endblock %}'
    )
    later = template.stat().st_mtime + 5
    os.utime(template, (later, later))
    assert "v2" in page(spawner)


def test_a_user_without_access_does_not_see_a_render_made_for_one_with_it():
    alice = page(make_spawner("alice"))
    bob = page(make_spawner("bob"))
    assert 'value="gpu"' in alice
    assert 'value="gpu"' not in bob


def test_two_users_never_share_a_render(template_renders):
    # Same access, same values: only whose form it is, and their tokens, differ.
    alice = page(make_spawner("alice", xsrf_token="alice-token", groups=frozenset()))
    bob = page(make_spawner("bob", xsrf_token="bob-token", groups=frozenset()))
    assert template_renders == ["alice", "bob"]
    assert "alice-token" not in bob and "/alice/" not in bob
    assert "bob-token" not in alice and "/bob/" not in alice
    # and each, asked again, gets their own back
    assert page(make_spawner("bob", xsrf_token="bob-token", groups=frozenset())) == bob
    assert page(make_spawner("alice", xsrf_token="alice-token", groups=frozenset())) == alice


#: cpu's second environment and the debug partition are for the JupyterHub group ml only.
ML_ENV = {"description": "Machine learning", "path": "/opt/ml/bin/", "groups": ["ml"]}
FOR_GROUPS = {
    **PARTITIONS,
    "cpu": {**PARTITIONS["cpu"], "jupyter_environments": {**ENV, "ml": ML_ENV}},
    "debug": {**PARTITIONS["debug"], "groups": ["ml"]},
}


@pytest.mark.parametrize(
    "member", [{"hub_groups": frozenset({"ml"})}, {"hub_admin": True}], ids=["member", "admin"]
)
def test_joining_a_jupyterhub_group_or_becoming_admin_gives_a_fresh_render(member):
    # Same user, token, snapshot and saved options: only the hub's groups or admin flag differ.
    def advanced_page(**access) -> str:
        return page(make_spawner(partitions=FOR_GROUPS, saved={"partition": "cpu",
                                 "memory": "1G"}, **access))  # fmt: skip

    outside = advanced_page()
    inside = advanced_page(**member)
    assert RENDERS.misses == 2
    assert 'value="debug"' in inside and 'value="debug"' not in outside
    assert "Machine learning" in inside and "Machine learning" not in outside
    # and each is served its own from the cache
    assert advanced_page() == outside
    assert advanced_page(**member) == inside
    assert RENDERS.hits == 2


def test_a_hidden_environment_alone_keeps_renders_apart():
    """Only cpu's environments differ (no partition is hidden): the limits compare unequal."""
    only_env = {**PARTITIONS, "cpu": FOR_GROUPS["cpu"]}
    outside = page(make_spawner(partitions=only_env))
    inside = page(make_spawner(partitions=only_env, hub_groups=frozenset({"ml"})))
    assert RENDERS.misses == 2
    assert "Machine learning" in inside and "Machine learning" not in outside


def test_fragments_follow_what_the_browser_sent():
    spawner = make_spawner()
    gpu = fragment(spawner, "partition", moss_tab="simple", partition="gpu")
    cpu = fragment(spawner, "partition", moss_tab="simple", partition="cpu")
    assert RENDERS.misses == 2
    assert 'name="ngpus"' in gpu and 'name="ngpus"' not in cpu


# -- what is never kept -------------------------------------------------------------------


def test_a_rejected_submission_and_a_held_link_are_never_cached():
    rejection = Rejection({"partition": "cpu", "nprocs": "x"}, {"nprocs": "not a number"}, 0.0)
    spawner = make_spawner()
    ctx = asyncio.run(spawner.form_context())
    html = form.render_form(ctx, rejection=rejection)
    form.render_form(ctx, link=LinkToConfirm({"partition": ["cpu"]}, "another site"))
    assert len(RENDERS) == 0 and RENDERS.misses == 0
    assert "not a number" in html


def test_long_inputs_are_rendered_but_not_kept():
    spawner = make_spawner(saved={"partition": "cpu", "root_dir": "~/" + "x" * MAX_INPUT_CHARS})
    page(spawner)
    fragment(spawner, "body", moss_tab="advanced", root_dir="~/" + "y" * MAX_INPUT_CHARS)
    assert len(RENDERS) == 0


def test_the_cache_is_bounded(template_renders):
    for n in range(MAX_ENTRIES + 50):
        page(make_spawner(saved={"partition": "cpu", "root_dir": f"~/folder{n}"}))
        fragment(make_spawner(), "body", moss_tab="advanced", root_dir=f"~/f{n}")
    assert len(RENDERS) == MAX_ENTRIES
    # the oldest went first: the latest page is still kept, the first is not
    page(make_spawner(saved={"partition": "cpu", "root_dir": f"~/folder{MAX_ENTRIES + 49}"}))
    page(make_spawner(saved={"partition": "cpu", "root_dir": "~/folder0"}))
    assert len(template_renders) == MAX_ENTRIES + 50 + 1


def test_two_users_with_one_token_still_get_their_own_render():
    # Not a real case (tokens are per user): the user alone must already tell renders apart.
    alice = page(make_spawner("alice", xsrf_token="same", groups=frozenset()))
    bob = page(make_spawner("bob", xsrf_token="same", groups=frozenset()))
    assert RENDERS.misses == 2
    assert "/alice/" in alice and "/alice/" not in bob
