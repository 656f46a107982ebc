"""Which test infrastructure is present, and what to do when it is not.

A contributor without root gets clear skips. CI sets ``MOSS_REQUIRE_ALL=1``, which turns every
"infrastructure missing" skip into a failure, so a green CI means every tier really ran.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "dev" / "cluster"
NPM_BIN = REPO / "dev" / "npm" / "node_modules" / ".bin"
CHROMIUM = os.environ.get("MOSS_CHROMIUM", "/usr/bin/chromium")


def require_all() -> bool:
    return os.environ.get("MOSS_REQUIRE_ALL") == "1"


def missing(reason: str) -> None:
    """Skip for a contributor; fail in CI, where every tier must run."""
    if require_all():
        pytest.fail(f"MOSS_REQUIRE_ALL=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def proxy_command() -> str | None:
    local = NPM_BIN / "configurable-http-proxy"
    if local.exists():
        return str(local)
    return shutil.which("configurable-http-proxy")


@dataclass(frozen=True)
class SlurmCluster:
    """The running dev/cluster, as the tests see it."""

    env: dict[str, str]  # os.environ plus SLURM_CONF and friends from `dev/cluster env`
    conf: str
    state_dir: str
    jobenv: str

    @property
    def accounting(self) -> bool:
        """Whether the cluster runs slurmdbd (`dev/cluster start`) rather than none."""
        return self.env.get("MOSS_CLUSTER_ACCOUNTING") == "slurmdbd"


def cluster_env_exports() -> dict[str, str]:
    out = subprocess.run(
        [str(CLUSTER_SCRIPT), "env"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    exports: dict[str, str] = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export ") :].partition("=")
            exports[key] = value.strip("'\"")
    return exports


def running_cluster() -> SlurmCluster | None:
    if not CLUSTER_SCRIPT.exists() or shutil.which("sinfo") is None:
        return None
    status = subprocess.run(
        [str(CLUSTER_SCRIPT), "status"], capture_output=True, text=True, timeout=30
    )
    if status.returncode != 0:
        return None
    exports = cluster_env_exports()
    env = dict(os.environ)
    env.update(exports)
    conf = exports.get("SLURM_CONF", "/etc/slurm/slurm.conf")
    return SlurmCluster(
        env=env,
        conf=conf,
        state_dir=exports.get("MOSS_CLUSTER_DIR", str(Path(conf).parent)),
        jobenv=exports.get("MOSS_JOBENV", "/opt/moss-jobenv"),
    )
