"""The Slurm parsers, on real output captured from the local cluster and on hand-made variants.

Each fixture file is described in tests/fixtures/slurm/README.md (real or hand-made, and the
exact command). Times in Slurm output are the cluster's local time, so expected times are
built with the same rule (:func:`local`).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyterhub_moss.slurm.job_status import parse_squeue, parse_test_only, squeue_args
from jupyterhub_moss.slurm.models import JOB_GONE, JobStatus, PartitionInfo, StartEstimate
from jupyterhub_moss.slurm.nodes import (
    first_hostname,
    node_state_draining,
    node_state_usable,
    parse_gres,
)
from jupyterhub_moss.slurm.partitions import SINFO_ARGS, SINFO_FIELDS, SINFO_FORMAT, parse_sinfo
from jupyterhub_moss.slurm.reservations import parse_reservations, usable_reservations
from jupyterhub_moss.slurm.scontrol import parse_scontrol_fields
from jupyterhub_moss.slurm.times import format_slurm_duration, parse_slurm_duration

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent.parent / "fixtures" / "slurm"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


# ---------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("infinite", None),
        ("UNLIMITED", None),
        ("Unlimited", None),
        ("1-00:00:00", 86400),
        ("2-12:30:15", 2 * 86400 + 12 * 3600 + 30 * 60 + 15),
        ("1-12:30", 86400 + 12 * 3600 + 30 * 60),  # D-HH:MM
        ("3-4", 3 * 86400 + 4 * 3600),  # D-HH
        ("12:00:00", 43200),
        ("1:00:00", 3600),
        ("30:00", 1800),  # MM:SS
        ("05:30", 330),  # MM:SS, not hours and minutes
        ("90", 5400),  # M: minutes
        ("0", 0),
        (" 15 ", 900),
    ],
)
def test_parse_slurm_duration(text, seconds):
    assert parse_slurm_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "abc", "1:2:3:4", "-1", "1-", "1-2:3:4:5", "1.5", "1h", "n/a", "\uff11"]
)
def test_parse_slurm_duration_rejects_garbage(text):
    with pytest.raises(ValueError):
        parse_slurm_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "00:00:00"),
        (59, "00:00:59"),
        (3600, "01:00:00"),
        (43200, "12:00:00"),
        (86400, "1-00:00:00"),
        (90061, "1-01:01:01"),
    ],
)
def test_format_slurm_duration(seconds, text):
    assert format_slurm_duration(seconds) == text


@given(st.integers(min_value=0, max_value=400 * 86400))
def test_formatted_durations_read_back(seconds):
    assert parse_slurm_duration(format_slurm_duration(seconds)) == seconds


def test_format_slurm_duration_rejects_negative():
    with pytest.raises(ValueError):
        format_slurm_duration(-1)


# ---------------------------------------------------------------------------------------------
# GRES


@pytest.mark.parametrize(
    ("text", "gpus"),
    [
        ("gpu:fake:2", {"fake": 2}),  # real, from this cluster
        ("gpu:fake:0(IDX:N/A)", {"fake": 0}),  # real GresUsed
        ("gpu:fake:1(IDX:0)", {"fake": 1}),  # real GresUsed
        ("gpu:0", {"": 0}),  # real GresUsed of a node without GPUs
        ("(null)", {}),  # real Gres of a node without any
        ("", {}),
        ("gpu:2", {"": 2}),
        ("gpu", {"": 1}),
        ("gpu:a100", {"a100": 1}),
        ("gpu:(null):0(IDX:N/A)", {"": 0}),
        ("gpu:a100:4(S:0-1)", {"a100": 4}),
        ("gpu:a100:4(S:0-1),gpu:v100:2(S:1)", {"a100": 4, "v100": 2}),
        ("gpu:a100:3(IDX:0,2-3),gpu:v100:0(IDX:N/A)", {"a100": 3, "v100": 0}),
        ("gpu:a100_1g.5gb:7", {"a100_1g.5gb": 7}),
        ("gpu:a100_1g.5gb:7(S:0),gpu:a100_3g.20gb:2(S:1)", {"a100_1g.5gb": 7, "a100_3g.20gb": 2}),
        ("shard:4", {}),
        ("mps:100,gpu:tesla:2,shard:8", {"tesla": 2}),
        ("gpu:tesla:1,gpu:tesla:1", {"tesla": 2}),
        ("gpu:tesla:x", {}),  # malformed: skipped, not a crash
        ("license:matlab:3", {}),
    ],
)
def test_parse_gres(text, gpus):
    assert parse_gres(text) == gpus


# ---------------------------------------------------------------------------------------------
# sinfo


def test_sinfo_arguments_match_the_parser():
    assert SINFO_ARGS[-1] == SINFO_FORMAT
    assert "-N" in SINFO_ARGS and "--noconvert" in SINFO_ARGS
    assert SINFO_FORMAT.count("|") == len(SINFO_FIELDS) - 1
    assert "GresUsed:0|" in SINFO_FORMAT


# name: (state, default, nodes idle/total, cpus idle/total, cpus/node, memory/node, time limit,
#        gpus per node, gpus total, gpus used)
SINFO_EXPECTED = {
    "sinfo_single_idle.txt": {
        "cpu": ("up", True, 1, 1, 8, 8, 8, 8000, 86400, {"fake": 2}, 2, 0),
        "debug": ("up", False, 1, 1, 8, 8, 8, 8000, 3600, {"fake": 2}, 2, 0),
        "gpu": ("up", False, 1, 1, 8, 8, 8, 8000, 43200, {"fake": 2}, 2, 0),
    },
    "sinfo_single_busy.txt": {
        "cpu": ("up", True, 0, 1, 6, 8, 8, 8000, 86400, {"fake": 2}, 2, 1),
        "debug": ("up", False, 0, 1, 6, 8, 8, 8000, 3600, {"fake": 2}, 2, 1),
        "gpu": ("up", False, 0, 1, 6, 8, 8, 8000, 43200, {"fake": 2}, 2, 1),
    },
    "sinfo_multi_idle.txt": {
        "cpu": ("up", True, 2, 2, 16, 16, 8, 8000, 86400, {}, 0, 0),
        "debug": ("up", False, 2, 2, 16, 16, 8, 8000, 3600, {}, 0, 0),
        "gpu": ("up", False, 1, 1, 8, 8, 8, 8000, 43200, {"fake": 2}, 2, 0),
    },
    "sinfo_multi_busy.txt": {
        # the running job holds 2 CPUs and 1 GPU on g1; c1 and c2 stay idle
        "cpu": ("up", True, 2, 2, 16, 16, 8, 8000, 86400, {}, 0, 0),
        "debug": ("up", False, 2, 2, 16, 16, 8, 8000, 3600, {}, 0, 0),
        "gpu": ("up", False, 0, 1, 6, 8, 8, 8000, 43200, {"fake": 2}, 2, 1),
    },
    "sinfo_handmade_mixed_groups.txt": {
        # four nodes, one of them twice as big: all four count, the big one sets the per-node
        "batch": ("up", True, 2, 4, 112, 160, 64, 512000, 2 * 86400, {}, 0, 0),
        # MaxCPUsPerNode=24 caps the 48-CPU node
        "gpu": ("up", False, 1, 2, 72, 80, 24, 384000, 86400, {"a100": 8, "v100": 4}, 12, 2),
        "interactive": ("up", False, 1, 2, 56, 64, 32, 256000, 8 * 3600, {"v100": 4}, 4, 2),
    },
    "sinfo_handmade_gpu_types.txt": {
        "gpu": ("up", True, 1, 2, 108, 128, 64, 1024000, 3 * 86400, {"a100": 4, "v100": 2}, 10, 3),
        "mig": (
            "up",
            False,
            0,
            1,
            60,
            64,
            64,
            512000,
            43200,
            {"a100_1g.5gb": 7, "a100_3g.20gb": 2},
            9,
            1,
        ),
        "plain": ("up", False, 2, 2, 32, 32, 16, 64000, None, {"": 2}, 4, 1),
    },
    "sinfo_handmade_down_drained.txt": {
        "ok": ("up", True, 1, 3, 16, 48, 16, 64000, 86400, {}, 0, 0),
        "closed": ("down", False, 1, 1, 16, 16, 16, 64000, 86400, {}, 0, 0),
        "dead": ("down", False, 0, 2, 0, 32, 16, 64000, 1800, {}, 0, 0),
        "drained": ("drain", False, 0, 2, 0, 32, 16, 64000, 14400, {}, 0, 0),
        "paused": ("drain", False, 1, 1, 16, 16, 16, 64000, 86400, {}, 0, 0),
        "retired": ("inactive", False, 1, 1, 16, 16, 16, 64000, 86400, {}, 0, 0),
    },
    "sinfo_handmade_grouped_and_broken.txt": {
        # grouped lines (no -N) fold too; "64+" is read as 64; unreadable lines are skipped
        "cpu": ("up", True, 5, 6, 248, 256, 64, 256000, 86400, {}, 0, 0),
        "gpu": ("up", False, 3, 3, 96, 96, 32, 192000, 43200, {"l40s": 4}, 12, 2),
    },
}


def _figures(p: PartitionInfo) -> tuple:
    return (
        p.state,
        p.is_default,
        p.nodes_idle,
        p.nodes_total,
        p.cpus_idle,
        p.cpus_total,
        p.cpus_per_node,
        p.memory_per_node_mb,
        p.max_runtime,
        p.gpus_per_node,
        p.gpus_total,
        p.gpus_used,
    )


@pytest.mark.parametrize("name", sorted(SINFO_EXPECTED))
def test_parse_sinfo(name):
    partitions = parse_sinfo(fixture(name))
    expected = SINFO_EXPECTED[name]
    assert sorted(partitions) == sorted(expected)
    for partition_name, figures in expected.items():
        assert partitions[partition_name].name == partition_name
        assert _figures(partitions[partition_name]) == figures, partition_name


@pytest.mark.parametrize("name", sorted(SINFO_EXPECTED))
def test_default_partition_comes_first(name):
    partitions = list(parse_sinfo(fixture(name)).values())
    assert partitions[0].is_default
    assert [p.name for p in partitions[1:]] == sorted(p.name for p in partitions[1:])


def test_largest_node_of_several_gpu_types():
    gpu = parse_sinfo(fixture("sinfo_handmade_gpu_types.txt"))["gpu"]
    # hx01 carries 4 a100 and 2 v100: an untyped request can get 6 GPUs there
    assert gpu.max_gpus_per_node == 6
    mig = parse_sinfo(fixture("sinfo_handmade_gpu_types.txt"))["mig"]
    assert mig.max_gpus_per_node == 9


def test_partition_states_are_reported():
    partitions = parse_sinfo(fixture("sinfo_handmade_down_drained.txt"))
    assert partitions["ok"].state == "up"
    assert partitions["ok"].node_states == ("down*", "drained", "idle")
    assert partitions["drained"].state != "up"
    assert partitions["dead"].state != "up"


def test_parse_sinfo_of_nothing():
    assert parse_sinfo("") == {}
    assert parse_sinfo("garbage\nmore garbage\n") == {}


@pytest.mark.parametrize(
    ("state", "usable"),
    [
        ("idle", True),
        ("mixed", True),
        ("allocated", True),
        ("completing", True),
        ("idle~", True),  # powered down, will be woken
        ("planned", True),
        ("down*", False),
        ("down", False),
        ("idle*", False),  # not responding
        ("drained", False),
        ("draining", False),
        ("fail", False),
        ("failing", False),
        ("future", False),
        ("unknown", False),
        ("", False),
        # more spellings sinfo prints: long (StateLong, %T) and short (%t), with flag suffixes
        ("IDLE", True),
        ("mix", True),
        ("mixed-", True),  # planned by backfill
        ("mix-", True),
        ("alloc", True),
        ("allocated+", True),
        ("comp", True),
        ("idle#", True),  # powering up
        ("idle%", True),  # powering down
        ("idle!", True),  # pending power down
        ("idle@", True),  # reboot pending
        ("reserved", True),
        ("resv", True),
        ("plnd", True),
        ("drain", False),  # short for drained
        ("drng", False),  # short for draining
        ("drained*", False),
        ("drained~", False),
        ("draining@", False),
        ("down~", False),
        ("mixed*", False),
        ("failg", False),
        ("futr", False),
        ("inval", False),
        ("maint", False),
        ("unk", False),
        ("not_responding", False),
    ],
)
def test_node_state_usable(state, usable):
    assert node_state_usable(state) is usable


@pytest.mark.parametrize(
    ("state", "draining"),
    [
        ("drained", True),
        ("draining", True),
        ("drain", True),
        ("drng", True),
        ("drained*", True),
        ("draining@", True),
        ("down*", False),
        ("idle", False),
        ("maint", False),
        ("", False),
    ],
)
def test_node_state_draining(state, draining):
    assert node_state_draining(state) is draining


# ---------------------------------------------------------------------------------------------
# Reservations


def test_scontrol_fields_allow_spaces_in_values():
    fields = parse_scontrol_fields("ReservationName=a Comment=for the course Users=alice")
    assert fields == {"ReservationName": "a", "Comment": "for the course", "Users": "alice"}


def test_no_reservations():
    assert parse_reservations(fixture("reservations_none.txt")) == []
    assert parse_reservations("") == []


@pytest.mark.parametrize("name", ["reservations_single.txt", "reservations_multi.txt"])
def test_real_reservations(name):
    reservations = {r.name: r for r in parse_reservations(fixture(name))}
    assert sorted(reservations) == [
        "moss_fixture_maint",
        "moss_fixture_notbob",
        "moss_fixture_users",
    ]
    users = reservations["moss_fixture_users"]
    assert users.users == ("alice", "bob")
    assert users.accounts == ()
    assert users.state == "INACTIVE"
    assert users.partition is None
    assert users.flags == ("SPEC_NODES",)
    assert users.start is not None and users.start.tzinfo is not None
    assert users.end is not None and (users.end - users.start).total_seconds() == 3600
    assert reservations["moss_fixture_notbob"].users == ("-bob",)
    assert "MAINT" in reservations["moss_fixture_maint"].flags


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", ["moss_fixture_users", "moss_fixture_notbob"]),
        ("bob", ["moss_fixture_users"]),
        ("carol", ["moss_fixture_notbob"]),
        ("root", ["moss_fixture_notbob"]),  # root's only other reservation is MAINT
    ],
)
@pytest.mark.parametrize("name", ["reservations_single.txt", "reservations_multi.txt"])
def test_usable_real_reservations(name, username, expected):
    reservations = parse_reservations(fixture(name))
    now = datetime(2026, 11, 26, tzinfo=timezone.utc)
    assert [r.name for r in usable_reservations(reservations, username, now)] == expected


def test_handmade_reservations_fields():
    reservations = {r.name: r for r in parse_reservations(fixture("reservations_handmade.txt"))}
    assert len(reservations) == 8  # the garbage line is skipped
    course = reservations["course"]
    assert course.state == "ACTIVE"
    assert course.partition == "batch"
    assert course.nodes == "n[01-04]"
    assert course.start == local("2026-11-26T08:00:00")
    assert course.end == local("2026-11-26T18:00:00")
    assert course.flags == ("IGNORE_JOBS", "SPEC_NODES")
    assert reservations["lab_gpu"].accounts == ("physics", "chem")
    assert reservations["lab_gpu"].users == ()
    assert reservations["forever"].end is None


NOW = local("2026-11-26T10:30:00")


@pytest.mark.parametrize(
    ("username", "accounts", "expected"),
    [
        # accounts unknown: account-only reservations are shown (Slurm judges at submission)
        ("alice", None, ["forever", "no_guests", "course", "lab_gpu", "not_chem"]),
        ("bob", None, ["lab_gpu", "not_chem"]),  # excluded from no_guests, not in course
        ("carol", None, ["no_guests", "course", "lab_gpu", "not_chem"]),
        ("guest", None, ["lab_gpu", "not_chem"]),
        ("alice", ["chem"], ["forever", "no_guests", "course", "lab_gpu"]),
        ("dave", ["bio"], ["no_guests", "not_chem"]),
        ("dave", ["physics", "bio"], ["no_guests", "lab_gpu", "not_chem"]),
        ("dave", [], ["no_guests"]),
    ],
)
def test_usable_handmade_reservations(username, accounts, expected):
    reservations = parse_reservations(fixture("reservations_handmade.txt"))
    usable = usable_reservations(reservations, username, NOW, accounts=accounts)
    names = [r.name for r in usable]
    assert names == expected
    # never MAINT, never ended
    assert "upgrade" not in names and "maint_now" not in names and "yesterday" not in names


# ---------------------------------------------------------------------------------------------
# sbatch --test-only


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "test_only_single_now.txt",
            StartEstimate(local("2026-11-26T10:46:43"), 4, "localhost", "cpu"),
        ),
        (
            "test_only_single_later.txt",
            StartEstimate(local("2026-11-26T11:01:42"), 1, "localhost", "gpu"),
        ),
        (
            "test_only_multi_now.txt",
            StartEstimate(local("2026-11-26T10:55:29"), 4, "c1", "cpu"),
        ),
        (
            "test_only_multi_later.txt",
            StartEstimate(local("2026-11-26T11:10:23"), 1, "g1", "gpu"),
        ),
        (
            "test_only_handmade_multinode.txt",
            StartEstimate(local("2026-11-27T03:15:00"), 64, "c[01-02]", "batch"),
        ),
        (
            "test_only_handmade_no_partition.txt",
            StartEstimate(local("2026-11-26T10:50:00"), 1, "n01", None),
        ),
    ],
)
def test_parse_test_only(name, expected):
    assert parse_test_only(fixture(name)) == expected


@pytest.mark.parametrize("name", ["test_only_single_refused.txt", "test_only_handmade_refused.txt"])
def test_parse_test_only_refused(name):
    with pytest.raises(ValueError):
        parse_test_only(fixture(name))


def test_starts_now():
    estimate = parse_test_only(fixture("test_only_single_now.txt"))
    assert estimate.starts_now(local("2026-11-26T10:46:40"))
    assert not estimate.starts_now(local("2026-11-26T10:40:00"))


# ---------------------------------------------------------------------------------------------
# squeue


def test_squeue_arguments():
    assert squeue_args(["3", "1", "2"]) == [
        "-h",
        "-t",
        "all",
        "-j",
        "3,1,2",
        "-o",
        "%i|%T|%B|%N|%S|%e|%r",
    ]


def test_parse_real_squeue():
    jobs = parse_squeue(fixture("squeue_single.txt"))
    started = local("2026-12-01T03:15:45")
    assert jobs == {
        "5762": JobStatus(
            "5762", "RUNNING", "None", "localhost", None,
            started=started, ends=local("2026-12-01T03:25:45"),
        ),
        "5763": JobStatus("5763", "PENDING", "JobHeldUser", "", None),
        "5764": JobStatus("5764", "COMPLETED", "None", "localhost", None, started=started),
        "5765": JobStatus("5765", "FAILED", "NonZeroExitCode", "localhost", None, started=started),
        "5766": JobStatus("5766", "PENDING", "Resources", "", local("2026-12-01T03:25:45")),
        # its limit lifted by root: squeue's end time reads NONE
        "5767": JobStatus(
            "5767", "RUNNING", "None", "localhost", None, started=local("2026-12-01T03:15:53")
        ),
    }  # fmt: skip
    assert jobs["5762"].running and not jobs["5762"].finished
    assert jobs["5767"].running
    assert jobs["5763"].waiting
    assert jobs["5764"].finished and jobs["5765"].finished


def test_parse_real_squeue_multi():
    jobs = parse_squeue(fixture("squeue_multi.txt"))
    started = local("2026-12-01T03:17:46")
    assert jobs == {
        "5774": JobStatus(
            "5774", "RUNNING", "None", "g1", None,
            started=started, ends=local("2026-12-01T03:27:46"),
        ),
        "5775": JobStatus("5775", "PENDING", "JobHeldUser", "", None),
        "5776": JobStatus("5776", "COMPLETED", "None", "c1", None, started=started),
        "5777": JobStatus("5777", "FAILED", "NonZeroExitCode", "c1", None, started=started),
        "5778": JobStatus("5778", "PENDING", "Resources", "", local("2026-12-01T03:27:46")),
        # its limit lifted by root: squeue's end time reads NONE
        "5779": JobStatus(
            "5779", "RUNNING", "None", "c1", None, started=local("2026-12-01T03:17:50")
        ),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("job_id", "state", "reason", "node", "start", "kind"),
    [
        ("101", "PENDING", "Priority", "", None, "waiting"),
        ("102", "PENDING", "Resources", "", "2026-11-26T12:30:00", "waiting"),
        ("103", "RUNNING", "None", "c07", None, "running"),
        ("104_3", "RUNNING", "None", "g01", None, "running"),
        ("105", "CONFIGURING", "None", "c09", None, "waiting"),
        ("106", "COMPLETING", "None", "c01", None, "running"),
        ("107", "TIMEOUT", "TimeLimit", "c02", None, "finished"),
        ("108", "OUT_OF_MEMORY", "OutOfMemory", "c03", None, "finished"),
        ("109", "PENDING", "ReqNodeNotAvail, UnavailableNodes:c[10-11]", "", None, "waiting"),
        ("110", "CANCELLED", "None", "", None, "finished"),
        ("111", "RUNNING", "None", "c04", None, "running"),
        ("112", "SUSPENDED", "None", "c05", None, "running"),
        ("113", "RUNNING", "None", "c06", None, "running"),
    ],
)
def test_parse_handmade_squeue(job_id, state, reason, node, start, kind):
    jobs = parse_squeue(fixture("squeue_handmade.txt"))
    # skipped: the malformed line, and a line of the old format (no end time)
    assert len(jobs) == 13 and "114" not in jobs
    job = jobs[job_id]
    assert (job.state, job.reason, job.node) == (state, reason, node)
    assert job.expected_start == (local(start) if start else None)
    assert getattr(job, kind)


# (fixture, job id, started, ends): when a job began running and when Slurm will end it.
# Real: the running jobs of capture.py have 10 minutes (``-t 10``) and the lifecycle's 5
# (``--time=0:05:00``); the NONE job had its limit lifted by root; an ended job's %e is when
# it ended, not a limit, so no ``ends``.
JOB_TIMES = [
    # real, single layout
    ("squeue_single.txt", "5762", "2026-12-01T03:15:45", "2026-12-01T03:25:45"),  # running
    ("squeue_single.txt", "5767", "2026-12-01T03:15:53", None),  # running, %e NONE
    ("squeue_single.txt", "5763", None, None),  # held
    ("squeue_single.txt", "5766", None, None),  # pending with an estimate (and an end)
    ("squeue_single.txt", "5764", "2026-12-01T03:15:45", None),  # completed
    ("squeue_single.txt", "5765", "2026-12-01T03:15:45", None),  # failed
    # real, multi layout
    ("squeue_multi.txt", "5774", "2026-12-01T03:17:46", "2026-12-01T03:27:46"),  # running
    ("squeue_multi.txt", "5779", "2026-12-01T03:17:50", None),  # running, %e NONE
    ("squeue_multi.txt", "5775", None, None),  # held
    ("squeue_multi.txt", "5778", None, None),  # pending with an estimate (and an end)
    ("squeue_multi.txt", "5776", "2026-12-01T03:17:46", None),  # completed
    ("squeue_multi.txt", "5777", "2026-12-01T03:17:46", None),  # failed
    # real, the lifecycle
    ("lifecycle_squeue_pending.out", "5769", None, None),
    ("lifecycle_squeue_running.out", "5769", "2026-12-01T03:15:58", "2026-12-01T03:20:58"),
    ("lifecycle_squeue_failed.out", "5769", "2026-12-01T03:15:58", None),
    ("lifecycle_squeue_server_running.out", "5770", "2026-12-01T03:16:05", "2026-12-01T03:21:05"),
    ("lifecycle_squeue_cancelled.out", "5770", "2026-12-01T03:16:05", None),
    ("lifecycle_squeue_completed.out", "5771", "2026-12-01T03:16:06", None),
    # hand-made
    ("squeue_handmade.txt", "101", None, None),  # pending, N/A
    ("squeue_handmade.txt", "102", None, None),  # pending with an estimated start and end
    ("squeue_handmade.txt", "103", "2026-11-26T10:00:00", "2026-11-26T14:00:00"),  # multi-node
    ("squeue_handmade.txt", "104_3", "2026-11-26T09:00:00", None),  # array task, NONE
    ("squeue_handmade.txt", "105", None, None),  # CONFIGURING: still waiting
    ("squeue_handmade.txt", "106", "2026-11-26T08:00:00", "2026-11-26T10:41:17"),  # COMPLETING
    ("squeue_handmade.txt", "107", "2026-11-26T07:00:00", None),  # TIMEOUT
    ("squeue_handmade.txt", "108", "2026-11-26T07:00:00", None),  # OUT_OF_MEMORY
    ("squeue_handmade.txt", "110", None, None),  # cancelled while pending: never ran
    ("squeue_handmade.txt", "111", "2026-11-26T10:30:00", None),  # UNLIMITED
    ("squeue_handmade.txt", "112", "2026-11-26T10:20:00", None),  # SUSPENDED, Unknown
    ("squeue_handmade.txt", "113", None, None),  # garbage in both
]


@pytest.mark.parametrize(("name", "job_id", "started", "ends"), JOB_TIMES)
def test_started_and_ends(name, job_id, started, ends):
    job = parse_squeue(fixture(name))[job_id]
    assert job.started == (local(started) if started else None)
    assert job.ends == (local(ends) if ends else None)
    if job.waiting:
        assert job.started is None and job.ends is None
    if job.finished:
        assert job.ends is None


@pytest.mark.parametrize(
    ("name", "job_id", "limit_minutes"),
    [
        ("squeue_single.txt", "5762", 10),
        ("squeue_multi.txt", "5774", 10),
        ("lifecycle_squeue_running.out", "5769", 5),
        ("lifecycle_squeue_server_running.out", "5770", 5),
    ],
)
def test_a_running_jobs_end_is_its_start_plus_its_time_limit(name, job_id, limit_minutes):
    job = parse_squeue(fixture(name))[job_id]
    assert job.state == "RUNNING"
    assert job.ends - job.started == timedelta(minutes=limit_minutes)


def test_unreadable_times_are_logged_and_the_job_kept(caplog):
    with caplog.at_level(logging.WARNING, logger="jupyterhub_moss.slurm.job_status"):
        jobs = parse_squeue(fixture("squeue_handmade.txt"))
    job = jobs["113"]
    assert (job.state, job.node, job.started, job.ends) == ("RUNNING", "c06", None, None)
    unreadable = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert unreadable == [
        "unreadable squeue start time 'yesterday' of job 113",
        "unreadable squeue end time '2026-11-26T25:00:00' of job 113",
    ]  # NONE, UNLIMITED, Unknown and N/A are Slurm's words for "no time", not unreadable


@pytest.fixture
def hub_time_zone(monkeypatch):
    """Run a test with the hub (and so squeue, which inherits TZ) in another time zone."""

    def use(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


def test_times_are_read_in_the_hubs_time_zone(hub_time_zone):
    hub_time_zone("Europe/Zurich")  # UTC+1 in November
    job = parse_squeue("7|RUNNING|c1|c1|2026-11-26T10:00:00|2026-11-26T10:30:00|None\n")["7"]
    assert job.started == datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    assert job.ends == datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("zone", "start", "end"),
    [
        # year 1 moved west of UTC+0 leaves datetime's range (ValueError) ...
        ("Pacific/Kiritimati", "0001-01-01T00:00:00", "0001-01-01T01:00:00"),
        # ... and year 9999 moved east of it too (OverflowError)
        ("America/Los_Angeles", "9999-12-31T23:00:00", "9999-12-31T23:59:59"),
    ],
)
def test_times_out_of_range_in_utc_are_none(hub_time_zone, zone, start, end):
    hub_time_zone(zone)
    job = parse_squeue(f"8|RUNNING|c1|c1|{start}|{end}|None\n")["8"]
    assert (job.state, job.started, job.ends) == ("RUNNING", None, None)


def test_gone_is_finished():
    assert JobStatus("1", JOB_GONE, "not known to Slurm", "", None).finished


@pytest.mark.parametrize(
    ("hostlist", "first"),
    [
        ("", ""),
        ("n/a", ""),
        ("c1", "c1"),
        ("c[07-08]", "c07"),
        ("c[1,3-4],g1", "c1"),
        ("g1,c2", "g1"),
        ("rack1-n[003-010]", "rack1-n003"),
    ],
)
def test_first_hostname(hostlist, first):
    assert first_hostname(hostlist) == first


def test_scontrol_keys_may_hold_colons_and_slashes():
    line = (
        "JobId=12 Partition=cpu AllocNode:Sid=localhost:123 CPUs/Task=2 Comment=a b c "
        "ReqB:S:C:T=0:0:*:* TRES=cpu=2,mem=1G"
    )
    fields = parse_scontrol_fields(line)
    assert fields["Partition"] == "cpu"
    assert fields["AllocNode:Sid"] == "localhost:123"
    assert fields["CPUs/Task"] == "2"
    assert fields["Comment"] == "a b c"
    assert fields["TRES"] == "cpu=2,mem=1G"


def test_the_hub_tiers_stand_in_squeue_speaks_the_current_format():
    """The hub tier spawns without a cluster against a stand-in squeue: it must say "pending"
    in the format the poller asks for, or those spawns would fail as jobs Slurm forgot."""
    from support.fake_slurm import PENDING_SQUEUE_LINE

    job = parse_squeue(PENDING_SQUEUE_LINE + "\n")["4242"]
    assert (job.state, job.reason, job.started, job.ends) == ("PENDING", "Resources", None, None)
