"""The two hubs under test: this project's spawner and the reference, each in its own venv.

Both hubs read the same configuration file text; only the Python that runs JupyterHub differs
(and with it which ``jupyterhub_moss`` is imported). The reference is ``jupyterhub-moss`` from
PyPI, installed into ``benchmarks/.cache/reference-venv`` and only ever run, never read. The
hubs are started as the tests start theirs (tests/support/hub.py), on the partitions the tests
use (tests/support/cluster_partitions.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.cluster_hub import cluster_hub_config
from tests.support.cluster_partitions import (
    JOBENV_BATCHSPAWNER_BIN,
    JOBENV_BIN,
    every_field_spelled_out,
)
from tests.support.hub import HubProcess, HubSite, hub_config, launched_hub
from tests.support.infra import NPM_BIN, REPO

CACHE = REPO / "benchmarks" / ".cache"
OURS_PYTHON = REPO / ".venv" / "bin" / "python"

REFERENCE_DIST = "jupyterhub-moss"
REFERENCE_VERSION = "10.1.0"
REFERENCE_BATCHSPAWNER = "1.3.0"
REFERENCE_VENV = CACHE / "reference-venv"

#: The account every benchmark spawn runs as; `benchmarks/run` creates it. Only its jobs are
#: ever cancelled, so other people's jobs on the shared cluster are left alone.
BENCH_USER = "mossbench"


@dataclass(frozen=True)
class Implementation:
    """One spawner under test: which Python runs its hub, and config lines only it knows."""

    key: str
    label: str
    python: Path
    own_config: str = ""
    #: The job-side environment: ours needs jupyterhub and jupyterlab only; the reference's
    #: jobs run batchspawner's wrapper. Both hold the same jupyterhub and jupyterlab (dev/jobenv).
    jobenv_bin: str = JOBENV_BIN


def implementations(refresh_seconds: int) -> list[Implementation]:
    """Ours first, then the reference: every scenario runs them in this order."""
    ours_config = textwrap.dedent(
        f"""
        # The page's polling interval, shortened for the benchmark; the hub reads Slurm at most
        # once per cluster_refresh_interval however many people look.
        c.MOSlurmSpawner.availability_refresh_interval = {int(refresh_seconds)}
        c.MOSlurmSpawner.cluster_refresh_interval = {float(refresh_seconds)}
        # Read Slurm as the benchmark's account, as the reference does through exec_prefix:
        # sdiag's per-user table then attributes every read of either spawner to that account.
        c.MOSlurmSpawner.slurm_query_prefix = "sudo -E -u {BENCH_USER}"
        """
    )
    return [
        Implementation("ours", "ours", OURS_PYTHON, ours_config),
        Implementation(
            "reference",
            f"reference {REFERENCE_VERSION}",
            REFERENCE_VENV / "bin" / "python",
            jobenv_bin=JOBENV_BATCHSPAWNER_BIN,
        ),
    ]


# -- the reference's virtualenv ---------------------------------------------------------------


def installed_versions(python: Path, dists: list[str]) -> dict[str, str | None]:
    """The installed version of each distribution for ``python`` (None when missing)."""
    code = textwrap.dedent(
        """
        import json, sys
        from importlib.metadata import PackageNotFoundError, version
        out = {}
        for name in sys.argv[1:]:
            try:
                out[name] = version(name)
            except PackageNotFoundError:
                out[name] = None
        print(json.dumps(out))
        """
    )
    result = subprocess.run(
        [str(python), "-c", code, *dists],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd="/",  # never pick up the repository's own package from the working folder
    )
    return json.loads(result.stdout)


def ensure_reference_venv(say: Callable[[str], None]) -> Path:
    """Install the reference next to the same JupyterHub as ours, unless already there."""
    hub_version = installed_versions(OURS_PYTHON, ["jupyterhub"])["jupyterhub"]
    if hub_version is None:
        raise RuntimeError(f"jupyterhub is not installed for {OURS_PYTHON}; run dev/setup")
    want = {
        REFERENCE_DIST: REFERENCE_VERSION,
        "jupyterhub": hub_version,
        "batchspawner": REFERENCE_BATCHSPAWNER,
    }
    python = REFERENCE_VENV / "bin" / "python"
    if python.exists() and installed_versions(python, list(want)) == want:
        say(f"reference venv is up to date ({REFERENCE_DIST} {REFERENCE_VERSION})")
        return python
    say(f"installing {REFERENCE_DIST}=={REFERENCE_VERSION} into {REFERENCE_VENV}")
    # The same base interpreter as ours, so only the spawner differs between the two hubs.
    base = subprocess.run(
        [str(OURS_PYTHON), "-c", "import sys; print(sys._base_executable)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    REFERENCE_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([base, "-m", "venv", "--clear", str(REFERENCE_VENV)], check=True, timeout=300)
    pins = [f"{name}=={version}" for name, version in want.items()]
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *pins], check=True, timeout=1800
    )
    return python


# -- running a hub ------------------------------------------------------------------------------


def hub_address() -> str:
    """Where jobs reach the hub's API: loopback, or the bridge of the multi-node layout."""
    return os.environ.get("MOSS_CLUSTER_HUB_ADDR") or "127.0.0.1"


def hub_environment() -> dict[str, str]:
    """The hub's environment: the cluster's, and a PATH without any virtualenv on it.

    Jobs inherit the hub's PATH (it is in ``env_keep``); a venv there would let a job find the
    hub's own Python, which job users cannot run.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{NPM_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env.setdefault("LANG", "C.UTF-8")
    return env


@contextmanager
def running_hub(
    implementation: Implementation, root: Path, extra: str = ""
) -> Iterator[HubProcess]:
    """Start a fresh hub (new database) in ``root``; stop it, and its servers, on exit.

    Both hubs read the same configuration: dev/cluster's partitions with every field spelled
    out (the reference requires them; ours then reads only the availability from Slurm, so
    both pages show the same limits), then the implementation's own lines, then ``extra``.
    Only the job-side environment differs: the reference's needs batchspawner.
    """
    for stale in ("jupyterhub.sqlite", "jupyterhub.pid"):
        (root / stale).unlink(missing_ok=True)
    site = HubSite(root)
    config = "\n".join(
        [
            hub_config(site, users=[BENCH_USER], admins=[], hub_address=hub_address()),
            "import batchspawner  # noqa: F401  (the reference's documented set-up imports it)",
            cluster_hub_config(every_field_spelled_out(implementation.jobenv_bin)),
            textwrap.dedent(implementation.own_config),
            textwrap.dedent(extra),
        ]
    )
    with launched_hub(
        site,
        config,
        env=hub_environment(),
        python=implementation.python,
        name=implementation.key,
        timeout=90,
    ) as hub:
        yield hub


def job_api_url(hub: HubProcess) -> str:
    """The hub's REST API as its jobs reach it (``hub_bind_url``, not the public proxy)."""
    config = (hub.root / "jupyterhub_config.py").read_text()
    match = re.search(r'^c\.JupyterHub\.hub_bind_url = "([^"]+)"', config, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no hub_bind_url in {hub.root / 'jupyterhub_config.py'}")
    return match.group(1).rstrip("/") + hub.base_url + "hub/api"
