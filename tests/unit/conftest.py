"""The unit tier never reaches Slurm: spawners made here know nothing of their user's accounts.

A machine running the test cluster has a working ``sacctmgr``; without this, a spawner built
by a unit test would ask the real accounting database about its user. Tests of the accounting
logic give a spawner its own ``user_access``.
"""

from __future__ import annotations

import pytest

from jupyterhub_moss.slurm_access import SlurmAccess
from jupyterhub_moss.user_access import UserAccess


@pytest.fixture(autouse=True)
def no_accounting_database(monkeypatch: pytest.MonkeyPatch) -> None:
    async def user_access(self) -> UserAccess:
        return UserAccess(self.user.name, groups=None)

    monkeypatch.setattr(SlurmAccess, "user_access", user_access)
