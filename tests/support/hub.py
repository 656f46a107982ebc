"""A real JupyterHub in a subprocess, with a real configurable-http-proxy: for the tests and
for the benchmarks (which run the reference implementation's hub from its own virtualenv too).

Each hub gets its own folder (database, cookie secret, config file) and free loopback ports, so
hubs never share state. An admin service token gives the REST API; `login()` gives an httpx
client with a real login session (cookies and the XSRF token taken from the page).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .cluster_partitions import JOBENV_BIN
from .infra import NPM_BIN

#: For hubs that never reach Slurm: dev/cluster's cpu partition alone, with one environment.
DEMO_PARTITIONS = {
    "cpu": {
        "description": "CPU nodes",
        "architecture": "x86_64",
        "simple": True,
        "jupyter_environments": {
            "default": {"description": "Default", "path": JOBENV_BIN},
        },
    },
}


#: What a browser sends for a URL typed in the address bar or opened from a bookmark: the hub
#: starts a server from such a query spawn at once (see handlers/spawn_page.py).
TYPED_IN_ADDRESS_BAR = {
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
}


#: Ports this process has handed out: a hub's three ports must differ (bind(0) just after a
#: close may give the very same port again), and no two hubs of one run may share one.
_HANDED_OUT: set[int] = set()
_LOWEST_PORT = 20000


def _ephemeral_start() -> int:
    """Where the system's ephemeral ports begin (bind(0), outgoing connections, and the Jupyter
    servers of jobs, which bind port 0, all take theirs from there)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port that nothing listens on now, never handed out before in this process.

    It is picked below the ephemeral range, so another program taking it between this check
    and its user's bind is unlikely.
    """
    high = max(_ephemeral_start() - 1, _LOWEST_PORT + 1000)
    for _ in range(500):
        port = secrets.randbelow(high - _LOWEST_PORT) + _LOWEST_PORT
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free loopback port between {_LOWEST_PORT} and {high}")


@dataclass(frozen=True)
class HubSite:
    """Where one hub lives: its own folder, free loopback ports and its admin service's token."""

    root: Path
    base_url: str = "/"
    port: int = field(default_factory=free_port)
    hub_port: int = field(default_factory=free_port)
    proxy_api_port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def url(self) -> str:
        """The public URL, base_url included, ending in "/"."""
        return f"http://127.0.0.1:{self.port}{self.base_url}"


@dataclass
class HubProcess:
    root: Path
    url: str  # public URL including base_url, ending in "/"
    base_url: str
    admin_token: str
    process: subprocess.Popen
    log_path: Path
    clients: list[httpx.Client] = field(default_factory=list)
    name: str = ""  # which hub, where several run side by side (the benchmark's two)

    def hub_url(self, path: str = "") -> str:
        return f"{self.url}hub/{path.lstrip('/')}"

    def api_url(self, path: str = "") -> str:
        return self.hub_url(f"api/{path.lstrip('/')}")

    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.admin_token}"}

    def api(self) -> httpx.Client:
        client = httpx.Client(base_url=self.api_url(), headers=self.api_headers(), timeout=30)
        self.clients.append(client)
        return client

    def login(self, username: str, password: str = "any") -> httpx.Client:
        client = httpx.Client(timeout=30, follow_redirects=True)
        self.clients.append(client)
        page = client.get(self.hub_url("login"))
        page.raise_for_status()
        xsrf = xsrf_from_page(page.text)
        done = client.post(
            self.hub_url("login"),
            data={"username": username, "password": password, "_xsrf": xsrf},
        )
        done.raise_for_status()
        return client

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                # cleanup_servers: the hub stops its servers first, Slurm jobs included
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def xsrf_from_page(html: str) -> str:
    """The XSRF token a page carries: a hidden field, or the spawn form's action URL."""
    match = re.search(r'name="_xsrf"\s+value="([^"]+)"', html) or re.search(
        r'[?&](?:amp;)?_xsrf=([^"&\s]+)', html
    )
    if not match:
        raise AssertionError("no _xsrf field on the page")
    return match.group(1)


def hub_config(
    site: HubSite,
    *,
    spawner_class: str | None = None,
    users: Iterable[str] = ("alice", "bob"),
    admins: Iterable[str] = ("admin",),
    hub_address: str = "127.0.0.1",
) -> str:
    """The config every hub started here shares: loopback, its own folder, any password.

    ``spawner_class`` (e.g. ``"moss"``): name the spawner that way and never import the package
    nor call ``set_config`` in the config file, as an admin who skips ``set_config`` would.
    ``hub_address``: where jobs reach the hub's API (on dev/cluster's multi-node layout, not
    loopback).
    """
    if spawner_class is None:
        choose_spawner = "import jupyterhub_moss\n\nc = get_config()  # noqa: F821\n"
        choose_spawner += "jupyterhub_moss.set_config(c)"
    else:
        choose_spawner = "c = get_config()  # noqa: F821\n"
        choose_spawner += f"c.JupyterHub.spawner_class = {spawner_class!r}"
    root = site.root
    return choose_spawner + textwrap.dedent(
        f"""
        c.JupyterHub.bind_url = "{site.url}"
        c.JupyterHub.hub_bind_url = "http://{hub_address}:{site.hub_port}"
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{site.proxy_api_port}"
        c.ConfigurableHTTPProxy.should_start = True
        c.JupyterHub.db_url = "sqlite:///{root}/jupyterhub.sqlite"
        c.JupyterHub.cookie_secret_file = "{root}/cookie_secret"
        c.JupyterHub.pid_file = "{root}/jupyterhub.pid"
        c.JupyterHub.cleanup_servers = True
        c.JupyterHub.authenticator_class = "dummy"
        c.Authenticator.allowed_users = {set(users)!r}
        c.Authenticator.admin_users = {set(admins)!r}
        c.JupyterHub.services = [{{"name": "moss-admin", "api_token": "{site.token}"}}]
        c.JupyterHub.load_roles = [
            {{"name": "moss-admin", "scopes": ["admin:users", "admin:servers", "access:servers",
              "read:users", "tokens"], "services": ["moss-admin"]}},
        ]
        """
    )


@contextmanager
def launched_hub(
    site: HubSite,
    config: str,
    *,
    env: Mapping[str, str],
    python: str | Path = sys.executable,
    name: str = "",
    timeout: float = 60,
) -> Iterator[HubProcess]:
    """Run ``python -m jupyterhub`` on ``config`` in the site's folder until the block ends.

    ``env`` is the hub's whole environment; ``python`` may be another virtualenv's, whose
    ``jupyterhub_moss`` the hub then imports (the folder is not the repository's).
    """
    site.root.mkdir(parents=True, exist_ok=True)
    config_path = site.root / "jupyterhub_config.py"
    config_path.write_text(config)
    log_path = site.root / "jupyterhub.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(python), "-m", "jupyterhub", "-f", str(config_path)],
            cwd=site.root,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = HubProcess(
        root=site.root,
        url=site.url,
        base_url=site.base_url,
        admin_token=site.token,
        process=process,
        log_path=log_path,
        name=name,
    )
    try:
        wait_until_up(hub, timeout)
        yield hub
    finally:
        hub.stop()


@contextmanager
def running_hub(
    root: Path,
    extra_config: str = "",
    base_url: str = "/",
    env: dict[str, str] | None = None,
    spawner_class: str | None = None,
) -> Iterator[HubProcess]:
    """A test hub: this checkout's spawner for alice, bob and admin; ``extra_config`` last."""
    site = HubSite(root, base_url)
    config = hub_config(site, spawner_class=spawner_class)
    config += f"c.MOSlurmSpawner.partitions = {DEMO_PARTITIONS!r}\n"
    run_env = dict(env if env is not None else os.environ)
    run_env["PATH"] = f"{NPM_BIN}:{Path(sys.executable).parent}:{run_env.get('PATH', '')}"
    with launched_hub(site, config + "\n" + textwrap.dedent(extra_config), env=run_env) as hub:
        yield hub


def wait_until_up(hub: HubProcess, timeout: float = 60) -> None:
    which = f"{hub.name}: " if hub.name else ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.process.poll() is not None:
            raise RuntimeError(
                f"{which}JupyterHub exited with {hub.process.returncode}:\n{hub.log()}"
            )
        try:
            # /hub/health answers before the proxy routes are in place: wait for the login page
            if httpx.get(hub.hub_url("login"), timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{which}JupyterHub did not come up in {timeout}s:\n{hub.log()[-4000:]}")
