"""The spawn form as a function of config, cluster snapshot and values: no hub, no Slurm.

A real MOSlurmSpawner is built with the admin's partitions; only its cluster snapshot is fixed,
from PartitionInfo objects as the Slurm parser makes them.
"""

from __future__ import annotations

import asyncio
import re
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

import jupyterhub_moss
from jupyterhub_moss.form.availability import availability_view
from jupyterhub_moss.form.choices import describe_duration
from jupyterhub_moss.form.estimate import describe_estimate, estimate_args
from jupyterhub_moss.form.views import AvailabilityView
from jupyterhub_moss.slurm.models import PartitionInfo, Reservation, StartEstimate
from jupyterhub_moss.slurm.partitions import parse_sinfo
from jupyterhub_moss.slurm.view import ClusterSnapshot
from jupyterhub_moss.spawner import MOSlurmSpawner

pytestmark = pytest.mark.unit

PAYLOAD = "<script>alert(1)</script>'\""
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)


def environments(description: str = "Default") -> dict:
    return {
        "default": {"description": description, "path": "/opt/env/bin/"},
        "other": {"description": "Other", "modules": "python/3.11"},
    }


PARTITIONS = {
    "cpu": {
        "description": "CPU nodes",
        "architecture": "x86_64",
        "gpu": "",
        "max_nprocs": 28,
        "max_runtime": 86400,
        "jupyter_environments": environments(),
    },
    "gpu": {
        "description": "GPU nodes",
        "gpu": "gpu:fake:{}",
        "max_ngpus": 2,
        "max_nprocs": 8,
        "max_runtime": 12 * 3600,
        "jupyter_environments": environments(),
    },
    "debug": {
        "description": "Debugging",
        "gpu": "",
        "simple": False,
        "max_nprocs": 8,
        "max_runtime": 3600,
        "jupyter_environments": {"default": {"path": "/opt/env/bin/"}},
    },
}


def info(name: str, state: str = "up", **kw) -> PartitionInfo:
    fields = dict(
        name=name,
        state=state,
        is_default=name == "cpu",
        nodes_idle=1,
        nodes_total=2,
        cpus_idle=20,
        cpus_total=56,
        cpus_per_node=28,
        memory_per_node_mb=64000,
        max_runtime=86400,
    )
    fields.update(kw)
    return PartitionInfo(**fields)


def snapshot(stale: bool = False, age: float = 12, reservations=()) -> ClusterSnapshot:
    return ClusterSnapshot(
        partitions={
            "cpu": info("cpu"),
            "gpu": info("gpu", gpus_total=4, gpus_used=1, gpus_per_node={"fake": 2}),
            "debug": info("debug", state="drain", node_states=("drained",)),
        },
        reservations=tuple(reservations),
        taken_at=datetime.now(timezone.utc) - timedelta(seconds=age),
        error="sinfo timed out" if stale else None,
    )


def make_spawner(
    partitions: dict | None = None,
    snap: ClusterSnapshot | None = None,
    saved: dict | None = None,
    name: str = "",
    **traits,
) -> MOSlurmSpawner:
    spawner = MOSlurmSpawner(
        partitions=partitions or PARTITIONS,
        user=types.SimpleNamespace(name="alice", spawners={}),
        **traits,
    )
    spawner.orm_spawner = types.SimpleNamespace(name=name, user_options=saved or {}, server=None)
    snap = snap if snap is not None else snapshot()

    async def fixed_snapshot():
        return snap

    spawner.cluster_snapshot = fixed_snapshot
    return spawner


def page(spawner: MOSlurmSpawner) -> BeautifulSoup:
    return BeautifulSoup(asyncio.run(spawner.render_options_form()), "html.parser")


def fragment(spawner, name: str, **query) -> BeautifulSoup:
    args = {k: [v.encode()] for k, v in query.items()}
    html = asyncio.run(spawner.render_form_fragment(name, "", args))
    return BeautifulSoup(html, "html.parser")


def options(soup: BeautifulSoup, name: str) -> list[str]:
    return [o["value"] for o in soup.select(f"select[name={name}] option")]


def selected(soup: BeautifulSoup, name: str) -> str:
    return soup.select_one(f"select[name={name}] option[selected]")["value"]


# -- the Simple tab ----------------------------------------------------------------------------


def test_simple_tab_offers_simple_partitions_as_radio_cards_with_details():
    soup = page(make_spawner())
    radios = soup.select("input[type=radio][name=partition]")
    assert [r["value"] for r in radios] == ["cpu", "gpu"]  # debug is not simple
    assert radios[0].has_attr("checked")
    first_card = soup.select_one(".moss-partition-card")
    assert "CPU nodes" in first_card.text and "x86_64" in first_card.text
    assert soup.select_one("input[name=moss_tab]")["value"] == "simple"


def test_simple_tab_cpu_and_runtime_choices_come_from_the_partition_limits():
    soup = page(make_spawner())
    assert options(soup, "nprocs") == ["1", "2", "4", "7", "14", "28"]
    assert options(soup, "runtime") == [
        "01:00:00",
        "02:00:00",
        "04:00:00",
        "06:00:00",
        "08:00:00",
        "12:00:00",
    ]
    assert soup.select_one("[name=ngpus]") is None  # cpu has no GPUs
    assert options(soup, "environment_id") == ["default", "other"]
    assert [r["value"] for r in soup.select("input[name=default_url]")] == ["/lab", "/tree"]


def test_gpu_row_appears_only_for_a_partition_with_gpus():
    soup = fragment(make_spawner(), "partition", partition="gpu", moss_tab="simple")
    assert options(soup, "ngpus") == ["0", "1", "2"]
    assert options(soup, "nprocs") == ["1", "2", "4", "8"]
    assert options(soup, "runtime")[-1] == "12:00:00"


def test_simple_tab_never_posts_advanced_only_fields():
    soup = page(make_spawner())
    names = {el["name"] for el in soup.select("[name]")}
    assert names == {"moss_tab", "partition", "nprocs", "runtime", "environment_id", "default_url"}


# -- the Advanced tab --------------------------------------------------------------------------


def test_advanced_tab_offers_every_partition_and_exact_numbers_with_limits():
    soup = fragment(make_spawner(), "body", moss_tab="advanced", partition="gpu")
    assert options(soup, "partition") == ["cpu", "gpu", "debug"]
    assert selected(soup, "partition") == "gpu"
    nprocs = soup.select_one("input[name=nprocs]")
    assert (nprocs["type"], nprocs["min"], nprocs["max"]) == ("number", "1", "8")
    ngpus = soup.select_one("input[name=ngpus]")
    assert (ngpus["min"], ngpus["max"]) == ("0", "2")
    assert "64000M" in soup.select_one("#moss-memory-help").text  # 64000 MB node
    assert "12:00:00" in soup.select_one("#moss-runtime-help").text
    for name in ("reservation", "options", "root_dir", "default_url", "memory"):
        assert soup.select_one(f"input[name={name}]") is not None, name
    # two radios, so that "not saved" is sent, not left out (which would read as the default)
    outputs = soup.select("input[name=output]")
    assert [(o["type"], o["value"]) for o in outputs] == [("radio", "false"), ("radio", "true")]
    assert [o.has_attr("checked") for o in outputs] == [True, False]
    assert soup.select_one("input[name=environment_path]") is not None


def test_custom_environment_fields_are_hidden_when_the_admin_disallows_them():
    spawner = make_spawner(allow_custom_environments=False)
    soup = fragment(spawner, "body", moss_tab="advanced")
    assert soup.select_one("[name=environment_path]") is None
    assert soup.select_one("[name=environment_modules]") is None


def test_every_control_has_a_label():
    for tab in ("simple", "advanced"):
        soup = fragment(make_spawner(), "body", moss_tab=tab, partition="gpu")
        for control in soup.select("input:not([type=hidden]), select"):
            label = soup.select_one(f"label[for='{control['id']}']")
            assert label is not None and label.text.strip(), (tab, control)


def test_reservations_offered_are_those_the_user_may_use():
    now = datetime.now(timezone.utc)

    def reservation(name, users=("alice",), flags=()):
        return Reservation(
            name, "ACTIVE", now, now + timedelta(hours=2), users, (), None, "c1", flags
        )

    snap = snapshot(
        reservations=[
            reservation("mine"),
            reservation("bobs", users=("bob",)),
            reservation("maint", flags=("MAINT",)),
        ]
    )
    soup = fragment(make_spawner(snap=snap), "body", moss_tab="advanced")
    assert [o["value"] for o in soup.select("#moss-reservation-list option")] == ["mine"]


# -- carrying values over, remembering, rejecting ---------------------------------------------


def test_tab_switch_carries_valid_values_and_drops_unparsable_ones():
    soup = fragment(
        make_spawner(),
        "body",
        moss_tab="advanced",
        partition="gpu",
        nprocs="4",
        ngpus="2",
        runtime="not a time",
        memory="lots",
    )
    assert soup.select_one("input[name=nprocs]")["value"] == "4"
    assert soup.select_one("input[name=ngpus]")["value"] == "2"
    assert soup.select_one("input[name=runtime]")["value"] == "01:00:00"  # default again
    assert soup.select_one("input[name=memory]")["value"] == ""
    assert not soup.select(".is-invalid")  # carrying over is not a submission: no messages


def test_partition_change_resets_what_the_new_partition_cannot_take():
    soup = fragment(
        make_spawner(), "partition", moss_tab="advanced", partition="debug", nprocs="20", ngpus="2"
    )
    assert soup.select_one("input[name=nprocs]")["value"] == "1"  # debug allows 8
    assert soup.select_one("[name=ngpus]") is None
    assert soup.select_one("#moss-partition-controls") is not None


def test_unknown_partition_in_a_fragment_falls_back_to_the_default():
    soup = fragment(make_spawner(), "partition", moss_tab="simple", partition="nope")
    assert options(soup, "nprocs") == ["1", "2", "4", "7", "14", "28"]


def test_switching_to_simple_says_which_advanced_values_it_does_not_use():
    soup = fragment(make_spawner(), "body", moss_tab="simple", memory="4G", reservation="r1")
    note = soup.select_one(".moss-not-in-simple").text
    assert "memory" in note and "reservation" in note


def test_form_opens_with_saved_options_cleaned_against_todays_limits():
    saved = {
        "partition": "gpu",
        "nprocs": "4",
        "ngpus": "9",
        "runtime": "02:00:00",
        "environment_id": "gone",
        "default_url": "/tree",
    }
    soup = page(make_spawner(saved=saved))
    assert soup.select_one("input[name=partition][checked]")["value"] == "gpu"
    assert selected(soup, "nprocs") == "4"
    assert selected(soup, "ngpus") == "0"  # 9 GPUs no longer allowed: dropped
    assert selected(soup, "runtime") == "02:00:00"
    assert selected(soup, "environment_id") == "default"
    assert soup.select_one("input[name=default_url][checked]")["value"] == "/tree"


def test_saved_advanced_options_open_the_advanced_tab():
    saved = {"partition": "debug", "nprocs": "3", "memory": "4G", "runtime": "00:30:00"}
    soup = page(make_spawner(saved=saved))
    assert soup.select_one("input[name=moss_tab]")["value"] == "advanced"
    assert selected(soup, "partition") == "debug"
    assert soup.select_one("input[name=memory]")["value"] == "4G"
    assert soup.select_one("input[name=runtime]")["value"] == "00:30:00"


@pytest.mark.parametrize(
    "saved",
    [
        {"partition": "removed", "nprocs": "4"},
        {"partition": ["cpu"], "nprocs": {"x": 1}},
        {"partition": "cpu", "nprocs": PAYLOAD, "root_dir": PAYLOAD, "options": PAYLOAD},
        "not a dict",
    ],
)
def test_unusable_saved_options_give_the_defaults(saved):
    soup = page(make_spawner(saved=saved))
    assert selected(soup, "nprocs") == "1"
    assert soup.select_one("input[name=partition][checked]")["value"] == "cpu"
    assert "<script>" not in str(soup)


def test_rejected_submission_is_shown_as_typed_with_messages_next_to_fields():
    spawner = make_spawner()
    values = {
        "partition": "gpu",
        "nprocs": "99",
        "memory": "lots",
        "runtime": "01:00:00",
        "reservation": "",
        "options": "",
        "root_dir": "",
    }
    errors = {"nprocs": "nprocs: at most 8 CPUs on gpu", "memory": "memory: expected a size"}
    spawner.remember_rejected_submission(values, errors)
    soup = page(spawner)
    assert soup.select_one("input[name=moss_tab]")["value"] == "advanced"
    memory = soup.select_one("input[name=memory]")
    assert memory["value"] == "lots"
    assert "is-invalid" in memory["class"]
    assert "moss-memory-error" in memory["aria-describedby"].split()
    assert soup.select_one("#moss-memory-error").text == "memory: expected a size"
    assert soup.select_one("input[name=nprocs]")["value"] == "99"
    assert soup.select_one("#moss-nprocs-error").text.startswith("nprocs: at most 8")
    # shown once: the next visit is a fresh form
    assert page(spawner).select_one("#moss-memory-error") is None


def test_named_server_rejection_is_shown_by_the_default_spawner_for_that_server():
    named = make_spawner(name="second")
    named.remember_rejected_submission({"partition": "cpu", "nprocs": "0"}, {"nprocs": "bad"})
    soup = page(make_spawner(name=""))  # JupyterHub re-renders through the default spawner
    assert soup.select_one("#moss-nprocs-error").text == "bad"
    assert soup.select_one("#moss-availability")["hx-get"].endswith("/alice/second")


def test_errors_for_fields_the_tab_does_not_show_are_listed_at_the_top():
    spawner = make_spawner()
    spawner.remember_rejected_submission({"partition": "cpu"}, {"bogus": "bogus: unknown"})
    soup = page(spawner)
    assert "bogus: unknown" in soup.select_one(".alert-danger").text


# -- the availability table and the estimate ---------------------------------------------------


def test_availability_table_shows_idle_totals_gpus_and_state():
    soup = fragment(make_spawner(), "availability", moss_tab="advanced", partition="gpu")
    rows = {
        tr.th.text: [td.text.strip() for td in tr.select("td")] for tr in soup.select("tbody tr")
    }
    assert rows["cpu"] == ["20 / 56", "1 / 2", "—", "up"]
    assert rows["gpu"] == ["20 / 56", "1 / 2", "3 / 4", "up"]
    assert rows["debug"][-1] == "drained"
    assert soup.select_one("tr.table-active th").text == "gpu"
    assert "Updated 12 s ago" in soup.select_one(".moss-availability-status").text


@pytest.mark.parametrize(
    ("node_states", "note"),
    [
        (("idle", "mixed"), ""),
        (("idle", "idle~"), ""),  # powered down, woken on demand
        (("idle", "mix-"), ""),
        (("idle", "drained"), "some nodes unavailable"),
        (("idle", "drng"), "some nodes unavailable"),
        (("idle", "down*"), "some nodes unavailable"),
        (("idle", "maint"), "some nodes unavailable"),
    ],
)
def test_table_notes_unusable_nodes_of_an_up_partition(node_states, note):
    snap = snapshot()
    snap = ClusterSnapshot(
        partitions={**snap.partitions, "cpu": info("cpu", node_states=node_states)},
        reservations=(),
        taken_at=snap.taken_at,
    )
    soup = fragment(make_spawner(snap=snap), "availability", moss_tab="advanced")
    row = {tr.th.text: tr for tr in soup.select("tbody tr")}["cpu"]
    assert row.select("td")[-1].text.strip() == " ".join(filter(None, ["up", note]))


SINFO_FIXTURES = Path(__file__).parent.parent / "fixtures" / "slurm"


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "sinfo_handmade_down_drained.txt",
            {
                "ok": ("up", "some nodes unavailable"),
                "closed": ("down", ""),
                "dead": ("down", ""),
                "drained": ("drained", ""),
                "paused": ("drained", ""),
                "retired": ("inactive", ""),
            },
        ),
        ("sinfo_handmade_gpu_types.txt", dict.fromkeys(("gpu", "mig", "plain"), ("up", ""))),
        (
            "sinfo_handmade_mixed_groups.txt",
            dict.fromkeys(("batch", "gpu", "interactive"), ("up", "")),
        ),
        ("sinfo_multi_busy.txt", dict.fromkeys(("cpu", "debug", "gpu"), ("up", ""))),
        ("sinfo_single_busy.txt", dict.fromkeys(("cpu", "debug", "gpu"), ("up", ""))),
    ],
)
def test_table_states_and_notes_from_captured_sinfo(fixture, expected):
    partitions = parse_sinfo((SINFO_FIXTURES / fixture).read_text())
    snap = ClusterSnapshot(
        partitions=partitions, reservations=(), taken_at=datetime.now(timezone.utc)
    )
    shown = [types.SimpleNamespace(name=name, has_gpus=True, gpu_types=()) for name in partitions]
    view = availability_view(shown, snap, "", 0, datetime.now(timezone.utc))
    assert {row.name: (row.state, row.note) for row in view.rows} == expected


def test_simple_tab_table_lists_only_simple_partitions():
    soup = fragment(make_spawner(), "availability", moss_tab="simple")
    assert [th.text for th in soup.select("tbody th")] == ["cpu", "gpu"]


def test_table_polls_at_the_configured_interval_only_while_visible():
    section = fragment(make_spawner(availability_refresh_interval=7), "availability").section
    assert section["hx-swap"] == "outerHTML"
    trigger = section["hx-trigger"]
    assert trigger.startswith("every 7s [document.visibilityState === 'visible']")
    assert "visibilitychange" in trigger and "from:document" in trigger
    no_poll = fragment(make_spawner(availability_refresh_interval=0), "availability").section
    assert not no_poll.has_attr("hx-trigger")


def test_stale_data_shows_a_banner_with_its_age():
    soup = fragment(make_spawner(snap=snapshot(stale=True, age=130)), "availability")
    status = soup.select_one(".moss-availability-status")
    assert "alert-warning" in status["class"]
    assert status.text.strip() == "Showing data from 2 min ago: Slurm did not answer."


def test_no_slurm_data_at_all_still_renders_the_configured_limits():
    spawner = make_spawner()

    async def never():
        return None

    spawner.cluster_snapshot = never
    soup = page(spawner)
    assert "Slurm did not answer" in soup.select_one(".moss-availability-status").text
    assert options(soup, "nprocs")[-1] == "28"
    assert {td.text.strip() for td in soup.select("tbody td")} >= {"—", "unknown"}


def test_estimate_wording():
    start = NOW + timedelta(minutes=20)
    view = describe_estimate(StartEstimate(start, 4, "c1"), NOW)
    local = start.astimezone()
    assert view.text == f"Expected to start at {local:%H:%M} (in about 20 min)"
    assert describe_estimate(StartEstimate(NOW, 4, "c1"), NOW).text == "Would start now"


def test_estimate_args_are_those_of_the_real_submission():
    spawner = make_spawner()
    opts = asyncio.run(
        spawner.validate_options(
            {
                "partition": "gpu",
                "nprocs": "2",
                "ngpus": "1",
                "memory": "4G",
                "options": "--comment=x",
            }
        )
    )
    limits = asyncio.run(spawner.partition_limits())["gpu"]
    settings = spawner.script_settings({})
    # the batch script's order: the user's extra options first (see test_sbatch_arguments.py)
    assert estimate_args(opts, limits, settings, home="/home/alice") == [
        "--comment=x",
        "--chdir=/home/alice",
        "--output=/dev/null",
        "--partition=gpu",
        "--time=01:00:00",
        "--cpus-per-task=2",
        "--mem=4G",
        "--gres=gpu:fake:1",
    ]


def test_estimate_fragment_is_empty_when_the_options_are_invalid():
    soup = fragment(make_spawner(), "estimate", partition="cpu", nprocs="999")
    assert soup.text.strip() == ""


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5 s"),
        (90, "1 min"),
        (5400, "1 h 30 min"),
        (86400, "1 day"),
        (2 * 86400 + 3600, "2 days 1 h"),
    ],
)
def test_describe_duration(seconds, text):
    assert describe_duration(seconds) == text


# -- escaping, XSRF, URLs ----------------------------------------------------------------------


def hostile_partitions() -> dict:
    return {
        "cpu": {
            "description": PAYLOAD,
            "architecture": PAYLOAD,
            "gpu": "",
            "max_nprocs": 4,
            "max_runtime": 3600,
            "jupyter_environments": {"default": {"description": PAYLOAD, "path": "/opt/env/bin/"}},
        }
    }


@pytest.mark.parametrize("where", ["page", "body-simple", "body-advanced", "availability"])
def test_admin_strings_are_escaped_everywhere(where):
    spawner = make_spawner(partitions=hostile_partitions(), snap=None)
    if where == "page":
        html = asyncio.run(spawner.render_options_form())
    else:
        name, _, tab = where.partition("-")
        args = {"moss_tab": [tab.encode() or b"simple"]}
        html = asyncio.run(spawner.render_form_fragment(name, "", args))
    soup = BeautifulSoup(html, "html.parser")
    assert "<script>alert(1)" not in html
    assert not soup.find("script", string=re.compile("alert"))
    if where != "availability":
        assert PAYLOAD in soup.text  # shown as text


def test_rejected_values_are_escaped():
    spawner = make_spawner()
    spawner.remember_rejected_submission(
        {"memory": PAYLOAD, "root_dir": PAYLOAD}, {"memory": PAYLOAD}
    )
    html = asyncio.run(spawner.render_options_form())
    assert "<script>alert(1)" not in html
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one("input[name=memory]")["value"] == PAYLOAD
    assert soup.select_one("#moss-memory-error").text == PAYLOAD


def test_reservation_names_from_slurm_are_escaped():
    now = datetime.now(timezone.utc)
    hostile = Reservation(PAYLOAD, "ACTIVE", now, None, ("alice",), (), PAYLOAD, "c1", ())
    html = asyncio.run(
        make_spawner(snap=snapshot(reservations=[hostile])).render_form_fragment(
            "body", "", {"moss_tab": [b"advanced"]}
        )
    )
    assert "<script>alert(1)" not in html
    option = BeautifulSoup(html, "html.parser").select_one("#moss-reservation-list option")
    assert option["value"] == PAYLOAD
    assert PAYLOAD in option.text


def test_xsrf_header_is_plain_json_from_the_live_request_only():
    spawner = make_spawner()
    spawner.handler = types.SimpleNamespace(_finished=False, xsrf_token=b"tok'en\"<")
    root = page(spawner).select_one("#moss-form")
    assert root["hx-headers"] == '{"X-XSRFToken": "tok\'en\\"<"}'
    spawner.handler = types.SimpleNamespace(_finished=True, xsrf_token=b"old")
    assert not page(spawner).select_one("#moss-form").has_attr("hx-headers")


def test_urls_live_under_the_hub_prefix_and_carry_user_and_server():
    spawner = make_spawner(name="gpu-box")
    spawner.hub = types.SimpleNamespace(base_url="/jupyter/hub/")
    soup = page(spawner)
    assert soup.select_one("script")["src"].startswith("/jupyter/hub/moss/static/htmx.min.js")
    assert soup.select_one("link")["href"].startswith("/jupyter/hub/moss/static/moss.css")
    urls = {el["hx-get"] for el in soup.select("[hx-get]")}
    assert urls == {
        f"/jupyter/hub/moss/form/{name}/alice/gpu-box"
        for name in ("body", "partition", "estimate", "availability")
    }


# -- templates: one template, admin overrides --------------------------------------------------


def test_fragments_are_the_blocks_of_the_page():
    spawner = make_spawner()
    whole = page(spawner)
    for name, element in (
        ("availability", "#moss-availability"),
        ("partition", "#moss-partition-controls"),
        ("body", "#moss-form-body"),
    ):
        part = fragment(spawner, name, moss_tab="simple")
        assert part.select_one(element) is not None
        assert [i.get("name") for i in part.select(f"{element} [name]")] == [
            i.get("name") for i in whole.select(f"{element} [name]")
        ]


def test_admin_template_extending_ours_overrides_blocks_in_page_and_fragments(tmp_path: Path):
    (tmp_path / "moss_form.html").write_text(
        '{% extends "jupyterhub_moss/moss_form.html" %}'
        '{% block intro %}<p class="site-intro">Welcome to {{ view.target.user_name }}</p>'
        "{% endblock %}"
        '{% block availability %}<p id="site-table">ours</p>{{ super() }}{% endblock %}'
    )
    spawner = make_spawner()
    spawner.config.JupyterHub.template_paths = [str(tmp_path)]
    soup = page(spawner)
    assert soup.select_one(".site-intro").text == "Welcome to alice"
    assert soup.select_one("#site-table") is not None
    body = fragment(spawner, "body")
    assert body.select_one(".site-intro") is not None
    table = fragment(spawner, "availability")
    assert table.select_one("#site-table") is not None  # the override, with super()
    assert table.select_one("#moss-availability") is not None
    assert fragment(spawner, "partition").select_one("#moss-partition-controls") is not None


# -- hand-written JavaScript stays small -------------------------------------------------------

PACKAGE = Path(jupyterhub_moss.__file__).parent
VENDORED = {"htmx.min.js", "htmx.LICENSE", "htmx.VERSION"}


def hand_written_js_lines() -> dict[str, int]:
    """Lines of JavaScript we wrote: inline scripts, on*/hx-on attributes, htmx trigger
    filters (``[...]`` expressions), ``js:`` values, and .js files other than vendored htmx."""
    counts: dict[str, int] = {}
    for path in sorted((PACKAGE / "templates").glob("*.html")):
        text = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.DOTALL)  # Jinja comments
        soup = BeautifulSoup(text, "html.parser")
        lines = sum(
            len(s.text.strip().splitlines()) for s in soup.find_all("script") if s.text.strip()
        )
        lines += len(re.findall(r"\s(?:on[a-z]+|hx-on[:\w-]*)\s*=", text))
        lines += len(re.findall(r"js:", text))
        counts[path.name] = lines
    for path in sorted((PACKAGE / "static").iterdir()):
        if path.name not in VENDORED and path.suffix == ".js":
            counts[path.name] = len([ln for ln in path.read_text().splitlines() if ln.strip()])
    trigger = AvailabilityView([], False, "", False, "", 30).hx_trigger
    counts["trigger filters"] = len(re.findall(r"\[document\.[^\]]*\]", trigger))
    return counts


def test_hand_written_javascript_stays_under_60_lines():
    counts = hand_written_js_lines()
    assert sum(counts.values()) < 60, counts
    assert counts["trigger filters"] == 2  # the only JavaScript: two visibility checks
    assert sum(counts.values()) == 2, counts


def test_a_user_without_a_unix_account_gets_the_form_and_no_estimate():
    """batchspawner's req_homedir looks the user up in passwd: an admin who is no Unix user
    must still see the form (once a 500), and the estimate is simply left out."""
    spawner = make_spawner()
    spawner.user = types.SimpleNamespace(name="no-such-unix-user-moss", spawners={})
    assert page(spawner).select_one("select[name=partition], input[name=partition]") is not None
    soup = fragment(spawner, "estimate", partition="cpu", nprocs="2")
    assert soup.text.strip() == ""
