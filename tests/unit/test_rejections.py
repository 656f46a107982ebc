"""The rejected-submission store keeps what a re-rendered form needs, within bounds.

Every value in it was typed by a user or written into a link, so no user can grow it without
limit: values, entries per user, and the total are all bounded.
"""

from __future__ import annotations

import pytest

from jupyterhub_moss import rejections
from jupyterhub_moss.rejections import RejectedSubmissions

FIELDS = ("partition", "nprocs", "options")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock) -> RejectedSubmissions:
    return RejectedSubmissions(clock)


def test_a_rejection_is_shown_once_for_its_server(store):
    store.remember("alice", "", {"nprocs": "0"}, {"nprocs": "CPUs: at least 1"}, FIELDS)
    server, rejection = store.take("alice", "")
    assert (server, rejection.values, rejection.errors) == (
        "",
        {"nprocs": "0"},
        {"nprocs": "CPUs: at least 1"},
    )
    assert store.take("alice", "") is None
    assert len(store) == 0 and store.total_chars == 0


def test_only_the_forms_fields_are_kept(store):
    store.remember("alice", "", {"nprocs": "1", "x" * 50: "y" * 50}, {}, FIELDS)
    assert store.take("alice", "")[1].values == {"nprocs": "1"}


def test_values_and_messages_are_cut_to_the_bound(store):
    huge = "a" * (rejections.MAX_TEXT_CHARS * 10)
    store.remember("alice", "", {"options": huge}, {"options": huge}, FIELDS)
    rejection = store.take("alice", "")[1]
    assert len(rejection.values["options"]) == rejections.MAX_TEXT_CHARS
    assert len(rejection.errors["options"]) == rejections.MAX_TEXT_CHARS


def test_the_number_of_messages_is_bounded(store):
    errors = {f"unknown{i}": "unknown option" for i in range(10_000)}
    store.remember("alice", "", {}, errors, FIELDS)
    assert len(store.take("alice", "")[1].errors) <= len(FIELDS) + 8


def test_a_user_has_a_bounded_number_waiting_and_the_newest_stay(store, clock):
    for i in range(rejections.MAX_PER_USER * 3):
        clock.now += 1
        store.remember("alice", f"s{i}", {"nprocs": str(i)}, {}, FIELDS)
    store.remember("bob", "", {"nprocs": "1"}, {}, FIELDS)
    assert len(store) == rejections.MAX_PER_USER + 1
    newest = rejections.MAX_PER_USER * 3 - 1
    assert store.take("alice", f"s{newest}")[1].values == {"nprocs": str(newest)}
    assert store.take("alice", "s0") is None
    assert store.take("bob", "") is not None


def test_all_users_together_stay_within_the_total(store, monkeypatch):
    monkeypatch.setattr(rejections, "MAX_TOTAL_CHARS", 100_000)
    value = "v" * rejections.MAX_TEXT_CHARS
    for i in range(200):
        store.remember(f"user{i}", "", {"options": value}, {"options": value}, FIELDS)
        assert store.total_chars <= 100_000
    assert store.take("user199", "") is not None  # the newest survives
    assert store.take("user0", "") is None  # the oldest went first


def test_expired_rejections_are_dropped(store, clock):
    store.remember("alice", "", {"nprocs": "0"}, {}, FIELDS)
    clock.now += rejections.TTL_SECONDS + 1
    assert store.take("alice", "") is None
    assert store.total_chars == 0


def test_the_default_server_takes_the_users_latest_named_rejection(store, clock):
    store.remember("alice", "a", {"nprocs": "1"}, {}, FIELDS)
    clock.now += 1
    store.remember("alice", "b", {"nprocs": "2"}, {}, FIELDS)
    server, rejection = store.take("alice", "")
    assert (server, rejection.values) == ("b", {"nprocs": "2"})


def test_remembering_again_replaces_the_servers_entry(store):
    store.remember("alice", "", {"nprocs": "1"}, {}, FIELDS)
    store.remember("alice", "", {"nprocs": "2"}, {}, FIELDS)
    assert len(store) == 1
    assert store.take("alice", "")[1].values == {"nprocs": "2"}
    assert store.total_chars == 0
