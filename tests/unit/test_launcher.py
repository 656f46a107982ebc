"""The job-side launcher, run for real as the batch script runs it (``python3 -I -S -c SOURCE``)
against a stand-in hub on loopback, with a stand-in server that binds the port it is given.

The slurm tier runs it in real jobs with the real jupyterhub-singleuser
(tests/slurm/test_launcher.py); here each of its promises is checked on its own.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jupyterhub_moss import launcher
from jupyterhub_moss.batch_script import launcher_source

pytestmark = pytest.mark.unit

TOKEN = "the-servers-token"

#: A server that binds the port of its last argument (--port=N), listens, and prints it.
SERVER = """#!{python}
import socket, sys, time
port = int(sys.argv[-1].split("=", 1)[1])
time.sleep({delay})
listener = socket.socket()
listener.bind(("127.0.0.1", port))
listener.listen()
print(listener.getsockname()[1], flush=True)
time.sleep(30)
"""

# A /proc/net/tcp as Linux writes it: one listening socket (inode 4242, port 0x9C41 = 40001),
# one connected socket of the same port, and a listening socket of another process.
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9C41 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 4242 1 0
   1: 0100007F:9C41 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1001        0 4243 1 0
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0
"""


class StandInHub:
    """Records every report posted to ``/hub/api/batchspawner``; answers 201."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, str, dict]] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hub.reports.append((time.monotonic(), self.headers["Authorization"], body))
                self.send_response(201 if self.path == "/hub/api/batchspawner" else 404)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.reports) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return [body for _, _, body in self.reports]


@pytest.fixture
def hub():
    stand_in = StandInHub()
    yield stand_in
    stand_in.server.shutdown()


def server_program(tmp_path: Path, delay: float = 0.3) -> Path:
    path = tmp_path / "jupyterhub-singleuser"
    path.write_text(SERVER.format(python=sys.executable, delay=delay))
    path.chmod(0o755)
    return path


def launch(hub: StandInHub, *argv: str) -> subprocess.Popen:
    env = {**os.environ, "JUPYTERHUB_API_URL": hub.url, "JUPYTERHUB_API_TOKEN": TOKEN}
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", launcher_source(), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_listening_port_of_a_process_is_read_from_its_sockets():
    assert launcher.listening_ports(PROC_NET_TCP, {"4242", "4243"}) == [40001]
    assert launcher.listening_ports(PROC_NET_TCP, {"4243"}) == []  # connected, not listening
    assert launcher.listening_ports(PROC_NET_TCP, {"1"}) == []


def test_it_reports_the_start_then_the_port_the_server_bound_with_the_servers_token(hub, tmp_path):
    process = launch(hub, str(server_program(tmp_path)), "--debug")
    try:
        bound = int(process.stdout.readline())  # what the server itself says it bound
        reports = hub.wait_for(2)
        assert reports == [{"started": True}, {"port": bound}]
        assert {auth for _, auth, _ in hub.reports} == {f"token {TOKEN}"}
        # the report came once the server listened: the port takes connections
        socket.create_connection(("127.0.0.1", bound), timeout=5).close()
        # the server is the launcher's own process (exec), asked for a port from the system
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[-3:] == [b"--debug", b"--port=0", b""]
    finally:
        process.kill()
        process.wait()


def test_two_servers_starting_at_once_get_their_own_ports(hub, tmp_path):
    program = str(server_program(tmp_path, delay=0))
    processes = [launch(hub, program) for _ in range(2)]
    try:
        bound = sorted(int(p.stdout.readline()) for p in processes)
        reports = hub.wait_for(4)
        assert sorted(r["port"] for r in reports if "port" in r) == bound
        assert bound[0] != bound[1]
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_a_missing_server_fails_the_job_at_once_saying_why(hub, tmp_path):
    process = launch(hub, str(tmp_path / "bin" / "jupyterhub-singleuser"))
    _, err = process.communicate(timeout=20)
    assert process.returncode == 127
    assert "jupyterhub-singleuser: no such program, or not executable" in err
    assert hub.reports == []


def test_a_server_that_dies_before_listening_gets_no_port_report(hub, tmp_path):
    program = tmp_path / "dies"
    program.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(3)\n")
    program.chmod(0o755)
    process = launch(hub, str(program))
    assert process.wait(timeout=20) == 3  # the job ends with the server's own status
    time.sleep(0.5)  # the reporter has seen the server go
    assert [body for _, _, body in hub.reports] == [{"started": True}]


def test_without_the_hubs_address_it_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", launcher_source(), "/bin/true"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN not set" in result.stderr


def test_it_reports_only_to_an_http_address(tmp_path):
    env = {"JUPYTERHUB_API_URL": "file:///etc", "JUPYTERHUB_API_TOKEN": TOKEN}
    assert launcher.post_report({"started": True}, env) is False
