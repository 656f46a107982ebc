"""The job side: start a single-user server and tell the hub its port. Standard library only.

The batch script runs this file's text with the job's own Python (``python3 -I -S -c ...``),
followed by the server's command line::

    python3 -I -S -c "$MOSS_LAUNCHER" /env/bin/jupyterhub-singleuser --debug

So the job's environment needs nothing of jupyterhub_moss or batchspawner: only a ``python3``
(3.6 or newer) and the server. This module never imports the package and must stay that way.

What it does, in order:

1. Checks that the server's program exists, and says so in the job's output if not.
2. Forks a *reporter*, which leaves the job's process tree at once (a double fork), then
   ``exec``s the server in its own process: the server keeps the job step's pid, its signals
   and its exit status, exactly as if the script had started it.
3. The server is started with ``--port=0``: the system gives it a free port as it binds, so
   two servers starting together on one node can never pick the same one.
4. The reporter posts ``{"started": true}`` to the hub at once (the hub then looks at the job
   without waiting for its next poll), watches the server's own sockets in ``/proc`` until one
   of them listens, and posts ``{"port": N}``: the port the server really bound, at the moment
   it can be connected to. Both go to ``$JUPYTERHUB_API_URL/batchspawner`` with the server's
   own token, ``$JUPYTERHUB_API_TOKEN``, the address and credential batchspawner's wrapper
   uses. The reporter then exits. If the server dies first, it exits without a report.
"""

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

REPORT_PATH = "/batchspawner"
#: How long the reporter waits for the server to listen before giving up (the hub's own
#: start_timeout ends the spawn sooner).
LISTEN_TIMEOUT = 900.0
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp
_REPORT_TRIES = 8


def say(message):
    sys.stderr.write(f"moss-launcher: {message}\n")
    sys.stderr.flush()


def socket_inodes(pid):
    """Inodes of the sockets process ``pid`` has open (empty if it is gone or unreadable)."""
    folder = f"/proc/{pid}/fd"
    inodes = set()
    try:
        names = os.listdir(folder)
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(os.path.join(folder, name))
        except OSError:
            continue
        if target.startswith("socket:[") and target.endswith("]"):
            inodes.add(target[8:-1])
    return inodes


def listening_ports(table, inodes):
    """Ports of the listening sockets among ``inodes``, in a ``/proc/net/tcp{,6}`` table."""
    ports = []
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != _LISTEN or fields[9] not in inodes:
            continue
        port = int(fields[1].rsplit(":", 1)[1], 16)
        if port not in ports:
            ports.append(port)
    return ports


def listening_port(pid):
    """The TCP port process ``pid`` listens on, or None while it listens on none."""
    inodes = socket_inodes(pid)
    if not inodes:
        return None
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as table:
                ports = listening_ports(table.read(), inodes)
        except OSError:
            continue
        if ports:
            return ports[0]
    return None


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie has no fds left: it will never listen
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def wait_for_listening_port(pid, timeout=LISTEN_TIMEOUT):
    """Look often at first (most servers listen within seconds), then less."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        port = listening_port(pid)
        if port is not None:
            return port
        if not alive(pid):
            return None
        waited = time.monotonic() - started
        time.sleep(0.01 if waited < 10 else 0.1 if waited < 60 else 0.5)
    return None


def ssl_context(environ):
    """The hub's internal TLS, as jupyterhub-singleuser itself reads it; None for http."""
    if not environ.get("JUPYTERHUB_API_URL", "").startswith("https:"):
        return None
    context = ssl.create_default_context(cafile=environ.get("JUPYTERHUB_SSL_CLIENT_CA") or None)
    certfile = environ.get("JUPYTERHUB_SSL_CERTFILE")
    if certfile:
        context.load_cert_chain(certfile, environ.get("JUPYTERHUB_SSL_KEYFILE") or None)
    return context


def post_report(body, environ):
    """POST ``body`` to the hub; True when it took it. Retried while the hub cannot be reached
    (it may be restarting); a refusal (4xx) is final."""
    url = environ["JUPYTERHUB_API_URL"].rstrip("/") + REPORT_PATH
    if not url.startswith(("http://", "https://")):
        say(f"not reporting to {url!r}: the hub's API address must be http(s)")
        return False
    data = json.dumps(body).encode()
    headers = {
        "Authorization": "token " + environ["JUPYTERHUB_API_TOKEN"],
        "Content-Type": "application/json",
    }
    context = ssl_context(environ)
    for attempt in range(_REPORT_TRIES):
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10, context=context):  # noqa: S310 (checked above)
                return True
        except urllib.error.HTTPError as error:
            if error.code < 500:
                say(f"the hub refused {json.dumps(body)}: HTTP {error.code}")
                return False
            problem = f"HTTP {error.code}"
        except (OSError, ValueError) as error:
            problem = str(error)
        say(f"could not tell the hub {json.dumps(body)} ({problem}), trying again")
        time.sleep(min(2**attempt * 0.25, 8))
    return False


def report(server_pid, environ):
    """The reporter: the job started, then the port the server listens on."""
    post_report({"started": True}, environ)
    port = wait_for_listening_port(server_pid)
    if port is None:
        say("the server ended before it listened on a port")
        return
    if post_report({"port": port}, environ):
        say(f"told the hub: the server listens on port {port}")


def start_reporter(server_pid, environ):
    """Fork the reporter out of the job's process tree, so the server never has to reap it."""
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        return
    try:
        if os.fork():
            os._exit(0)
        # Still in the job step's process group: scancel's signals end it with the server.
        report(server_pid, environ)
    except BaseException as error:  # never let the reporter fall back into the parent's code
        say(f"the reporter failed: {error!r}")
    finally:
        os._exit(0)


def server_argv(argv):
    """The server's command line, asking the system for a free port."""
    return [*argv, "--port=0"]


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        say('usage: python3 -c "$MOSS_LAUNCHER" SERVER [ARGUMENTS...]')
        return 2
    needed = ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN")
    missing = [name for name in needed if not os.environ.get(name)]
    if missing:
        say(f"{' and '.join(missing)} not set: the hub passes them to the job")
        return 2
    program = argv[0]
    if os.sep in program and not os.access(program, os.X_OK):
        say(f"{program}: no such program, or not executable")
        return 127
    start_reporter(os.getpid(), dict(os.environ))
    try:
        os.execvp(program, server_argv(argv))  # noqa: S606 (no shell, on purpose)
    except OSError as error:
        say(f"cannot run {program}: {error.strerror}")
        return 127


if __name__ == "__main__":
    sys.exit(main())
