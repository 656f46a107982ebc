"""The two hubs under test: this project's spawner and the reference, each in its own venv.

Both hubs read the same configuration file text; only the Python that runs JupyterHub differs
(and with it which ``jupyterhub_moss`` is imported). The reference is ``jupyterhub-moss`` from
PyPI, installed into ``benchmarks/.cache/reference-venv`` and only ever run, never read.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / ".cache"
NPM_BIN = REPO / "dev" / "npm" / "node_modules" / ".bin"
OURS_PYTHON = REPO / ".venv" / "bin" / "python"

REFERENCE_DIST = "jupyterhub-moss"
REFERENCE_VERSION = "10.1.0"
REFERENCE_BATCHSPAWNER = "1.3.0"
REFERENCE_VENV = CACHE / "reference-venv"

#: The account every benchmark spawn runs as; `benchmarks/run` creates it. Only its jobs are
#: ever cancelled, so other people's jobs on the shared cluster are left alone.
BENCH_USER = "mossbench"
JOBENV_BIN = os.path.join(os.environ.get("MOSS_JOBENV", "/opt/moss-jobenv"), "bin", "")

# Every field spelled out: the reference requires them, and ours then reads only the
# availability from Slurm, so both pages show the same limits.
PARTITIONS = {
    "cpu": {
        "architecture": "x86_64",
        "description": "CPU nodes",
        "gpu": "",
        "max_ngpus": 0,
        "max_nprocs": 8,
        "max_runtime": 24 * 3600,
        "simple": True,
        "jupyter_environments": {
            "default": {
                "description": "Default",
                "path": JOBENV_BIN,
                "modules": "",
                "add_to_path": True,
                "prologue": "",
            },
        },
    },
    "gpu": {
        "architecture": "x86_64",
        "description": "GPU nodes",
        "gpu": "gpu:fake:{}",
        "max_ngpus": 2,
        "max_nprocs": 8,
        "max_runtime": 12 * 3600,
        "simple": True,
        "jupyter_environments": {
            "default": {
                "description": "Default",
                "path": JOBENV_BIN,
                "modules": "",
                "add_to_path": True,
                "prologue": "",
            },
        },
    },
    "debug": {
        "architecture": "x86_64",
        "description": "Debugging",
        "gpu": "",
        "max_ngpus": 0,
        "max_nprocs": 8,
        "max_runtime": 3600,
        "simple": False,
        "jupyter_environments": {
            "default": {
                "description": "Default",
                "path": JOBENV_BIN,
                "modules": "",
                "add_to_path": True,
                "prologue": "",
            },
        },
    },
}


@dataclass(frozen=True)
class Implementation:
    """One spawner under test: which Python runs its hub, and config lines only it knows."""

    key: str
    label: str
    python: Path
    own_config: str = ""


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
            "reference", f"reference {REFERENCE_VERSION}", REFERENCE_VENV / "bin" / "python"
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
    import json

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Hub:
    """A running JupyterHub: its public URL and an admin token for the REST API."""

    implementation: Implementation
    root: Path
    url: str  # ends in "/"
    admin_token: str
    process: subprocess.Popen
    log_path: Path
    users: list[str] = field(default_factory=lambda: [BENCH_USER])

    def hub_url(self, path: str = "") -> str:
        return f"{self.url}hub/{path.lstrip('/')}"

    def api_url(self, path: str = "") -> str:
        return self.hub_url(f"api/{path.lstrip('/')}")

    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.admin_token}"}

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def hub_config(
    implementation: Implementation,
    *,
    port: int,
    hub_port: int,
    proxy_api_port: int,
    root: Path,
    token: str,
    extra: str,
) -> str:
    """The configuration both hubs share; ``extra`` holds a scenario's own lines."""
    common = textwrap.dedent(
        f"""
        import batchspawner  # noqa: F401  (the reference's documented set-up imports it)
        import jupyterhub_moss

        c = get_config()  # noqa: F821
        jupyterhub_moss.set_config(c)
        c.JupyterHub.bind_url = "http://127.0.0.1:{port}/"
        c.JupyterHub.hub_bind_url = "http://{hub_address()}:{hub_port}"
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
        c.ConfigurableHTTPProxy.should_start = True
        c.JupyterHub.db_url = "sqlite:///{root}/jupyterhub.sqlite"
        c.JupyterHub.cookie_secret_file = "{root}/cookie_secret"
        c.JupyterHub.pid_file = "{root}/jupyterhub.pid"
        c.JupyterHub.cleanup_servers = True
        c.JupyterHub.allow_named_servers = True
        c.JupyterHub.authenticator_class = "dummy"
        c.Authenticator.allowed_users = {{"{BENCH_USER}"}}
        c.JupyterHub.services = [{{"name": "moss-bench", "api_token": "{token}"}}]
        c.JupyterHub.load_roles = [
            {{"name": "moss-bench", "scopes": ["admin:users", "admin:servers", "access:servers",
              "read:users"], "services": ["moss-bench"]}},
        ]
        c.MOSlurmSpawner.partitions = {PARTITIONS!r}
        c.MOSlurmSpawner.exec_prefix = "sudo -E -u {{username}}"
        c.Spawner.env_keep = ["PATH", "LANG", "SLURM_CONF", "JUPYTERHUB_SINGLEUSER_APP"]
        """
    )
    return "\n".join([common, textwrap.dedent(implementation.own_config), textwrap.dedent(extra)])


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
def running_hub(implementation: Implementation, root: Path, extra: str = "") -> Iterator[Hub]:
    """Start a fresh hub (new database) in ``root``; stop it, and its servers, on exit."""
    root.mkdir(parents=True, exist_ok=True)
    for stale in ("jupyterhub.sqlite", "jupyterhub.pid"):
        (root / stale).unlink(missing_ok=True)
    port, hub_port, proxy_api_port = free_port(), free_port(), free_port()
    token = secrets.token_hex(16)
    config = hub_config(
        implementation,
        port=port,
        hub_port=hub_port,
        proxy_api_port=proxy_api_port,
        root=root,
        token=token,
        extra=extra,
    )
    config_path = root / "jupyterhub_config.py"
    config_path.write_text(config)
    log_path = root / "jupyterhub.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(implementation.python), "-m", "jupyterhub", "-f", str(config_path)],
            cwd=root,  # not the repository: the reference must import its own jupyterhub_moss
            env=hub_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(
        implementation=implementation,
        root=root,
        url=f"http://127.0.0.1:{port}/",
        admin_token=token,
        process=process,
        log_path=log_path,
    )
    try:
        wait_until_up(hub)
        yield hub
    finally:
        hub.stop()


def wait_until_up(hub: Hub, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.process.poll() is not None:
            raise RuntimeError(
                f"{hub.implementation.label}: JupyterHub exited with {hub.process.returncode}:\n"
                f"{hub.log_tail()}"
            )
        try:
            # /hub/health answers before the proxy routes exist: wait for the login page instead
            if httpx.get(hub.hub_url("login"), timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{hub.implementation.label}: JupyterHub did not come up in {timeout}s")
