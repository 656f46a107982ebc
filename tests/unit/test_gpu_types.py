"""GPU types: the admin's ``gpu_types`` (or Slurm's GRES) → a type and a count for the user,
each type with its own limit → ``--gres=gpu:TYPE:N``, and free GPUs per type in the table.

Slurm's side is read from sinfo output captured on dev/cluster's multi layout, whose GPU node
has ``gpu:fake:2,gpu:other:1``, and from the hand-made file with MIG and untyped GPUs.
"""

from __future__ import annotations

import asyncio
import types
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from jupyterhub_moss.batch_script import ScriptSettings, job_sbatch_arguments
from jupyterhub_moss.config import PartitionConfigError, load_partitions
from jupyterhub_moss.form.availability import availability_view
from jupyterhub_moss.gpu_types import GpuTypeLimit
from jupyterhub_moss.limits import charged_limits, merge_partition_limits
from jupyterhub_moss.options import FIELD_NAMES, UserOptionsError, parse_user_options
from jupyterhub_moss.request_values import flatten_form, normalise_query
from jupyterhub_moss.slurm.accounting import JobLimits
from jupyterhub_moss.slurm.partitions import parse_sinfo
from jupyterhub_moss.slurm.view import ClusterSnapshot
from jupyterhub_moss.spawner import MOSlurmSpawner

pytestmark = pytest.mark.unit

SLURM_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm"
ENVS = {"jupyter_environments": {"default": {"path": "/opt/env/bin"}}}
PAYLOAD = "<script>alert(1)</script>'\""


def captured(name: str):
    return parse_sinfo((SLURM_FIXTURES / f"sinfo_{name}.txt").read_text())


MULTI_IDLE = captured("multi_gpu_types_idle")
MULTI_BUSY = captured("multi_gpu_types_busy")


def limits(slurm=None, **partitions):
    configs = load_partitions({name: {**ENVS, **f} for name, f in partitions.items()})
    return merge_partition_limits(configs, slurm)


def problems(**fields) -> list[str]:
    with pytest.raises(PartitionConfigError) as caught:
        load_partitions({"gpu": {**ENVS, **fields}})
    return caught.value.problems


# -- the config model -------------------------------------------------------------------------


def test_gpu_types_are_read_in_the_admins_order_with_their_fields():
    config = load_partitions(
        {
            "gpu": {
                **ENVS,
                "gpu_types": {"v100": {"description": "older"}, "a100": {"max_ngpus": 2}},
                "gpu_any_type": False,
            }
        }
    )["gpu"]
    assert list(config.gpu_types) == ["v100", "a100"]
    assert config.gpu_types["v100"].description == "older"
    assert config.gpu_types["a100"].max_ngpus == 2
    assert config.gpu_any_type is False


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"gpu": "", "gpu_types": {"a100": {}}},
            "partition 'gpu': field 'gpu_types': set, but gpu is '' (the partition offers no GPUs)",
        ),
        (
            {"gpu": "gpu:v100:{}", "gpu_types": {"a100": {}}},
            "partition 'gpu': field 'gpu_types': cannot be combined with gpu 'gpu:v100:{}'",
        ),
        (
            {"max_ngpus": 2, "gpu_types": {"a100": {"max_ngpus": 4}}},
            "partition 'gpu': field 'gpu_types.a100.max_ngpus': 4 is more than the "
            "partition's max_ngpus (2)",
        ),
        ({"gpu_types": {}}, "partition 'gpu': field 'gpu_types': must not be empty"),
        (
            {"gpu_types": {"a100:2": {}}},
            "partition 'gpu': field 'gpu_types': GPU type 'a100:2' is not a Slurm GRES type",
        ),
        (
            {"gpu_types": {"a,b": {}}},
            "partition 'gpu': field 'gpu_types': GPU type 'a,b' is not a Slurm GRES type",
        ),
        (
            {"gpu_types": {"a 100": {}}},
            "partition 'gpu': field 'gpu_types': GPU type 'a 100' is not a Slurm GRES type",
        ),
        (
            {"gpu_types": {"a100\n": {}}},
            "partition 'gpu': field 'gpu_types': GPU type 'a100\\n' is not a Slurm GRES type",
        ),
        (
            {"gpu_types": {"a100": {"max_ngpus": 0}}},
            "partition 'gpu': field 'gpu_types.a100.max_ngpus': must be at least 1, got 0",
        ),
        (
            {"gpu_types": {"a100": {"max_ngpus": "2"}}},
            "partition 'gpu': field 'gpu_types.a100.max_ngpus': must be an integer, got '2'",
        ),
        (
            {"gpu_types": {"a100": {"max_gpus": 2}}},
            "partition 'gpu': field 'gpu_types.a100.max_gpus': unknown field "
            "(allowed: description, max_ngpus)",
        ),
        (
            {"gpu_any_type": "no"},
            "partition 'gpu': field 'gpu_any_type': must be True or False, got 'no'",
        ),
    ],
    ids=[
        "types-without-gpus",
        "types-with-a-fixed-template",
        "type-limit-above-partition",
        "empty",
        "colon",
        "comma",
        "space",
        "newline",
        "zero",
        "string-count",
        "unknown-field",
        "any-type-not-bool",
    ],
)
def test_a_bad_gpu_types_config_stops_the_hub_naming_partition_and_field(fields, expected):
    found = problems(**fields)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found[0]


def test_mig_and_dotted_type_names_are_slurm_words():
    config = load_partitions({"mig": {**ENVS, "gpu_types": {"1g.5gb": {}, "a100-sxm4_80g": {}}}})
    assert list(config["mig"].gpu_types) == ["1g.5gb", "a100-sxm4_80g"]


# -- limits: the admin's types, else Slurm's ----------------------------------------------------


def test_several_types_from_slurm_give_a_choice_each_with_its_nodes_count():
    gpu = limits(MULTI_IDLE, gpu={})["gpu"]
    assert gpu.gpu_types == (GpuTypeLimit("fake", "", 2), GpuTypeLimit("other", "", 1))
    assert gpu.gpu_template == "gpu:{}"
    assert gpu.max_ngpus == 3  # any type: every GPU of the node
    assert (gpu.max_ngpus_for("fake"), gpu.max_ngpus_for("other"), gpu.max_ngpus_for("")) == (
        2,
        1,
        3,
    )
    assert gpu.gres_for(1, "other") == "gpu:other:1"
    assert gpu.gres_for(3) == "gpu:3"
    assert gpu.gres_for(0, "other") == ""


def test_one_type_from_slurm_stays_as_it_was_a_template_and_no_choice():
    gpu = limits(captured("single_idle"), gpu={})["gpu"]
    assert gpu.gpu_types == ()
    assert gpu.gpu_template == "gpu:fake:{}"
    assert gpu.gres_for(2) == "gpu:fake:2"


def test_mig_types_from_slurm_are_types_and_untyped_gpus_offer_no_choice():
    found = limits(captured("handmade_gpu_types"), mig={}, plain={})
    assert [(t.name, t.max_ngpus) for t in found["mig"].gpu_types] == [
        ("a100_1g.5gb", 7),
        ("a100_3g.20gb", 2),
    ]
    assert found["mig"].gres_for(2, "a100_1g.5gb") == "gpu:a100_1g.5gb:2"
    assert found["plain"].gpu_types == ()
    assert found["plain"].gres_for(2) == "gpu:2"


def test_the_admins_fixed_template_leaves_no_choice_as_in_the_reference():
    gpu = limits(MULTI_IDLE, gpu={"gpu": "gpu:other:{}"})["gpu"]
    assert gpu.gpu_types == ()
    assert gpu.max_ngpus == 1  # of that type
    assert gpu.gres_for(1) == "gpu:other:1"


def test_the_admins_types_win_with_their_limits_capped_by_the_partitions():
    gpu = limits(
        MULTI_IDLE,
        gpu={
            "gpu_types": {
                "other": {"description": "the small one"},
                "fake": {"max_ngpus": 1},
                "ghost": {},  # a type Slurm does not list here: the partition's limit
            },
            "max_ngpus": 2,
        },
    )["gpu"]
    assert gpu.gpu_types == (
        GpuTypeLimit("other", "the small one", 1),
        GpuTypeLimit("fake", "", 1),
        GpuTypeLimit("ghost", "", 2),
    )
    assert gpu.max_ngpus == 2


def test_the_admins_types_work_before_slurm_answered():
    gpu = limits(None, gpu={"gpu_types": {"a100": {"max_ngpus": 4}, "v100": {"max_ngpus": 2}}})[
        "gpu"
    ]
    assert gpu.has_gpus
    assert gpu.max_ngpus == 4
    assert [(t.name, t.max_ngpus) for t in gpu.gpu_types] == [("a100", 4), ("v100", 2)]


def test_a_qos_limit_on_gpus_caps_every_type():
    gpu = limits(MULTI_IDLE, gpu={})["gpu"]
    gpu = replace(gpu, qos_limits={"gpu": JobLimits(max_gpus=1)})
    charged = charged_limits(gpu, "", "gpu")
    assert charged.max_ngpus == 1
    assert [(t.name, t.max_ngpus) for t in charged.gpu_types] == [("fake", 1), ("other", 1)]
    assert charged.gpu_limit_note("fake") == " (QOS gpu)"


# -- the option, on every way in ------------------------------------------------------------


LIMITS = limits(
    MULTI_IDLE,
    gpu={},
    # not a partition of the capture: its limits are the admin's alone
    strict={"gpu_types": {"fake": {}, "other": {}}, "gpu_any_type": False, "max_ngpus": 2},
    single={"gpu": "gpu:fake:{}", "max_ngpus": 2},
    cpu={"gpu": ""},
)


def parsed(raw: dict):
    return parse_user_options(raw, LIMITS)


def refusal(raw: dict) -> dict[str, str]:
    with pytest.raises(UserOptionsError) as caught:
        parsed(raw)
    return caught.value.errors


def test_gpu_type_is_a_documented_field_next_to_the_count():
    assert FIELD_NAMES.index("gpu_type") == FIELD_NAMES.index("ngpus") + 1


def test_a_type_and_a_count_within_its_limit():
    options = parsed({"partition": "gpu", "ngpus": "1", "gpu_type": "other"})
    assert (options.gpu_type, options.ngpus) == ("other", 1)
    assert parsed(options.to_saved()) == options
    assert options.to_saved()["gpu_type"] == "other"


def test_a_count_above_the_types_limit_is_refused_naming_the_type():
    assert refusal({"partition": "gpu", "ngpus": "2", "gpu_type": "other"}) == {
        "ngpus": "ngpus: at most 1 other GPUs on gpu"
    }
    # the same count of any type is fine: the node has 3
    assert parsed({"partition": "gpu", "ngpus": "2"}).gpu_type == ""


def test_an_unknown_type_is_refused_listing_the_types():
    assert refusal({"partition": "gpu", "ngpus": "1", "gpu_type": "a100"}) == {
        "gpu_type": "gpu_type: gpu has no GPU type 'a100'; one of: fake, other "
        "(or empty for any type)"
    }


@pytest.mark.parametrize("partition", ["single", "cpu"])
def test_a_type_on_a_partition_without_a_type_choice_is_refused(partition):
    errors = refusal({"partition": partition, "gpu_type": "fake"})
    assert errors["gpu_type"] == (
        f"gpu_type: {partition} offers no choice of GPU type; leave it empty"
    )


@pytest.mark.parametrize("bad", ["fake:1", "fake\n#SBATCH --uid=0", "fake,other", ["a", "b"]])
def test_a_malformed_type_is_refused_by_name(bad):
    assert "gpu_type" in refusal({"partition": "gpu", "ngpus": "1", "gpu_type": bad})


def test_without_any_type_the_first_type_is_the_default():
    options = parsed({"partition": "strict", "ngpus": "1"})
    assert options.gpu_type == "fake"
    assert parsed(options.to_saved()) == options


def test_the_gres_line_asks_for_the_type_or_any_type():
    settings = ScriptSettings(home_dir="/home/alice")

    def gres(raw: dict) -> list[str]:
        options = parsed(raw)
        args = job_sbatch_arguments(options, LIMITS[options.partition], settings)
        return [a for a in args if a.startswith("--gres")]

    assert gres({"partition": "gpu", "ngpus": "1", "gpu_type": "other"}) == ["--gres=gpu:other:1"]
    assert gres({"partition": "gpu", "ngpus": "2"}) == ["--gres=gpu:2"]
    assert gres({"partition": "gpu", "ngpus": "0", "gpu_type": "other"}) == []
    assert gres({"partition": "single", "ngpus": "2"}) == ["--gres=gpu:fake:2"]
    assert gres({"partition": "strict", "ngpus": "1"}) == ["--gres=gpu:fake:1"]


def test_query_form_and_api_ways_in_read_the_type_alike():
    wanted = {"partition": "gpu", "ngpus": "1", "gpu_type": "other"}
    by_api = parsed(wanted)
    by_query = parsed(normalise_query({f"opt-{k}": [v.encode()] for k, v in wanted.items()}))
    by_form = parsed(flatten_form({k: [v.encode()] for k, v in wanted.items()}))
    assert by_api == by_query == by_form
    assert by_api.gpu_type == "other"


# -- the availability table -------------------------------------------------------------------


def test_the_table_shows_free_gpus_per_type_from_the_one_snapshot():
    shown = [limits(MULTI_BUSY, gpu={})["gpu"]]
    now = datetime.now(timezone.utc)
    busy = ClusterSnapshot(partitions=MULTI_BUSY, reservations=(), taken_at=now)
    idle = ClusterSnapshot(partitions=MULTI_IDLE, reservations=(), taken_at=now)
    assert availability_view(shown, busy, "gpu", 0, now).rows[0].gpus == "fake 1 / 2, other 0 / 1"
    assert availability_view(shown, idle, "gpu", 0, now).rows[0].gpus == "fake 2 / 2, other 1 / 1"


def test_the_table_keeps_one_figure_without_a_type_choice():
    shown = [limits(captured("single_busy"), gpu={})["gpu"]]
    now = datetime.now(timezone.utc)
    snap = ClusterSnapshot(partitions=captured("single_busy"), reservations=(), taken_at=now)
    assert availability_view(shown, snap, "gpu", 0, now).rows[0].gpus == "1 / 2"


# -- the form ---------------------------------------------------------------------------------

FORM_PARTITIONS = {
    "gpu": {
        **ENVS,
        "description": "GPU nodes",
        "gpu_types": {
            "fake": {"description": "Fake " + PAYLOAD, "max_ngpus": 2},
            "other": {"max_ngpus": 1},
        },
    },
    "strict": {
        **ENVS,
        "gpu_types": {"fake": {}, "other": {}},
        "gpu_any_type": False,
        "max_ngpus": 2,
    },
    "single": {**ENVS, "gpu": "gpu:fake:{}", "max_ngpus": 2},
}


def make_spawner(partitions=FORM_PARTITIONS, snap=None) -> MOSlurmSpawner:
    spawner = MOSlurmSpawner(
        partitions=partitions, user=types.SimpleNamespace(name="alice", spawners={})
    )
    spawner.orm_spawner = types.SimpleNamespace(name="", user_options={}, server=None)
    snap = snap or ClusterSnapshot(
        partitions=MULTI_IDLE, reservations=(), taken_at=datetime.now(timezone.utc)
    )

    async def fixed_snapshot():
        return snap

    spawner.cluster_snapshot = fixed_snapshot
    return spawner


def fragment(name: str, **query) -> BeautifulSoup:
    args = {k: [v.encode()] for k, v in query.items()}
    html = asyncio.run(make_spawner().render_form_fragment(name, "", args))
    return BeautifulSoup(html, "html.parser")


def type_select(soup: BeautifulSoup):
    return soup.select_one("select[name=gpu_type]")


def test_the_type_choice_offers_any_type_then_each_type_with_its_limit():
    soup = fragment("partition", moss_tab="advanced", partition="gpu")
    select = type_select(soup)
    assert [o["value"] for o in select.select("option")] == ["", "fake", "other"]
    labels = [o.text for o in select.select("option")]
    assert labels == ["Any type", f"fake — Fake {PAYLOAD} (up to 2)", "other (up to 1)"]
    assert PAYLOAD not in str(select)  # escaped
    # a change re-renders the partition's controls, whose count follows the type
    assert select["hx-get"].endswith("/moss/form/partition/alice/")
    assert select["hx-target"] == "#moss-partition-controls"
    assert soup.select_one("input[name=ngpus]")["max"] == "3"


def test_the_counts_maximum_follows_the_chosen_type_on_both_tabs():
    advanced = fragment("partition", moss_tab="advanced", partition="gpu", gpu_type="other")
    assert advanced.select_one("input[name=ngpus]")["max"] == "1"
    assert advanced.select_one("select[name=gpu_type] option[selected]")["value"] == "other"
    simple = fragment("partition", moss_tab="simple", partition="gpu", gpu_type="other")
    assert [o["value"] for o in simple.select("select[name=ngpus] option")] == ["0", "1"]
    simple = fragment("partition", moss_tab="simple", partition="gpu", gpu_type="fake")
    assert [o["value"] for o in simple.select("select[name=ngpus] option")] == ["0", "1", "2"]


def test_a_count_the_new_type_cannot_take_is_reset():
    soup = fragment("partition", moss_tab="advanced", partition="gpu", gpu_type="other", ngpus="2")
    assert soup.select_one("input[name=ngpus]")["value"] == "0"


def test_without_any_type_the_first_type_is_chosen_and_any_is_not_offered():
    soup = fragment("partition", moss_tab="advanced", partition="strict")
    assert [o["value"] for o in type_select(soup).select("option")] == ["fake", "other"]
    assert type_select(soup).select_one("option[selected]")["value"] == "fake"
    assert soup.select_one("input[name=ngpus]")["max"] == "2"


def test_no_type_choice_where_the_partition_has_none():
    soup = fragment("partition", moss_tab="advanced", partition="single")
    assert type_select(soup) is None
    assert soup.select_one("input[name=ngpus]")["max"] == "2"


def test_the_table_on_the_page_shows_free_gpus_per_type():
    soup = fragment("availability", moss_tab="advanced", partition="gpu")
    row = next(tr for tr in soup.select("tbody tr") if tr.th.text == "gpu")
    assert "fake 2 / 2, other 1 / 1" in row.text
