"""A real JupyterHub in a subprocess, with a real configurable-http-proxy, for the hub tier.

Each hub gets its own folder (database, cookie secret, config file) and free loopback ports, so
tests never share state. An admin service token lets tests use the REST API; `login()` gives an
httpx client with a real login session (cookies and the XSRF token taken from the page).
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .infra import NPM_BIN, REPO

DEMO_PARTITIONS = {
    "cpu": {
        "description": "CPU nodes",
        "architecture": "x86_64",
        "simple": True,
        "jupyter_environments": {
            "default": {"description": "Default", "path": "/opt/moss-jobenv/bin/"},
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class HubProcess:
    root: Path
    url: str  # public URL including base_url, ending in "/"
    base_url: str
    admin_token: str
    process: subprocess.Popen
    log_path: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def hub_url(self, path: str = "") -> str:
        return f"{self.url}hub/{path.lstrip('/')}"

    def api(self) -> httpx.Client:
        client = httpx.Client(
            base_url=self.hub_url("api/"),
            headers={"Authorization": f"token {self.admin_token}"},
            timeout=30,
        )
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
                self.process.wait(timeout=20)
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
    *,
    port: int,
    hub_port: int,
    proxy_api_port: int,
    base_url: str,
    root: Path,
    token: str,
    spawner_class: str | None = None,
) -> str:
    """The config every test hub shares; tests append their own lines after it.

    ``spawner_class`` (e.g. ``"moss"``): name the spawner that way and never import the package
    nor call ``set_config`` in the config file, as an admin who skips ``set_config`` would.
    """
    if spawner_class is None:
        choose_spawner = "import jupyterhub_moss\n\nc = get_config()  # noqa: F821\n"
        choose_spawner += "jupyterhub_moss.set_config(c)"
    else:
        choose_spawner = "c = get_config()  # noqa: F821\n"
        choose_spawner += f"c.JupyterHub.spawner_class = {spawner_class!r}"
    return choose_spawner + textwrap.dedent(
        f"""
        c.JupyterHub.bind_url = "http://127.0.0.1:{port}{base_url}"
        c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
        c.ConfigurableHTTPProxy.should_start = True
        c.JupyterHub.db_url = "sqlite:///{root}/jupyterhub.sqlite"
        c.JupyterHub.cookie_secret_file = "{root}/cookie_secret"
        c.JupyterHub.pid_file = "{root}/jupyterhub.pid"
        c.JupyterHub.cleanup_servers = True
        c.JupyterHub.authenticator_class = "dummy"
        c.Authenticator.allowed_users = {{"alice", "bob"}}
        c.Authenticator.admin_users = {{"admin"}}
        c.JupyterHub.services = [{{"name": "moss-tests", "api_token": "{token}"}}]
        c.JupyterHub.load_roles = [
            {{"name": "moss-tests", "scopes": ["admin:users", "admin:servers", "access:servers",
              "read:users", "tokens"], "services": ["moss-tests"]}},
        ]
        c.MOSlurmSpawner.partitions = {DEMO_PARTITIONS!r}
        """
    )


@contextmanager
def running_hub(
    root: Path,
    extra_config: str = "",
    base_url: str = "/",
    env: dict[str, str] | None = None,
    spawner_class: str | None = None,
) -> Iterator[HubProcess]:
    root.mkdir(parents=True, exist_ok=True)
    port, hub_port, proxy_api_port = free_port(), free_port(), free_port()
    token = secrets.token_hex(16)
    config = hub_config(
        port=port,
        hub_port=hub_port,
        proxy_api_port=proxy_api_port,
        base_url=base_url,
        root=root,
        token=token,
        spawner_class=spawner_class,
    )
    (root / "jupyterhub_config.py").write_text(config + "\n" + textwrap.dedent(extra_config))
    run_env = dict(env if env is not None else os.environ)
    run_env["PATH"] = f"{NPM_BIN}:{Path(sys.executable).parent}:{run_env.get('PATH', '')}"
    log_path = root / "jupyterhub.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(root / "jupyterhub_config.py")],
            cwd=root,
            env=run_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = HubProcess(
        root=root,
        url=f"http://127.0.0.1:{port}{base_url}",
        base_url=base_url,
        admin_token=token,
        process=process,
        log_path=log_path,
    )
    try:
        wait_until_up(hub)
        yield hub
    finally:
        hub.stop()


def wait_until_up(hub: HubProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.process.poll() is not None:
            raise RuntimeError(f"JupyterHub exited with {hub.process.returncode}:\n{hub.log()}")
        try:
            # /hub/health answers before the proxy routes are in place: wait for the login page
            if httpx.get(hub.hub_url("login"), timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"JupyterHub did not come up in {timeout}s:\n{hub.log()[-4000:]}")


REPO_ROOT = REPO
