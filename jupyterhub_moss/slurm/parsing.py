"""Pure functions that turn Slurm's text output into :mod:`jupyterhub_moss.slurm.models` objects.

Each parser goes with the exact command and format string it was written for (the ``*_ARGS`` and
``*_FORMAT`` constants below); the commands live in one place so that what we run and what we
parse cannot drift apart. Parsers are tolerant: a line they cannot read is logged and skipped,
never a crash, because one odd node must not take the spawn page down.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..log_safe import log_safe
from .models import JobStatus, PartitionInfo, Reservation, StartEstimate

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Durations


def _duration_grammar(days: str, lead: str, later: str) -> re.Pattern[str]:
    """Slurm's duration grammar, each field matching the given digits pattern: ``days`` for
    ``D``, ``lead`` for the first field without days, ``later`` for every other field."""
    return re.compile(
        rf"(?P<days>{days})-(?P<dh>{later})(?::(?P<dm>{later})(?::(?P<ds>{later}))?)?"
        rf"|(?P<a>{lead})(?::(?P<b>{later})(?::(?P<c>{later}))?)?"
    )


_DURATION = _duration_grammar("[0-9]+", "[0-9]+", "[0-9]+")
# The same grammar with each field's length bounded: for text a user typed, so that a huge
# number is refused as malformed rather than read.
_BOUNDED_DURATION = _duration_grammar("[0-9]{1,4}", "[0-9]{1,7}", "[0-9]{1,5}")


def slurm_duration_seconds(text: str, *, bounded: bool = False) -> int:
    """Seconds in a Slurm duration, with Slurm's own reading of each form.

    Accepts every spelling Slurm prints or reads: ``D-HH:MM:SS``, ``D-HH:MM``, ``D-HH``,
    ``HH:MM:SS``, ``MM:SS`` and ``M`` (minutes). Note the trap this follows from Slurm: in
    ``sbatch --time``, ``N`` means *N minutes* and ``A:B`` means *A minutes and B seconds*, not
    hours and minutes. ``bounded`` refuses fields longer than Slurm could mean (days over 4
    digits, a leading field over 7, any other over 5). Raises :class:`ValueError` for anything
    else, ``infinite``/``UNLIMITED`` included (see :func:`parse_slurm_duration`).
    """
    grammar = _BOUNDED_DURATION if bounded else _DURATION
    match = grammar.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a Slurm duration: {text!r}")
    part = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    if "days" in part:
        days, hours = part["days"], part["dh"]
        minutes, seconds = part.get("dm", 0), part.get("ds", 0)
    elif "c" in part:
        days, hours, minutes, seconds = 0, part["a"], part["b"], part["c"]
    else:
        days, hours, minutes, seconds = 0, 0, part["a"], part.get("b", 0)
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_slurm_duration(text: str) -> int | None:
    """Seconds in a duration Slurm printed, ``None`` for no limit (``infinite``, ``UNLIMITED``).

    Otherwise :func:`slurm_duration_seconds`; raises :class:`ValueError` for anything else.
    """
    if text.strip().lower() in ("infinite", "unlimited"):
        return None
    return slurm_duration_seconds(text)


def format_slurm_duration(seconds: int) -> str:
    """``D-HH:MM:SS`` (or ``HH:MM:SS`` under a day), which sbatch ``--time`` reads unambiguously."""
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds}")
    minutes, secs = divmod(int(seconds), 60)
    hours, mins = divmod(minutes, 60)
    days, hrs = divmod(hours, 24)
    if days:
        return f"{days}-{hrs:02d}:{mins:02d}:{secs:02d}"
    return f"{hrs:02d}:{mins:02d}:{secs:02d}"


# ---------------------------------------------------------------------------------------------
# GRES

#: Key used in GPU dicts for GPUs configured without a type (``gpu:2``). An empty string rather
#: than ``"gpu"``: it cannot collide with a real type, and a request for it is just ``gpu:N``.
UNTYPED_GPU = ""


def parse_gres(text: str) -> dict[str, int]:
    """GPUs in a GRES string, by type: ``"gpu:a100:2,gpu:1g.5gb:7(S:0-1),shard:4"`` →
    ``{"a100": 2, "1g.5gb": 7}``.

    Handles ``gpu:TYPE:N``, ``gpu:N`` (type :data:`UNTYPED_GPU`), several entries, MIG-style
    types, ``(S:…)``/``(IDX:…)`` suffixes (whose lists may hold commas), ``(null)`` and the
    ``GresUsed`` form ``gpu:TYPE:N(IDX:…)``. Other GRES (``shard``, ``mps``, licences...) are
    ignored. Malformed entries are logged and skipped.
    """
    gpus: dict[str, int] = {}
    for entry in _split_top_level(text.strip()):
        name, _, rest = entry.partition(":")
        if name.strip() != "gpu":
            continue
        gpu_type, count = _gpu_type_and_count(rest)
        if count is None:
            log.warning("skipping unreadable GRES entry %s", log_safe(repr(entry)))
            continue
        gpus[gpu_type] = gpus.get(gpu_type, 0) + count
    return gpus


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses, dropping the parenthesised suffixes."""
    entries, current, depth = [], [], 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            entries.append("".join(current))
            current = []
        elif depth == 0:
            current.append(char)
    entries.append("".join(current))
    return [entry.strip() for entry in entries if entry.strip()]


_COUNT = re.compile(r"^(\d+)([KMG]?)$", re.IGNORECASE)
_MULTIPLIER = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _gpu_type_and_count(rest: str) -> tuple[str, int | None]:
    """``"a100:2"`` → ("a100", 2); ``"2"`` → ("", 2); ``""`` → ("", 1); ``"a100"`` → ("a100", 1)."""
    if not rest:
        return UNTYPED_GPU, 1
    gpu_type, _, count_text = rest.rpartition(":")
    match = _COUNT.match(count_text)
    if match is None:
        if gpu_type:  # "a:b" where b is not a number
            return UNTYPED_GPU, None
        # "gpu:TYPE" with no count means one GPU of that type
        return count_text, 1
    count = int(match.group(1)) * _MULTIPLIER[match.group(2).lower()]
    if gpu_type in ("", "(null)"):
        gpu_type = UNTYPED_GPU
    return gpu_type, count


# ---------------------------------------------------------------------------------------------
# Partitions: one sinfo call, node-oriented

#: The fields asked from sinfo, in order. ``:0`` means "no width": sinfo then neither pads nor
#: truncates (a fixed width silently cuts long GRES strings), and ``|`` separates fields.
SINFO_FIELDS = (
    "Partition",  # name, with "*" after the default partition
    "Available",  # up / down / drain / inactive
    "NodeList",
    "Nodes",
    "NodeAIOT",  # nodes allocated/idle/other/total
    "CPUsState",  # CPUs allocated/idle/other/total
    "CPUs",  # per node
    "MaxCPUsPerNode",  # partition limit, or UNLIMITED
    "Memory",  # per node, MB
    "Time",  # partition time limit
    "Gres",
    "GresUsed",  # only in --Format, not in -o: the reason this uses -O
    "StateLong",
)
SINFO_FORMAT = ",".join(f"{name}:0|" for name in SINFO_FIELDS[:-1]) + f",{SINFO_FIELDS[-1]}:0"

#: ``sinfo`` arguments for :func:`parse_sinfo`. ``-N`` prints one line per (node, partition), so
#: every node is counted exactly, however its partition mixes hardware, and ``GresUsed`` is that
#: node's own. The parser still folds grouped (non ``-N``) lines correctly, except that it then
#: multiplies a line's ``GresUsed`` by its node count. One sinfo costs slurmctld one partition-info
#: and one node-info RPC, with or without ``-N``. ``--noconvert`` keeps memory in plain MB.
SINFO_ARGS = ("-h", "--noconvert", "-N", "-O", SINFO_FORMAT)

# Node states in which no new job can start there, as sinfo spells them: long (``StateLong``,
# ``%T``) and short (``%t``), lower case, flags stripped. "drain" is the short drained, "drng"
# draining, "failg" failing, "futr" future, "unk" unknown.
_UNUSABLE_NODE_STATES = frozenset(
    {
        *("down", "drained", "draining", "drain", "drng", "fail", "failing", "failg"),
        *("future", "futr", "inval", "maint", "unknown", "unk", "not_responding"),
    }
)
_DRAIN_NODE_STATES = frozenset({"drained", "draining", "drain", "drng"})
# Suffixes sinfo adds to a state: "*" not responding, "~" powered off, "#" powering up,
# "%" powering down, "!" pending power down, "$" maintenance reservation, "@" reboot pending,
# "^" reboot issued, "-" planned by backfill.
_STATE_FLAGS = "*~#%!$@^-"


def _node_state_base(state: str) -> str:
    """``"Drained*"`` → ``"drained"``: lower case, sinfo's flag suffixes stripped."""
    return state.strip().lower().rstrip(_STATE_FLAGS)


def node_state_usable(state: str) -> bool:
    """False for a node state (as sinfo prints it, long or short) in which no new job can
    start: down, drained/draining, failing, in maintenance, not responding (``*``), unknown...

    The one judgement of a node's state: the partition's folded state and the availability
    table's "some nodes unavailable" both use it.
    """
    if state.strip().endswith("*"):
        return False
    base = _node_state_base(state)
    return bool(base) and base not in _UNUSABLE_NODE_STATES


def node_state_draining(state: str) -> bool:
    """True for a drained or draining node (``drained``, ``draining``, ``drain``, ``drng``)."""
    return _node_state_base(state) in _DRAIN_NODE_STATES


@dataclass
class _PartitionTotals:
    name: str
    is_default: bool = False
    availability: str = "up"
    max_runtime: int | None = None
    max_cpus_per_node: int | None = None
    nodes_idle: int = 0
    nodes_total: int = 0
    nodes_usable: int = 0
    cpus_idle: int = 0
    cpus_total: int = 0
    cpus_per_node: int = 0
    memory_per_node_mb: int = 0
    gpus_per_node: dict[str, int] = field(default_factory=dict)
    gpus_per_node_total: int = 0
    gpus_total: int = 0
    gpus_used: int = 0
    node_states: set[str] = field(default_factory=set)
    any_drain: bool = False

    def add_line(self, values: dict[str, str]) -> None:
        nodes = _int_or(values["Nodes"], 1)
        nodes_alloc, nodes_idle, nodes_other, nodes_total = _aiot(values["NodeAIOT"])
        _, cpus_idle, _, cpus_total = _aiot(values["CPUsState"])
        del nodes_alloc, nodes_other
        self.nodes_idle += nodes_idle
        self.nodes_total += nodes_total or nodes
        self.cpus_idle += cpus_idle
        self.cpus_total += cpus_total
        state = values["StateLong"].strip().lower()
        self.node_states.add(state)
        if node_state_usable(state):
            self.nodes_usable += nodes_total or nodes
        elif node_state_draining(state):
            self.any_drain = True
        # The largest node is what a single-node job can get, so that is the per-node figure.
        self.cpus_per_node = max(self.cpus_per_node, _int_or(values["CPUs"].rstrip("+"), 0))
        self.memory_per_node_mb = max(
            self.memory_per_node_mb, _int_or(values["Memory"].rstrip("+"), 0)
        )
        gres = parse_gres(values["Gres"])
        for gpu_type, count in gres.items():
            self.gpus_per_node[gpu_type] = max(self.gpus_per_node.get(gpu_type, 0), count)
        self.gpus_per_node_total = max(self.gpus_per_node_total, sum(gres.values()))
        self.gpus_total += sum(gres.values()) * nodes
        self.gpus_used += sum(parse_gres(values["GresUsed"]).values()) * nodes

    def build(self) -> PartitionInfo:
        cpus_per_node = self.cpus_per_node
        if self.max_cpus_per_node is not None:
            cpus_per_node = min(cpus_per_node, self.max_cpus_per_node)
        return PartitionInfo(
            name=self.name,
            state=self._state(),
            is_default=self.is_default,
            nodes_idle=self.nodes_idle,
            nodes_total=self.nodes_total,
            cpus_idle=self.cpus_idle,
            cpus_total=self.cpus_total,
            cpus_per_node=cpus_per_node,
            memory_per_node_mb=self.memory_per_node_mb,
            max_runtime=self.max_runtime,
            gpus_per_node=dict(sorted(self.gpus_per_node.items())),
            gpus_total=self.gpus_total,
            gpus_used=self.gpus_used,
            node_states=tuple(sorted(self.node_states)),
            gpus_per_node_total=self.gpus_per_node_total,
        )

    def _state(self) -> str:
        """The partition's own availability, except that an "up" partition none of whose nodes
        can take a job shows as "drain" (if any node is draining/drained) or "down"."""
        if self.availability != "up":
            return self.availability
        if self.nodes_usable == 0:
            return "drain" if self.any_drain else "down"
        return "up"


def _int_or(text: str, default: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return default


def _aiot(text: str) -> tuple[int, int, int, int]:
    parts = text.strip().split("/")
    if len(parts) != 4:
        raise ValueError(f"not an A/I/O/T figure: {text!r}")
    a, i, o, t = (int(p) for p in parts)
    return a, i, o, t


def parse_sinfo(text: str) -> dict[str, PartitionInfo]:
    """Partitions from the output of ``sinfo`` with :data:`SINFO_ARGS`: the default first,
    then by name.

    Every line of a partition counts: node and CPU counts are summed, and the per-node figures
    (CPUs, memory, GPUs per type) are those of the largest node, capped by the partition's
    ``MaxCPUsPerNode``. Per-node figures include nodes that are down or drained, so the form's
    limits do not flap with node states; availability is in ``state`` and the idle counts.
    """
    totals: dict[str, _PartitionTotals] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            _fold_sinfo_line(totals, line)
        except (ValueError, KeyError) as error:
            log.warning(
                "skipping sinfo line %d %s: %s", number, log_safe(repr(line)), log_safe(error)
            )
    # -N lists nodes, not partitions, in node order: sort so the order means something.
    ordered = sorted(totals.values(), key=lambda p: (not p.is_default, p.name))
    return {partition.name: partition.build() for partition in ordered}


def _fold_sinfo_line(totals: dict[str, _PartitionTotals], line: str) -> None:
    parts = line.split("|")
    if len(parts) != len(SINFO_FIELDS):
        raise ValueError(f"expected {len(SINFO_FIELDS)} fields, got {len(parts)}")
    values = dict(zip(SINFO_FIELDS, (part.strip() for part in parts), strict=True))
    raw_name = values["Partition"]
    name = raw_name.rstrip("*")
    if not name:
        raise ValueError("no partition name")
    partition = totals.get(name)
    if partition is None:
        partition = totals[name] = _PartitionTotals(name)
        partition.availability = values["Available"].lower()
        partition.max_runtime = parse_slurm_duration(values["Time"])
        max_cpus = values["MaxCPUsPerNode"]
        partition.max_cpus_per_node = None if max_cpus.upper() == "UNLIMITED" else int(max_cpus)
    partition.is_default = partition.is_default or raw_name.endswith("*")
    partition.add_line(values)


# ---------------------------------------------------------------------------------------------
# Reservations

#: ``scontrol`` arguments for :func:`parse_reservations`.
RESERVATION_ARGS = ("show", "reservation", "-o")

# A key=value field of scontrol's one-line output; values may hold spaces (Comment=...), so a
# value runs until the next " Key=". Keys may hold ":" and "/" (AllocNode:Sid=, CPUs/Task=).
_KEY = r"[A-Za-z][A-Za-z0-9_:/]*"
_FIELD = re.compile(rf"(?:^|\s)({_KEY})=(.*?)(?=\s+{_KEY}=|\s*$)")


def parse_scontrol_fields(line: str) -> dict[str, str]:
    """``Key=value`` pairs of one ``scontrol show ... -o`` line."""
    return {match.group(1): match.group(2).strip() for match in _FIELD.finditer(line.strip())}


def parse_slurm_time(text: str) -> datetime | None:
    """A Slurm timestamp (``2026-11-26T10:00:00``, the cluster's local time) as aware UTC.

    ``None`` for ``N/A``, ``Unknown``, ``None``, ``(null)`` and empty text. The hub and the
    Slurm commands share the machine's time zone, so the naive time is read as local.
    """
    value = text.strip()
    if value.lower() in ("", "n/a", "unknown", "none", "(null)"):
        return None
    return datetime.fromisoformat(value).astimezone(timezone.utc)


def _name_list(text: str) -> tuple[str, ...]:
    if text.strip() in ("", "(null)"):
        return ()
    return tuple(name.strip() for name in text.split(",") if name.strip())


def parse_reservations(text: str) -> list[Reservation]:
    """Reservations from ``scontrol show reservation -o`` (one line each).

    "No reservations in the system" gives ``[]``; unreadable lines are logged and skipped.
    """
    reservations = []
    for line in text.splitlines():
        if not line.strip() or line.strip().startswith("No reservations"):
            continue
        fields = parse_scontrol_fields(line)
        try:
            reservations.append(_reservation(fields))
        except (KeyError, ValueError) as error:
            log.warning("skipping reservation line %s: %s", log_safe(repr(line)), log_safe(error))
    return reservations


def _reservation(fields: dict[str, str]) -> Reservation:
    partition = fields.get("PartitionName", "")
    return Reservation(
        name=fields["ReservationName"],
        state=fields.get("State", "").upper(),
        start=parse_slurm_time(fields.get("StartTime", "")),
        end=parse_slurm_time(fields.get("EndTime", "")),
        users=_name_list(fields.get("Users", "")),
        accounts=_name_list(fields.get("Accounts", "")),
        partition=None if partition in ("", "(null)") else partition,
        nodes="" if fields.get("Nodes", "") == "(null)" else fields.get("Nodes", ""),
        flags=tuple(flag.upper() for flag in _name_list(fields.get("Flags", ""))),
    )


def _listed(name: str, entries: Collection[str]) -> str | None:
    """ "allowed" if listed, "excluded" if listed with "-", "not listed" if only others are
    excluded, None if there is no list or it names others only."""
    if not entries:
        return None
    if name in entries:
        return "allowed"
    if f"-{name}" in entries:
        return "excluded"
    if all(entry.startswith("-") for entry in entries):
        return "not listed"
    return None


def usable_reservations(
    reservations: Iterable[Reservation],
    username: str,
    now: datetime,
    accounts: Collection[str] | None = None,
) -> list[Reservation]:
    """Reservations ``username`` may use now or later, in start order.

    Kept: not ended (active or upcoming), no ``MAINT`` flag, and the user allowed: listed in
    ``Users``, or the ``Users`` list only excludes others (``-bob``). A reservation that grants
    access by ``Accounts`` only is kept when the user's ``accounts`` are unknown (``None``, the
    default: finding them costs an accounting query per user); Slurm itself refuses a job in
    a reservation the user may not use, and that error reaches the user. With ``accounts``
    given, the same allow/exclude rules apply to them.
    """
    kept = []
    for reservation in reservations:
        if "MAINT" in reservation.flags:
            continue
        if reservation.end is not None and reservation.end <= now:
            continue
        if _user_may_use(reservation, username, accounts):
            kept.append(reservation)
    far_past = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(kept, key=lambda r: (r.start or far_past, r.name))


def _user_may_use(
    reservation: Reservation, username: str, accounts: Collection[str] | None
) -> bool:
    by_user = _listed(username, reservation.users)
    if by_user == "excluded":
        return False
    if by_user in ("allowed", "not listed"):
        return True
    if reservation.users:  # a list of other users, and accounts cannot add to it
        return False
    if not reservation.accounts:
        return True  # no user or account list: e.g. a group-based reservation; let Slurm judge
    if accounts is None:
        return True  # unknown accounts: show it, and let sbatch judge
    verdicts = {_listed(account, reservation.accounts) for account in accounts}
    if "excluded" in verdicts:
        return False
    return bool(verdicts & {"allowed", "not listed"})


# ---------------------------------------------------------------------------------------------
# sbatch --test-only

_TEST_ONLY = re.compile(
    r"Job\s+(?P<job>\d+)\s+to start at\s+(?P<start>\S+)\s+using\s+(?P<cpus>\d+)\s+processors?"
    r"\s+on nodes\s+(?P<nodes>\S+)(?:\s+in partition\s+(?P<partition>\S+))?"
)


def parse_test_only(stderr_text: str) -> StartEstimate:
    """The estimate ``sbatch --test-only`` prints on stderr::

        sbatch: Job 123 to start at 2026-11-26T10:00:00 using 4 processors on nodes c1
        in partition cpu

    Raises :class:`ValueError` when there is none (e.g. the request was refused).
    """
    match = _TEST_ONLY.search(stderr_text)
    if match is None:
        raise ValueError(f"no start estimate in {stderr_text.strip()!r}")
    start = parse_slurm_time(match.group("start"))
    if start is None:
        raise ValueError(f"no start time in {match.group(0)!r}")
    return StartEstimate(
        start=start,
        cpus=int(match.group("cpus")),
        nodes=match.group("nodes"),
        partition=match.group("partition"),
    )


# ---------------------------------------------------------------------------------------------
# Job status

#: squeue's ``-o`` fields: job id, long state, batch host, node list, start time, reason. The
#: reason comes last: it is free-ish text, so it takes whatever remains of the line.
SQUEUE_FORMAT = "%i|%T|%B|%N|%S|%r"


def squeue_args(job_ids: Iterable[str]) -> list[str]:
    """``squeue`` arguments for :func:`parse_squeue`: every state, only these jobs."""
    return ["-h", "-t", "all", "-j", ",".join(job_ids), "-o", SQUEUE_FORMAT]


def parse_squeue(text: str) -> dict[str, JobStatus]:
    """Job statuses by job id from ``squeue`` run with :func:`squeue_args`."""
    jobs: dict[str, JobStatus] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.strip().split("|", 5)
        if len(parts) != 6 or not parts[0]:
            log.warning("skipping squeue line %s", log_safe(repr(line)))
            continue
        job_id, state, batch_host, node_list, start, reason = (p.strip() for p in parts)
        state = state.upper()
        try:
            expected = parse_slurm_time(start) if state == "PENDING" else None
        except ValueError:
            expected = None
        jobs[job_id] = JobStatus(
            job_id=job_id,
            state=state,
            reason=reason or "None",
            node=_job_node(batch_host, node_list),
            expected_start=expected,
        )
    return jobs


def _job_node(batch_host: str, node_list: str) -> str:
    if batch_host and batch_host.lower() not in ("n/a", "(null)", "none"):
        return batch_host
    return first_hostname(node_list)


def first_hostname(hostlist: str) -> str:
    """First name of a Slurm host list: ``"c[01-04,07],g1"`` → ``"c01"``; ``""`` → ``""``."""
    text = hostlist.strip()
    if not text or text.lower() in ("n/a", "(null)"):
        return ""
    match = re.match(r"([^,\[]*)(?:\[([^\]]*)\])?", text)
    if match is None:  # pragma: no cover - the pattern matches any string
        return ""
    prefix, ranges = match.group(1), match.group(2)
    if ranges is None:
        return prefix
    first = ranges.split(",")[0].split("-")[0]
    return prefix + first
