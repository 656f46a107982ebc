"""Tools for the hardening suites: hostile values, a recording ``sbatch``, script shapes, faults.

- :class:`SbatchRecorder` writes a small wrapper that keeps a copy of every ``sbatch`` call the
  hub makes (arguments and the script on stdin) and then runs the *real* sbatch on it. It is
  handed to the hub as ``c.MOSlurmSpawner.slurm_commands = {"sbatch": ...}``: the record shows
  exactly what one hub submitted, whatever other tests do on the same cluster at the same time.
- :func:`script_problems` checks a rendered batch script against the template's shapes.
- :func:`hostile_request` is a hypothesis strategy of spawn requests with adversarial values.
- :func:`stopped_slurmctld` SIGSTOPs the controller and always SIGCONTs it.
- :func:`percentile` for the load test's figures.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from jupyterhub_moss.batch_script import launcher_source
from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.limits import PartitionLimits, merge_partition_limits
from jupyterhub_moss.options import FIELD_NAMES, OptionsPolicy, UserOptions
from jupyterhub_moss.slurm.accounting import (
    QOS_ARGS,
    UserAssociations,
    parse_qos,
    parse_user_associations,
    user_association_args,
)
from jupyterhub_moss.slurm.partition_access import PARTITION_ARGS, parse_partition_access
from jupyterhub_moss.slurm.partitions import SINFO_ARGS, parse_sinfo
from jupyterhub_moss.user_access import UserAccess, unix_groups

from .cluster_hub import cluster_hub_config
from .cluster_partitions import CLUSTER_PARTITIONS

#: What the spawner's default traits give for this config (first partition is the default).
CLUSTER_POLICY = OptionsPolicy(default_partition="cpu")


def cluster_config(extra: str = "", *, reachable_from_nodes: bool = True) -> str:
    """Hub config for the local cluster; the hub's API where the nodes can reach it.

    On dev/cluster's multi layout with network namespaces a job cannot reach 127.0.0.1 of the
    hub's host: ``MOSS_CLUSTER_HUB_ADDR`` (in the cluster's env) is where it can.
    """
    lines = cluster_hub_config(CLUSTER_PARTITIONS)
    if reachable_from_nodes:
        lines += textwrap.dedent(
            """
            import os as _os
            import socket as _socket
            from urllib.parse import urlsplit as _urlsplit

            def _bindable(addr):
                # the layout may have changed since the environment was read
                try:
                    with _socket.socket() as sock:
                        sock.bind((addr, 0))
                except OSError:
                    return False
                return True

            _addr = _os.environ.get("MOSS_CLUSTER_HUB_ADDR")
            if _addr and _bindable(_addr):
                _hub_port = _urlsplit(c.JupyterHub.hub_bind_url).port
                c.JupyterHub.hub_bind_url = f"http://{_addr}:{_hub_port}"
            """
        )
    return lines + textwrap.dedent(extra)


def _slurm(env: Mapping[str, str], *argv: str, check: bool = True) -> str:
    return subprocess.run(
        list(argv), env=dict(env), capture_output=True, text=True, timeout=30, check=check
    ).stdout


def live_access(env: Mapping[str, str], user: str) -> UserAccess | None:
    """``user``'s accounts and QOS as a hub reads them, or None without an accounting database."""
    qos = subprocess.run(
        ["sacctmgr", *QOS_ARGS], env=dict(env), capture_output=True, text=True, timeout=30
    )
    if qos.returncode != 0:
        return None
    users = parse_user_associations(_slurm(env, "sacctmgr", *user_association_args([user])))
    return UserAccess(
        user,
        unix_groups(user),
        associations=users.get(user, UserAssociations(user, "", ())),
        qos=parse_qos(qos.stdout),
    )


def live_limits(env: Mapping[str, str], user: str = "alice") -> dict[str, PartitionLimits]:
    """The limits a hub with :data:`CLUSTER_PARTITIONS` computes for ``user``, from the live
    cluster (and its accounting database, if it has one)."""
    partitions = parse_sinfo(_slurm(env, "sinfo", *SINFO_ARGS))
    rules = parse_partition_access(_slurm(env, "scontrol", *PARTITION_ARGS))
    return merge_partition_limits(
        load_partitions(CLUSTER_PARTITIONS),
        partitions,
        access=live_access(env, user),
        rules=rules,
    )


# ---------------------------------------------------------------------------------------------
# Recording sbatch


@dataclass(frozen=True)
class SbatchCall:
    args: list[str]
    script: str

    @property
    def is_submission(self) -> bool:
        """A real submission, not a start estimate (``--test-only``)."""
        return "--test-only" not in self.args


class SbatchRecorder:
    """A wrapper around the real ``sbatch`` that keeps a copy of each call.

    It runs as the user (the hub's ``exec_prefix`` is ``sudo -E -u {username}``), so its folder
    is world-writable; it lives under /tmp, which every user can reach.
    """

    def __init__(self, real: str | None = None) -> None:
        self.real = real or shutil.which("sbatch") or "/usr/bin/sbatch"
        self.folder = Path(tempfile.mkdtemp(prefix="moss-sbatch-record-", dir="/tmp"))
        self.folder.chmod(0o755)
        self.calls_dir = self.folder / "calls"
        self.calls_dir.mkdir()
        self.calls_dir.chmod(0o1777)
        self.path = self.folder / "sbatch"
        calls = shlex.quote(str(self.calls_dir))
        self.path.write_text(
            "#!/bin/sh\n"
            "# Test wrapper: keep what the hub gives sbatch, then run the real sbatch on it.\n"
            "set -eu\n"
            f'call={calls}/"$(date +%s%N)-$$"\n'
            'printf \'%s\\0\' "$@" > "$call.args"\n'
            'cat > "$call.script"\n'
            f'exec {shlex.quote(self.real)} "$@" < "$call.script"\n'
        )
        self.path.chmod(0o755)

    def calls(self) -> list[SbatchCall]:
        found = []
        for args_file in sorted(self.calls_dir.glob("*.args")):
            script_file = args_file.with_suffix(".script")
            args = args_file.read_bytes().split(b"\0")[:-1]
            found.append(
                SbatchCall(
                    [a.decode(errors="replace") for a in args],
                    script_file.read_text(errors="replace") if script_file.exists() else "",
                )
            )
        return found

    def submissions(self) -> list[SbatchCall]:
        return [call for call in self.calls() if call.is_submission]

    def wait_for_submissions(self, count: int, timeout: float = 15.0) -> list[SbatchCall]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.submissions()
            # the script file is complete once sbatch has been exec'd with it; give it a moment
            if len(found) >= count and all(call.script for call in found[:count]):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} sbatch submissions, saw {len(found)}")
            time.sleep(0.05)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def unique_job_name(prefix: str = "moss-hardening") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def jobs_named(env: Mapping[str, str], name: str, timeout: float = 30.0) -> list[str]:
    """Ids of the queued or running jobs called ``name`` (the hubs here use unique names).

    An squeue that fails (a controller just back) is asked again: "no answer" is not "none".
    """
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(
            ["squeue", "-h", "-n", name, "-o", "%i"],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode == 0:
            return done.stdout.split()
        if time.monotonic() > deadline:
            raise AssertionError(f"squeue keeps failing: {done.stderr.strip()}")
        time.sleep(0.5)


def cancel_jobs_named(env: Mapping[str, str], name: str, timeout: float = 30.0) -> None:
    """Cancel our own jobs (by their unique name) and wait until the queue has none left."""
    deadline = time.monotonic() + timeout
    while (ids := jobs_named(env, name)) and time.monotonic() < deadline:
        subprocess.run(["scancel", *ids], env=dict(env), capture_output=True, timeout=30)
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------
# The batch script's shapes

SBATCH_LINE_RE = re.compile(
    r'#SBATCH --[a-z][a-z0-9-]*(=([A-Za-z0-9_.,:/@%+=-]+|"([^"\\\n]|\\[^\n])*"))?'
)
# Outside single quotes, a shell line of the template holds no expansion, glob or operator.
UNQUOTED_OK_RE = re.compile(r"[A-Za-z0-9_./:=@%+, -]*")


def sbatch_argument(line: str) -> str:
    """The one argument sbatch reads from an ``#SBATCH`` line of :data:`SBATCH_LINE_RE`'s shape
    (bare, or in double quotes with backslash escapes)."""
    text = line[len("#SBATCH ") :]
    name, sep, value = text.partition("=")
    if sep and value.startswith('"'):
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    return f"{name}={value}" if sep else name


def _outside_single_quotes(line: str) -> str | None:
    outside, quoted = [], False
    for char in line:
        if char == "'":
            quoted = not quoted
        elif not quoted:
            outside.append(char)
    return None if quoted else "".join(outside)


def _shell_words(line: str) -> list[str]:
    """Words as bash reads them, with operators (``;``, ``|``, ``&&``...) as words of their own."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _expected_body(options: UserOptions, part: PartitionLimits) -> list[list[str]]:
    body = [["set", "-euo", "pipefail"], ["export", "SLURM_EXPORT_ENV=ALL"]]
    if options.default_url:
        body.append(["export", f"JUPYTERHUB_DEFAULT_URL={options.default_url}"])
    if options.root_dir:
        body.append(["export", f"JUPYTERHUB_ROOT_DIR={options.root_dir}"])
    if options.is_custom_environment:
        path, modules, prologue, add = (
            options.environment_path,
            options.environment_modules.split(),
            "",
            True,
        )
    else:
        env = part.environments[options.environment_id or part.default_environment_id]
        path, modules, prologue = env.path, list(env.module_list), env.prologue
        add = env.add_to_path
    if prologue:
        body.append(_shell_words(prologue))
    if modules:
        body.append(["module", "load", *modules])
    if path and add and not path.endswith(".sif"):
        body.append(["export", f"PATH={path}:$PATH"])
    return body


LAUNCHER_START = "MOSS_LAUNCHER=$(cat <<'MOSS_LAUNCHER_END'"


def _without_launcher(lines: list[str]) -> tuple[list[str], str]:
    """The shell lines without the launcher's here-document, and what is wrong with it ("" if
    it holds exactly jupyterhub_moss/launcher.py)."""
    if LAUNCHER_START not in lines:
        return lines, "no launcher here-document"
    start = lines.index(LAUNCHER_START)
    end = lines.index("MOSS_LAUNCHER_END", start) if "MOSS_LAUNCHER_END" in lines else -1
    if end < 0 or lines[end + 1 : end + 2] != [")"]:
        return lines, "the launcher's here-document is not closed"
    if "\n".join(lines[start + 1 : end]) != launcher_source():
        return lines, "the launcher's here-document does not hold launcher.py"
    return lines[:start] + lines[end + 2 :], ""


def script_problems(
    script: str, options: UserOptions, part: PartitionLimits, admin_options: list[str]
) -> list[str]:
    """What in ``script`` departs from the template's shapes for ``options`` ([] if nothing).

    - every ``#SBATCH`` line is exactly one ``--name[=value]`` argument, the options in the
      template's order, the user's values exactly as validated;
    - every shell line splits into exactly the intended words, with no unquoted metacharacter;
    - no extra line anywhere.
    """
    problems: list[str] = []
    lines = script.split("\n")
    if lines[-1] == "":
        lines = lines[:-1]
    if not lines or lines[0] != "#!/bin/bash":
        return [f"first line is not #!/bin/bash: {lines[:1]!r}"]
    end = next((i for i, ln in enumerate(lines) if i and not ln.startswith("#SBATCH ")), None)
    if end is None:
        return ["no shell lines after the #SBATCH block"]
    shell, launcher_problem = _without_launcher(lines[end:])
    if launcher_problem:
        return [launcher_problem]
    header, body = lines[1:end], [ln for ln in shell if ln.strip()]

    for line in header:
        if not SBATCH_LINE_RE.fullmatch(line):
            problems.append(f"#SBATCH line of an unexpected shape: {line!r}")
    if problems:
        return problems
    args = [sbatch_argument(line) for line in header]
    # the user's extra options come first: every later line (the hub's, the admin's) wins
    user = len(options.options)
    if args[:user] != list(options.options):
        problems.append(f"#SBATCH arguments {args[:user]} != the user's {options.options}")
    args = args[user:]
    names = [arg.split("=", 1)[0] for arg in args]
    fixed = ["--job-name", "--chdir", "--export", "--get-user-env", "--output"]
    if names[:5] != fixed:
        problems.append(f"fixed #SBATCH lines differ: {names[:5]}")
    wanted = [
        f"--partition={options.partition}",
        f"--time={options.runtime}",
        f"--cpus-per-task={options.nprocs}",
    ]
    if options.memory:
        wanted.append(f"--mem={options.memory}")
    if gres := part.gres_for(options.ngpus, options.gpu_type):
        wanted.append(f"--gres={gres}")
    if options.reservation:
        wanted.append(f"--reservation={options.reservation}")
    if options.account:
        wanted.append(f"--account={options.account}")
    if options.qos:
        wanted.append(f"--qos={options.qos}")
    wanted += admin_options
    if args[5:] != wanted:
        problems.append(f"#SBATCH arguments {args[5:]} != {wanted}")

    expected = _expected_body(options, part)
    if len(body) != len(expected) + 1:
        problems.append(f"{len(body)} shell lines, expected {len(expected) + 1}: {body}")
    for line, words in zip(body, expected, strict=False):
        if _shell_words(line) != words:
            problems.append(f"shell line {line!r} is not {words}")
    last = _shell_words(body[-1]) if body else []
    if not last or last[0] != "srun" or not any("jupyterhub-singleuser" in w for w in last):
        problems.append(f"last line does not start the server: {body[-1:]!r}")
    for line in body:
        outside = _outside_single_quotes(line)
        if outside is None:
            problems.append(f"unbalanced quote: {line!r}")
        elif not UNQUOTED_OK_RE.fullmatch(
            outside.replace('"$PATH"', "").replace('"$MOSS_LAUNCHER"', "")
        ):
            problems.append(f"unquoted metacharacter: {line!r}")
    return problems


# ---------------------------------------------------------------------------------------------
# Hostile values

#: Adversarial pieces from the issue: huge and negative numbers, unicode, NUL, newlines, shell
#: metacharacters, sbatch option injection, path traversal, other hosts.
HOSTILE_PIECES = [
    "\x00",
    "\n",
    "\r\n",
    "\n#SBATCH --uid=0\n",
    "\u2028",
    "\x85",
    "\t",
    " ",
    ";",
    "$(id)",
    "`id`",
    "${HOME}",
    "'",
    '"',
    "\\",
    "#",
    "|",
    "&&",
    ">",
    "*",
    "~",
    "..",
    "../../etc/passwd",
    "/../../../root",
    "//evil.example",
    "https://evil.example/",
    "/\\evil.example",
    "é",
    "🙂",
    "\u212a",  # KELVIN SIGN
    "\u0663",  # ARABIC-INDIC DIGIT THREE
    "\uff11",  # FULLWIDTH DIGIT ONE
    "\u00a0",
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "9" * 40,
    "-1",
    "-9999999999",
    "2147483648",
    "1e9",
    "0x10",
    "--uid=0",
    "--wrap=id",
    "-p debug",
    "--parti=debug",
    "--export=ALL",
    "--output=/etc/passwd",
    "<script>alert(1)</script>",
    "{{ 7*7 }}",
]

#: Values a person or a script would send; accepted in most combinations.
PLAUSIBLE: dict[str, list[Any]] = {
    "partition": ["cpu", "gpu", "debug"],
    "nprocs": ["1", "2", "8", 4],
    "ngpus": ["0", "1", "2", 1],
    # dev/cluster's single layout has one GPU type: a type is refused there, "" is any type
    "gpu_type": ["", "fake", "other"],
    "memory": ["512M", "2G", "0", "1000"],
    "runtime": ["30", "0:30:00", "1:00:00", "1-0"],
    "reservation": ["", "maint_1"],
    "options": ["--comment=x", "--comment='a b; $(id)'", "--exclusive", "--nice=5", ""],
    "output": ["true", "false", "on", ""],
    "default_url": ["/lab", "/tree", "/lab?reset", ""],
    "root_dir": ["/tmp", "~", "~/work", "/tmp/a b", ""],
    "environment_id": ["default", "second", ""],
    "environment_path": ["/opt/moss-jobenv/bin", ""],
    "environment_modules": ["python/3.11", "gcc cuda/12", ""],
    # on the accounting cluster alice has physics and chemistry; geology is nobody's
    "account": ["physics", "chemistry", "geology", ""],
    "qos": ["normal", "short", "long", "gpu", ""],
}

#: Keys that are not spawn options: refused by name (JupyterHub keeps ``next``,
#: ``display_name``, ``_xsrf`` for itself, so those are not sent).
UNKNOWN_KEYS = ["nprocs_", "NPROCS", "exec_prefix", "cmd", "__class__", "é", "user_options"]


def hostile_text(field: str) -> st.SearchStrategy[str]:
    good = [v for v in PLAUSIBLE[field] if isinstance(v, str)]
    return st.one_of(
        st.sampled_from(HOSTILE_PIECES),
        st.text(max_size=24),
        st.builds(
            lambda a, b, c: a + b + c,
            st.sampled_from(good),
            st.sampled_from(HOSTILE_PIECES),
            st.sampled_from(good),
        ),
    )


@st.composite
def hostile_request(draw, *, json_values: bool = False, min_hostile: int = 0) -> dict[str, Any]:
    """A spawn request: plausible values, ``min_hostile`` to three of them hostile, sometimes an
    unknown key. With ``json_values``, hostile values may also be numbers, booleans, null, lists
    and objects (what the REST API can carry)."""
    raw: dict[str, Any] = {"partition": draw(st.sampled_from(PLAUSIBLE["partition"]))}
    for name in draw(st.sets(st.sampled_from(FIELD_NAMES[1:]), max_size=5)):
        raw[name] = draw(st.sampled_from(PLAUSIBLE[name]))
    if not json_values:
        raw = {k: str(v) for k, v in raw.items()}
    hostile = draw(
        st.lists(st.sampled_from(FIELD_NAMES), min_size=min_hostile, max_size=3, unique=True)
    )
    for name in hostile:
        values = hostile_text(name)
        if json_values:
            values = st.one_of(
                values,
                st.integers(min_value=-(2**64), max_value=2**64),
                st.booleans(),
                st.none(),
                st.floats(allow_nan=False, allow_infinity=False),
                st.lists(st.text(max_size=4), max_size=2),
                st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=1),
            )
        raw[name] = draw(values)
    if draw(st.integers(0, 9)) == 0:
        raw[draw(st.sampled_from(UNKNOWN_KEYS))] = "1"
    return raw


# ---------------------------------------------------------------------------------------------
# Faults


def slurmctld_pid(state_dir: str) -> int:
    """The controller's pid, from dev/cluster's pid file, checked to be slurmctld."""
    pid = int(Path(state_dir, "run", "slurmctld.pid").read_text().strip())
    name = Path(f"/proc/{pid}/comm").read_text().strip()
    assert name == "slurmctld", f"pid {pid} is {name}, not slurmctld"
    return pid


@contextlib.contextmanager
def stopped_slurmctld(state_dir: str) -> Iterator[int]:
    """slurmctld SIGSTOPped for the block (it then answers nothing); SIGCONT always after."""
    pid = slurmctld_pid(state_dir)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(math.ceil(fraction * len(ordered)) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


__all__ = [
    "CLUSTER_PARTITIONS",
    "CLUSTER_POLICY",
    "HOSTILE_PIECES",
    "SbatchCall",
    "SbatchRecorder",
    "cancel_jobs_named",
    "cluster_config",
    "hostile_request",
    "jobs_named",
    "live_limits",
    "percentile",
    "script_problems",
    "slurmctld_pid",
    "stopped_slurmctld",
    "unique_job_name",
]
