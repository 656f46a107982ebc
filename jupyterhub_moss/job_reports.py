"""What a user is told about their Slurm job, and what is read from Slurm's answers for it.

- :class:`SpawnFailed`: the error a spawn ends with, in plain text for the user;
- :func:`pending_message`: a pending job's reason in words, with its expected start;
- :func:`ended_job_summary`: how a job ended, in Slurm's words and plain ones
  (:data:`ENDED_STATES`), for the spawn's failure message and the log of a server that stopped;
- :func:`job_failure_message`: a job that ended before Jupyter started, with the last lines of
  its output file (:func:`tail_output_file`, at the path :func:`job_output_path` gives);
- :func:`parse_job_id` and :func:`slurm_error_text`: the job id ``sbatch --parsable`` printed,
  and Slurm's own words from a command that failed.
"""

from __future__ import annotations

import os
import re
import stat
from datetime import datetime

from tornado import web

from .slurm.commands import SlurmCommandError
from .slurm.models import JOB_GONE, JobStatus

__all__ = [
    "ENDED_STATES",
    "LIMIT_REASON_PREFIXES",
    "PENDING_REASONS",
    "SpawnFailed",
    "ended_job_summary",
    "final_exit_code",
    "job_failure_message",
    "job_output_path",
    "parse_job_id",
    "pending_message",
    "slurm_error_text",
    "tail_output_file",
]

#: squeue's pending reasons, in words a user understands. Unknown reasons are shown as they are.
PENDING_REASONS = {
    "None": "Waiting in the queue",
    "Resources": "Waiting for resources",
    "Priority": "Waiting behind jobs with a higher priority",
    "Dependency": "Waiting for a job it depends on",
    "BeginTime": "Waiting for its start time",
    "Reservation": "Waiting for its reservation to start",
    "ReqNodeNotAvail": "Waiting: the nodes it needs are not available",
    "NodeDown": "Waiting: a node it needs is down",
    "PartitionDown": "Waiting: the partition is down",
    "PartitionInactive": "Waiting: the partition is inactive",
    "PartitionNodeLimit": "Waiting: it asks for more than the partition allows",
    "PartitionTimeLimit": "Waiting: it asks for more time than the partition allows",
    "JobHeldUser": "Held by its owner",
    "JobHeldAdmin": "Held by an administrator",
    "launch failed requeued held": "Held after a failed launch",
}
#: Reason prefixes of account and QOS limits (AssocGrpCpuLimit, QOSMaxJobsPerUserLimit...).
LIMIT_REASON_PREFIXES = ("Assoc", "QOS", "MaxJobs", "MaxCpu", "MaxMem")

#: Slurm's final job states, in words a user understands. Others are shown as they are.
ENDED_STATES = {
    "COMPLETED": "its commands ended without an error",
    "FAILED": "its commands ended with an error",
    "CANCELLED": "cancelled by its owner or an administrator",
    "TIMEOUT": "time limit reached",
    "OUT_OF_MEMORY": "out of memory: it used more memory than it asked for",
    "NODE_FAIL": "its node failed",
    "PREEMPTED": "preempted to make room for a job with a higher priority",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "its --deadline passed before it could end",
    # Ours, not Slurm's: say what we know, and that we do not know more.
    JOB_GONE: "Slurm no longer knows the job and has no record of how it ended",
}

_JOB_ID = re.compile(r"^(\d+)(?:;[^\s;]+)?$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: At most this much of the end of a job's output file is read, however large the file.
_TAIL_BYTES = 64 * 1024


class SpawnFailed(web.HTTPError):
    """A spawn that failed for a reason Slurm gave. The message is plain text for the user.

    JupyterHub shows ``jupyterhub_message`` on the spawn-pending page, the progress stream and the
    re-rendered form, and answers REST API spawns with ``status``.
    """

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(status, message, reason="Spawn failed")
        self.jupyterhub_message = message

    def __str__(self) -> str:
        return self.jupyterhub_message


# -- a job waiting in the queue -------------------------------------------------------------------


def _clock_time(moment: datetime, now: datetime | None = None) -> str:
    local = moment.astimezone()
    today = (now or datetime.now().astimezone()).date()
    if local.date() == today:
        return local.strftime("%H:%M")
    return local.strftime("%a %d %b %H:%M")


def pending_message(status: JobStatus, now: datetime | None = None) -> str:
    """``"Waiting for resources (Resources); expected start 14:05"`` for a pending job."""
    reason = status.reason or "None"
    words = PENDING_REASONS.get(reason)
    if words is None and reason.startswith(LIMIT_REASON_PREFIXES):
        words = "Waiting: a limit of your account or QOS is reached"
    text = words or "Waiting in the queue"
    if reason != "None":
        text += f" ({reason})"
    if status.expected_start is not None:
        text += f"; expected start {_clock_time(status.expected_start, now)}"
    return text


# -- a job that ended before Jupyter started ------------------------------------------------------


def _clean(text: str, width: int = 300) -> str:
    line = _CONTROL.sub("", text.replace("\t", " ")).rstrip()
    return line if len(line) <= width else line[: width - 1] + "…"


def tail_output_file(path: str, owner_uid: int, lines: int = 10) -> list[str]:
    """The last ``lines`` lines of a job's output file, read by the hub (usually root).

    ``path`` must be the one the hub itself put in the batch script (:func:`job_output_path`),
    never one Slurm reports: a job's owner can change its ``StdOut`` with ``scontrol update``
    while it pends. The file must be a regular file owned by the job's user, opened without
    following a symbolic link, without becoming a controlling terminal and without blocking on
    a FIFO: a user must not get the hub to show them a file they cannot read themselves (say
    ``~/slurm-12.out`` made a link to ``/etc/shadow``) nor to hang. At most the last 64 KiB are
    read. Returns ``[]`` when the file is missing, unreadable or not acceptable.
    """
    if lines <= 0 or not path or not os.path.isabs(path) or path == "/dev/null":
        return []
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != owner_uid:
            return []
        handle.seek(max(info.st_size - _TAIL_BYTES, 0))
        text = handle.read(_TAIL_BYTES).decode("utf-8", errors="replace")
    kept = [_clean(line) for line in text.splitlines()]
    kept = [line for line in kept if line.strip()]
    return kept[-lines:]


def job_output_path(home_dir: str, job_id: str, saved: bool = True) -> str:
    """The job's output file as the hub's batch script names it (``--output``), for job
    ``job_id``: ``{home}/slurm-{job_id}.out`` when the user chose to keep it, else /dev/null.

    It must stay in step with ``output_path`` in :func:`.batch_script.build_script_context`
    (a unit test renders both).
    """
    if not saved:
        return "/dev/null"
    home = home_dir.rstrip("/") or "/"
    return f"{home.rstrip('/')}/slurm-{job_id}.out"


def _exit_words(exit_code: str) -> tuple[str, str]:
    """Slurm's ``CODE:SIGNAL`` as (" with exit code 3", "signal 9"); blanks for 0 or unknown."""
    code, _, signal = exit_code.partition(":")
    code_words = f" with exit code {code}" if code.isdigit() and int(code) else ""
    signal_words = f"signal {signal}" if signal.isdigit() and int(signal) else ""
    return code_words, signal_words


def ended_job_summary(state: str, reason: str = "None", exit_code: str = "") -> str:
    """How a job ended: ``"TIMEOUT (time limit reached)"``, ``"FAILED with exit code 3 (its
    commands ended with an error)"``. ``exit_code`` is Slurm's ``CODE:SIGNAL``."""
    code_words, signal_words = _exit_words(exit_code)
    details = [ENDED_STATES.get(state, ""), signal_words]
    if reason and reason != "None" and state != JOB_GONE:  # JOB_GONE's reason is ours
        details.append(reason)
    shown = [detail for detail in details if detail]
    return state + code_words + (f" ({'; '.join(shown)})" if shown else "")


def final_exit_code(status: JobStatus) -> str:
    """The exit code, as Slurm prints it (``3:0``), of a job the accounting saw end."""
    ended = status.ended
    if ended is None or ended.exit_code is None:
        return ""
    return f"{ended.exit_code}:{ended.signal or 0}"


#: When a spawn's job ended: before its server listened, or after it listened (its port came)
#: and before it answered HTTP.
BEFORE_JUPYTER_STARTED = "before Jupyter started"
BEFORE_JUPYTER_ANSWERED = "after Jupyter started listening and before it answered"


def job_failure_message(
    job_id: str,
    state: str,
    reason: str,
    exit_code: str = "",
    output_path: str = "",
    output_lines: list[str] | None = None,
    when: str = BEFORE_JUPYTER_STARTED,
) -> str:
    """What a user is told when the job ended during the spawn; ``when`` says at which step."""
    summary = ended_job_summary(state, reason, exit_code)
    text = f"Slurm job {job_id} ended {when}: {summary}"
    if output_lines:
        text += f". Last lines of {output_path}:\n" + "\n".join(output_lines)
    elif not output_path or output_path == "/dev/null":
        text += ". The job's output was not saved; tick the output option to keep a log."
    return text


# -- Slurm's answers ------------------------------------------------------------------------------


def parse_job_id(output: str) -> str:
    """The job id printed by ``sbatch --parsable`` (``1234`` or ``1234;cluster``)."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    match = _JOB_ID.match(lines[-1]) if lines else None
    if match is None:
        raise ValueError(f"sbatch printed no job id: {output.strip()[:200]!r}")
    return match.group(1)


def slurm_error_text(error: SlurmCommandError) -> str:
    """Slurm's own words from a failed command: its ``error:`` lines without the prefix."""
    lines = []
    for line in error.stderr.splitlines():
        line = line.strip()
        if not line:
            continue
        line = re.sub(r"^\w+: (?:error|fatal): ", "", line)
        lines.append(_clean(line))
    return " ".join(lines[:5]) or str(error)
