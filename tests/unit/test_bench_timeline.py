"""The benchmark's spawn timeline, read from a hub's log: JupyterHub's "took … to start" line
and our spawner's ``moss spawn timeline {json}`` line, in seconds since the spawn request.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import pytest

# The benchmarks are not an installed package: they are imported from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.timeline import (
    hub_ready_time,
    log_time,
    read_timeline,
    spawner_timeline,
)

pytestmark = pytest.mark.unit

USER = "mossbench"


def stamp(text: str) -> float:
    """The Unix time of a log prefix's local time, as the parser reads it."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def prefix(text: str, where: str = "base:1192") -> str:
    return f"[I {text} JupyterHub {where}]"


def timeline_line(when: str, **record: object) -> str:
    body = {"user": USER, "server": "", "job": "123", **record}
    return f"{prefix(when, 'spawner:88')} moss spawn timeline {json.dumps(body)}"


REQUESTED = stamp("2026-11-30 17:09:37.000")


def test_a_log_prefix_gives_its_time_to_the_millisecond():
    line = prefix("2026-11-30 17:09:39.823") + " anything"
    assert log_time(line) == pytest.approx(REQUESTED + 2.823)


def test_a_line_without_jupyterhubs_prefix_has_no_time():
    assert log_time("moss spawn timeline {}") is None


def test_the_hub_calls_it_ready_when_it_logs_the_start_time():
    lines = [
        prefix("2026-11-30 17:09:30.000") + f" User {USER} took 4.100 seconds to start",
        prefix("2026-11-30 17:09:39.823") + f" User {USER} took 2.823 seconds to start",
    ]
    assert hub_ready_time(lines, USER, REQUESTED) == pytest.approx(REQUESTED + 2.823)


@pytest.mark.parametrize(
    "line",
    [
        f"User {USER}:other took 2.000 seconds to start",  # a named server
        "User mossbench2 took 2.000 seconds to start",  # another user
        f"User {USER} took 2.000 seconds to stop",
    ],
)
def test_other_servers_and_users_do_not_count_as_ready(line):
    assert hub_ready_time([prefix("2026-11-30 17:09:39.000") + " " + line], USER, REQUESTED) is None


def test_the_last_timeline_after_the_request_wins():
    lines = [
        timeline_line("2026-11-30 17:09:30.000", start=REQUESTED - 7, submitted=REQUESTED - 6.9),
        timeline_line("2026-11-30 17:09:39.000", start=REQUESTED + 0.01, submitted=REQUESTED + 0.1),
        timeline_line("2026-11-30 17:09:45.000", start=REQUESTED + 0.02, submitted=REQUESTED + 0.2),
    ]
    found = spawner_timeline(lines, USER, REQUESTED)
    assert found == {"start": REQUESTED + 0.02, "submitted": REQUESTED + 0.2}


def test_timelines_of_other_users_named_servers_and_bad_json_are_skipped():
    lines = [
        timeline_line("2026-11-30 17:09:39.000", user="alice", submitted=REQUESTED + 1),
        timeline_line("2026-11-30 17:09:39.000", server="gpu", submitted=REQUESTED + 1),
        prefix("2026-11-30 17:09:39.000") + " moss spawn timeline {not json",
        prefix("2026-11-30 17:09:39.000") + " moss spawn timeline [1, 2]",
    ]
    assert spawner_timeline(lines, USER, REQUESTED) == {}


def test_a_timeline_is_in_seconds_from_the_request_and_missing_points_stay_missing():
    log = "\n".join(
        [
            timeline_line(
                "2026-11-30 17:09:39.400",
                start=REQUESTED + 0.05,
                submitted=REQUESTED + 0.2,
                running=REQUESTED + 0.6,
                listening=REQUESTED + 2.1,
                returned=REQUESTED + 2.4,
            ),
            prefix("2026-11-30 17:09:39.500") + f" User {USER} took 2.450 seconds to start",
        ]
    )
    timeline = read_timeline(log, USER, REQUESTED)
    assert timeline.points == pytest.approx(
        {
            "start": 0.05,
            "submitted": 0.2,
            "running": 0.6,
            "listening": 2.1,
            "returned": 2.4,
            "hub_ready": 2.5,
        }
    )
    assert timeline.get("port") is None
    assert timeline.gap("listening", "hub_ready") == pytest.approx(0.4)
    assert timeline.gap("port", "hub_ready") is None


def test_the_reference_logs_only_that_the_hub_calls_it_ready():
    log = prefix("2026-11-30 17:09:40.000") + f" User {USER} took 3.000 seconds to start"
    assert read_timeline(log, USER, REQUESTED).points == pytest.approx({"hub_ready": 3.0})
