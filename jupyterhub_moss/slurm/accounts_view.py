"""One hub-wide, background-refreshed view of the accounting database: users' associations
and the QOS table.

slurmdbd is a single daemon for a whole site, so the hub's reads must not grow with page views:

- the background refresh reads the QOS table and the associations of *every* user who asked
  within ``idle_after``, in two ``sacctmgr`` calls, every ``interval``; nobody looking, no read;
- a user the view has never seen is read at once, alone (one call; concurrent requests for the
  same user share it), so that their first page is right;
- a failed read keeps what was known, marked stale (``error``), and says so on the page.

A cluster without slurmdbd answers every ``sacctmgr`` locally with "accounting storage is
disabled": the view then reports ``enabled = False`` and the spawner offers no accounts.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .accounting import (
    QOS_ARGS,
    QosInfo,
    UserAssociations,
    accounting_is_off,
    parse_qos,
    parse_user_associations,
    safe_slurm_name,
    user_association_args,
)
from .commands import SlurmCommandError, SlurmRunner
from .refresher import BackgroundRefresher

__all__ = ["AccountingRead", "AccountsView", "UserAccounting", "read_accounting"]

MIN_INTERVAL = 5.0


@dataclass(frozen=True)
class AccountingRead:
    """One read: the QOS table and the associations of the users asked about (users absent
    from ``users`` have none). ``enabled`` is False on a cluster without slurmdbd."""

    enabled: bool
    qos: dict[str, QosInfo] = field(default_factory=dict)
    users: dict[str, UserAssociations] = field(default_factory=dict)


@dataclass(frozen=True)
class UserAccounting:
    """What the view knows about one user, for one request."""

    enabled: bool  # the cluster has an accounting database
    associations: UserAssociations | None  # None: none, or never read (see ``known``)
    qos: dict[str, QosInfo]
    known: bool  # the user's associations were read (``associations`` None: they have none)
    taken_at: datetime | None
    error: str | None = None  # the last read failed: the data may be stale


async def read_accounting(runner: SlurmRunner, users: Collection[str]) -> AccountingRead:
    """The QOS table and ``users``' associations: two ``sacctmgr`` calls (one if no user), run
    side by side, since a user seen for the first time waits for both."""
    safe = [user for user in users if safe_slurm_name(user)]
    calls = [runner.run("sacctmgr", list(QOS_ARGS))]
    if safe:
        calls.append(runner.run("sacctmgr", user_association_args(safe)))
    results = await asyncio.gather(*calls, return_exceptions=True)
    first = results[0]
    if isinstance(first, SlurmCommandError) and accounting_is_off(first.stderr):
        return AccountingRead(enabled=False)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    qos_out, associations = results[0], results[1] if safe else ""
    return AccountingRead(True, parse_qos(qos_out), parse_user_associations(associations))


AccountingQuery = Callable[[Collection[str]], Awaitable[AccountingRead]]


class AccountsView(BackgroundRefresher[tuple[frozenset[str], AccountingRead]]):
    """Owner of the hub's accounting data; :func:`.services.accounts_view` gives the process's
    one. ``query`` replaces :func:`read_accounting` (tests of the scheduling inject one)."""

    failure_message = "sacctmgr refresh failed (%d in a row), account choices may be stale: %s"

    def __init__(
        self,
        runner: SlurmRunner | None = None,
        interval: float = 60.0,
        *,
        query: AccountingQuery | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        if query is None:
            if runner is None:
                raise TypeError("AccountsView needs a runner or a query function")
            query = functools.partial(read_accounting, runner)
        interval = max(float(interval), min_interval)
        super().__init__(
            interval, min_interval=min_interval, idle_after=3 * interval, jitter=0.1, clock=clock
        )
        self._query = query
        self.enabled: bool | None = None  # unknown until the first answer
        self._qos: dict[str, QosInfo] = {}
        self._users: dict[str, UserAssociations | None] = {}  # None: read, has none
        self._asked_at: dict[str, float] = {}
        self._taken_at: datetime | None = None
        self._first_reads: dict[str, asyncio.Future[None]] = {}
        self._failed_at: dict[str, float] = {}  # a new user's read failed: not again at once
        self.user_reads = 0  # reads of one new user, for tests

    async def for_user(self, user: str) -> UserAccounting:
        """What is known for ``user``; reads them first if the view never has."""
        self._asked()
        self._asked_at[user] = self._clock()
        if self._should_read_new(user):
            await self._read_new_user(user)
        self._keep_refreshing()
        return UserAccounting(
            enabled=self.enabled is not False,
            associations=self._users.get(user),
            qos=self._qos,
            known=user in self._users,
            taken_at=self._taken_at,
            error=self.last_error,
        )

    # -- a user seen for the first time -----------------------------------------------------

    def _should_read_new(self, user: str) -> bool:
        if user in self._users or self.enabled is False or not safe_slurm_name(user):
            return False
        # while slurmdbd fails, a new user's page views must not each ask it again
        failed = self._failed_at.get(user)
        return failed is None or self._clock() - failed >= self.interval

    async def _read_new_user(self, user: str) -> None:
        pending = self._first_reads.get(user)
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = asyncio.ensure_future(self._read_one(user))
            self._first_reads[user] = pending
        try:
            await asyncio.shield(pending)
        finally:
            if pending.done():
                self._first_reads.pop(user, None)

    async def _read_one(self, user: str) -> None:
        self.user_reads += 1
        # counts as a read for the background schedule, which would otherwise read again now
        self._last_attempt = self._clock()
        try:
            answer = await self._query([user])
        except Exception as error:  # kept as for the background refresh: never an error page
            self.last_error = str(error) or type(error).__name__
            self._failed_at[user] = self._clock()
            self._log.warning(self.failure_message, 1, self.last_error)
            return
        self._failed_at.pop(user, None)
        self._keep(frozenset([user]), answer)

    # -- the background refresh -------------------------------------------------------------

    def _watched_users(self) -> frozenset[str]:
        now = self._clock()
        for user in [u for u, at in self._asked_at.items() if now - at > self.idle_after]:
            del self._asked_at[user]
            self._users.pop(user, None)  # not looking: forget, read afresh when back
        return frozenset(self._asked_at)

    async def _read(self) -> tuple[frozenset[str], AccountingRead]:
        users = self._watched_users()
        return users, await self._query(sorted(users))

    def _apply(self, answer: tuple[frozenset[str], AccountingRead]) -> None:
        users, read = answer
        self._keep(users, read)

    def _keep(self, users: frozenset[str], read: AccountingRead) -> None:
        self.enabled = read.enabled
        if not read.enabled:
            self._users.clear()
            return
        self._qos = dict(read.qos)
        for user in users:
            self._users[user] = read.users.get(user)
        self._taken_at = datetime.now(timezone.utc)
        self.last_error = None
