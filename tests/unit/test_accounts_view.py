"""When the accounts view reads the accounting database: the read is injected, the rules are ours.

One background read per interval for every user who looked lately, a new user at once and alone,
concurrent first views sharing one read, nobody looking no read, failures kept stale and not
retried per view, and a cluster without slurmdbd detected from sacctmgr's own words.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jupyterhub_moss.slurm.accounting import parse_qos, parse_user_associations
from jupyterhub_moss.slurm.accounts_view import AccountingRead, AccountsView, read_accounting
from jupyterhub_moss.slurm.commands import SlurmCommandError

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"
QOS = parse_qos((FIXTURES / "accounting_qos.txt").read_text())
USERS = parse_user_associations((FIXTURES / "accounting_users_alice_bob.txt").read_text())


class Database:
    """An injected read that records which users each call asked about."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.fail: Exception | None = None
        self.delay = 0.0

    async def __call__(self, users) -> AccountingRead:
        self.calls.append(sorted(users))
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return AccountingRead(True, QOS, {u: USERS[u] for u in users if u in USERS})


def view(database: Database, interval: float = 0.3) -> AccountsView:
    return AccountsView(query=database, interval=interval, min_interval=0.01)


async def test_a_new_user_is_read_at_once_alone_and_then_served_from_the_view():
    database = Database()
    accounts = view(database)
    alice = await accounts.for_user("alice")
    assert database.calls == [["alice"]]
    assert alice.known and alice.associations.default_account == "physics"
    assert set(alice.qos) == {"normal", "short", "long", "gpu"}
    for _ in range(20):
        await accounts.for_user("alice")
    assert database.calls == [["alice"]]
    await accounts.close()


async def test_concurrent_first_views_share_one_read():
    database = Database()
    database.delay = 0.05
    accounts = view(database)
    answers = await asyncio.gather(*(accounts.for_user("alice") for _ in range(30)))
    assert database.calls == [["alice"]]
    assert all(answer.known for answer in answers)
    await accounts.close()


async def test_the_background_reads_every_watching_user_at_once_each_interval():
    database = Database()
    accounts = view(database, interval=0.2)
    await accounts.for_user("alice")
    await accounts.for_user("bob")
    await asyncio.sleep(0.5)  # two intervals: about two background reads, both users each
    background = database.calls[2:]
    assert background and all(call == ["alice", "bob"] for call in background)
    assert len(background) <= 3
    await accounts.close()


async def test_nobody_looking_means_no_read():
    database = Database()
    accounts = view(database, interval=0.05)
    await accounts.for_user("alice")
    await asyncio.sleep(0.6)  # idle after three intervals: the loop ends
    settled = len(database.calls)
    await asyncio.sleep(0.3)
    assert len(database.calls) == settled
    await accounts.close()


async def test_a_user_with_no_association_is_known_to_have_none():
    accounts = view(Database())
    carol = await accounts.for_user("carol")
    assert carol.known and carol.associations is None
    await accounts.close()


async def test_unsafe_names_are_never_asked_about():
    database = Database()
    accounts = view(database)
    answer = await accounts.for_user("a,b")
    assert database.calls == [] and not answer.known
    await accounts.close()


async def test_a_failure_keeps_what_was_read_marks_it_stale_and_is_not_retried_per_view():
    database = Database()
    accounts = view(database, interval=0.2)
    await accounts.for_user("alice")
    database.fail = SlurmCommandError(
        ["sacctmgr"], 1, "sacctmgr: error: Problem talking to the database"
    )
    await asyncio.sleep(0.3)  # a background read fails
    alice = await accounts.for_user("alice")
    assert alice.error and alice.associations.default_account == "physics"
    calls = len(database.calls)
    for _ in range(10):  # bob is new, and slurmdbd fails: one try, not ten
        bob = await accounts.for_user("bob")
    assert not bob.known and bob.error
    assert len([c for c in database.calls[calls:] if c == ["bob"]]) == 1
    database.fail = None
    await asyncio.sleep(0.9)  # backed off, then back
    assert (await accounts.for_user("alice")).error is None
    await accounts.close()


class Runner:
    """A SlurmRunner stand-in that answers as sacctmgr does on a cluster without slurmdbd."""

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, command, args, **kwargs):
        self.calls += 1
        stderr = (FIXTURES / "accounting_off_sacctmgr.err").read_text()
        raise SlurmCommandError([command, *args], 1, stderr)


async def test_a_cluster_without_slurmdbd_is_recognised_and_offers_nothing():
    runner = Runner()
    read = await read_accounting(runner, ["alice"])
    assert read == AccountingRead(enabled=False)
    accounts = AccountsView(query=lambda users: read_accounting(runner, users), min_interval=0.01)
    alice = await accounts.for_user("alice")
    assert not alice.enabled and alice.associations is None
    # the first look: its two calls (QOS and users, side by side) both answer locally that
    # accounting is off, reaching no daemon
    assert runner.calls == 4
    await accounts.for_user("alice")
    assert runner.calls == 4  # then nothing more per view
    await accounts.close()
