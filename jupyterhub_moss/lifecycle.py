"""The Slurm job behind a single-user server: submit, wait, poll, stop, progress.

:class:`SlurmJobLifecycle` replaces batchspawner's own lifecycle, which runs every command
through a shell, asks ``squeue`` twice a second per pending spawn, reads any squeue error as
"job gone" and waits until ``start_timeout`` when a job dies early. Here:

- the batch script comes from :mod:`.batch_script`, built from the validated
  :class:`~.options.UserOptions` and the admin's ``req_*`` traits, and is piped to
  ``sbatch --parsable`` run as the user (an argument list, never a shell);
- every job state is read from one hub-wide :class:`~.slurm.jobs.JobStatusPoller`: one ``squeue``
  for all tracked jobs, however many servers run or spawns wait;
- a job that ends before its server reports a port fails the spawn at the next look, with the
  job's final state, reason and the last lines of its output file;
- progress events are plain text: the job id and partition, the Slurm reason while pending
  with the expected start, the node it runs on;
- an unanswered or failing ``squeue`` is "unknown", never "stopped".

The spawner class provides the hooks this mixin calls: :meth:`slurm_runner`,
:meth:`user_prefix`, :meth:`load_user_options` and :meth:`partition_limits`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import pwd
import re
import stat
import sys
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from batchspawner import SlurmSpawner
from sqlalchemy.orm import object_session
from tornado import web
from traitlets import Float, Integer, Unicode, default

from .batch_script import (
    ScriptSettings,
    build_script_context,
    chosen_environment,
    default_template,
    render_batch_script,
)
from .limits import PartitionLimits
from .log_safe import log_safe
from .options import UserOptions
from .slurm.commands import (
    SlurmCommandError,
    SlurmRunner,
    SlurmTimeout,
    UnsafeUsername,
    check_username,
)
from .slurm.jobs import JobStatusPoller
from .slurm.models import JobStatus
from .slurm.parsing import parse_scontrol_fields, parse_slurm_time

__all__ = [
    "JobProgress",
    "SlurmJobLifecycle",
    "SpawnFailed",
    "environment_bin",
    "job_failure_message",
    "job_output_path",
    "pending_message",
    "shared_job_poller",
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

_JOB_ID = re.compile(r"^(\d+)(?:;[^\s;]+)?$")
#: After an sbatch that timed out, how long to keep looking for the job it may still create.
UNCLAIMED_JOB_SWEEP_SECONDS = 900.0
_SWEEPS: set[asyncio.Task] = set()
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: At most this much of the end of a job's output file is read, however large the file.
_TAIL_BYTES = 64 * 1024
#: The module of batchspawner's own port-report handler, which sets any attribute a job posts.
_BATCHSPAWNER_API_MODULE = "batchspawner.api"


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


# -- the hub-wide poller ----------------------------------------------------------------------

_POLLERS: dict[tuple, JobStatusPoller] = {}


def shared_job_poller(runner: SlurmRunner, interval: float) -> JobStatusPoller:
    """The process's poller for this runner configuration, created on first use."""
    key = (runner.cache_key(), float(interval))
    poller = _POLLERS.get(key)
    if poller is None:
        poller = _POLLERS[key] = JobStatusPoller(runner, interval=interval, min_interval=1.0)
    return poller


# -- words for the user -------------------------------------------------------------------------


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


def job_failure_message(
    job_id: str,
    state: str,
    reason: str,
    exit_code: str = "",
    output_path: str = "",
    output_lines: list[str] | None = None,
) -> str:
    """What a user is told when the job ended before Jupyter started."""
    text = f"Slurm job {job_id} ended before Jupyter started: {state}"
    details = []
    if reason and reason != "None":
        details.append(reason)
    if exit_code and exit_code not in ("0:0", "(null)"):
        details.append(f"exit code {exit_code}")
    if details:
        text += f" ({', '.join(details)})"
    if output_lines:
        text += f". Last lines of {output_path}:\n" + "\n".join(output_lines)
    elif not output_path or output_path == "/dev/null":
        text += ". The job's output was not saved; tick the output option to keep a log."
    return text


def environment_bin(options: UserOptions, limits: PartitionLimits) -> str:
    """The ``bin/`` folder of the environment chosen for a spawn; "" for one given only by
    modules, or for a container image."""
    chosen = chosen_environment(options, limits)
    return "" if not chosen.path or chosen.is_container else chosen.path


def _in_folder(folder: str, program: str) -> str:
    return program if os.sep in program else os.path.join(folder, program)


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


# -- progress -------------------------------------------------------------------------------------


class JobProgress:
    """The progress events of one spawn, replayed from the start for every reader."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.finished = False
        self._changed = asyncio.Event()

    def add(self, message: str, progress: int | None = None) -> None:
        event: dict[str, Any] = {"message": message}
        if progress is not None:
            event["progress"] = progress
        self.events.append(event)
        self._wake()

    @property
    def last_message(self) -> str | None:
        return self.events[-1]["message"] if self.events else None

    def finish(self) -> None:
        self.finished = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        seen = 0
        while True:
            waiter = self._changed
            while seen < len(self.events):
                yield dict(self.events[seen])
                seen += 1
            if self.finished:
                return
            await waiter.wait()


# -- the mixin ------------------------------------------------------------------------------------


class SlurmJobLifecycle(SlurmSpawner):
    """Submit, wait for, poll and stop the Slurm job of one single-user server.

    Mixed into MOSlurmSpawner in front of batchspawner's SlurmSpawner, whose ``req_*`` traits
    it reads as the admin's settings of the batch script.
    """

    container_command = Unicode(
        "apptainer exec {image}",
        help="""
        How to run Jupyter in an environment whose ``path`` is an Apptainer/Singularity image
        (a file ending in ``.sif``). ``{image}`` is replaced by the image's path; the server's
        command follows. For Singularity: ``"singularity exec {image}"``; to bind a folder:
        ``"apptainer exec --bind /scratch {image}"``.
        """,
    ).tag(config=True)

    job_name = Unicode(
        "jupyterhub-moss",
        help="""
        Name of the Slurm jobs that run the single-user servers (``#SBATCH --job-name``), as
        shown by ``squeue``.
        """,
    ).tag(config=True)

    startup_poll_interval = Float(
        2.0,
        help="""
        Seconds between two looks at a starting job, while it is pending and until its server
        reports its port. All starting jobs share one ``squeue`` per look, so this is the
        hub's rate of queries while anything is starting, not a per-spawn rate. It is also how
        long a job that fails at start can go unnoticed. Values below 1 are raised to 1.
        """,
    ).tag(config=True)

    pending_backoff_after = Float(
        30.0,
        help="""
        Seconds a job may pend before the hub looks at it every ``pending_poll_interval``
        instead of every ``startup_poll_interval``.
        """,
    ).tag(config=True)

    pending_poll_interval = Float(
        10.0,
        help="""
        Seconds between two looks at a job that has pended longer than
        ``pending_backoff_after``: waiting for resources can take hours, and a queue full of
        spawns should not keep slurmctld busy. A job cancelled while it pends is noticed
        within this time.
        """,
    ).tag(config=True)

    stop_confirm_timeout = Float(
        30.0,
        help="""
        Seconds ``stop()`` waits, after ``scancel``, for Slurm to report the job ended (its
        processes gone). After that the hub forgets the server anyway and logs a warning.
        """,
    ).tag(config=True)

    job_output_lines = Integer(
        10,
        help="""
        How many of the last lines of a failed job's output file the spawn error shows. The
        file exists only when the user chose to save the job's output. 0 shows none.
        """,
    ).tag(config=True)

    @default("batch_script")
    def _default_batch_script(self) -> str:
        return default_template()

    # -- per-spawn state (reset by clear_state) ---------------------------------------------

    job_node = Unicode("", help="Node the job runs on, as Slurm names it (set by start).")
    job_partition = Unicode("", help="Partition the job was submitted to (set by start).")

    _job_progress: JobProgress | None = None
    _submitting = False  # an sbatch of this spawner is running (its job id is not known yet)
    _job_output_path = ""  # the --output our script gave the current job ("" unknown)
    _port_reported: asyncio.Event | None = None
    # True when the state came from the database of an earlier hub, for a spawn that had not
    # finished: no start() of ours is waiting for that job.
    _adopted_unfinished_start = False

    # -- refusing what must never run ---------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        # batchspawner's port-report handler sets every key a job posts on the spawner
        # (exec_prefix, cmd...). It is taken out of the hub's table (handlers.register); should
        # it ever be reached anyway, it changes nothing here.
        if sys._getframe(1).f_globals.get("__name__") == _BATCHSPAWNER_API_MODULE:
            self.log.error(
                "Refused batchspawner's port report setting %r on %s: only jupyterhub_moss's "
                "handler may take port reports",
                log_safe(name, 60),
                log_safe(self._log_name),
            )
            raise web.HTTPError(403, "This hub takes port reports through jupyterhub_moss only")
        super().__setattr__(name, value)

    def check_port_report_route(self) -> None:
        """Raise :class:`SpawnFailed` unless the hub routes port reports to our handler.

        ``jupyterhub_moss`` puts its handler in place when imported and the hub refuses to
        start otherwise (:mod:`.hub_config`); this is the last check, before a job exists
        whose token could reach another handler.
        """
        from jupyterhub.app import JupyterHub

        from .handlers import port_report_is_ours, port_report_owner

        if not JupyterHub.initialized():
            return  # not inside a hub (unit tests)
        app = JupyterHub.instance()
        table = getattr(app, "handlers", None)
        if not table or port_report_is_ours(table, app.hub_prefix):
            return
        self.log.critical(
            "Refusing to spawn %s: %sapi/batchspawner is routed to %r, not to jupyterhub_moss's "
            "port report handler, so a job could set attributes of the spawner",
            log_safe(self._log_name),
            app.hub_prefix,
            port_report_owner(table, app.hub_prefix),
        )
        raise SpawnFailed(
            "This hub is misconfigured (its port-report address is not jupyterhub_moss's); "
            "please tell its administrators.",
            503,
        )

    def check_username(self) -> None:
        """Raise :class:`SpawnFailed` (a 400) for a username that must not reach ``sudo -u``
        or ``squeue -u`` (see :func:`.slurm.commands.check_username`)."""
        try:
            check_username(self.user.name)
        except UnsafeUsername as error:
            self.log.warning("Refusing to spawn for user %s: %s", log_safe(self.user.name), error)
            raise SpawnFailed(str(error), 400) from error

    # -- the hooks -------------------------------------------------------------------------

    def job_poller(self) -> JobStatusPoller:
        """The hub-wide poller (one per Slurm configuration), shared with every spawner."""
        return shared_job_poller(self.slurm_runner(), max(float(self.poll_interval), 1.0))

    def server_command(self, bin_dir: str = "") -> tuple[str, ...]:
        """The job's command line: batchspawner's wrapper, then the server and its arguments.

        With an environment ``bin/`` folder, both programs are taken from it by absolute path,
        so a wrong folder fails the job at once instead of finding another Jupyter further
        down ``PATH`` (such as the hub's own).
        """
        wrapper, server = self.batchspawner_singleuser_cmd, self.cmd[0]
        if bin_dir:
            wrapper, server = (_in_folder(bin_dir, word) for word in (wrapper, server))
        return (wrapper, server, *self.cmd[1:], *self.get_args())

    def script_settings(self, env: Mapping[str, str], bin_dir: str = "") -> ScriptSettings:
        """The admin's side of the batch script, from batchspawner's ``req_*`` traits."""
        if self.trait_has_value("req_keepvars"):
            names = [name.strip() for name in self.req_keepvars.split(",")]
        else:
            names = list(env)
        names += [name.strip() for name in self.req_keepvars_extra.split(",")]
        return ScriptSettings(
            home_dir=self.req_homedir,
            singleuser_command=self.server_command(bin_dir),
            export_vars=tuple(name for name in names if name),
            job_name=self.job_name,
            srun=self.req_srun,
            account=self.req_account,
            qos=self.req_qos,
            options=self.req_options,
            prologue=self.req_prologue,
            epilogue=self.req_epilogue,
            default_memory=self.req_memory,
            default_gres=self.req_gres,
            reservation=self.req_reservation,
            container_command=self.container_command,
        )

    async def build_batch_script(self, env: Mapping[str, str]) -> str:
        """Validate this spawn's options again and render its batch script."""
        # JupyterHub >= 5.3 has validated them already (apply_user_options); older ones have not.
        options = await self.load_user_options(self.user_options)
        limits = (await self.partition_limits())[options.partition]
        settings = self.script_settings(env, environment_bin(options, limits))
        context = build_script_context(options, limits, settings)
        try:
            return render_batch_script(self.batch_script, context)
        except Exception as error:  # an admin's template that does not fit our context
            self.log.error("Cannot render the batch script template: %s", log_safe(error))
            raise SpawnFailed(f"The batch script template is broken: {error}") from error

    # -- start -----------------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        """Submit the job, wait for it to run and for its server to report a port."""
        # Before anything runs: nothing has been submitted if these refuse.
        self.check_username()
        self.check_port_report_route()
        self.port = 0  # the job picks its own; get_env() then passes a placeholder
        self._job_progress = progress = JobProgress()
        self._port_reported = asyncio.Event()
        try:
            env = self.get_env()
            script = await self.build_batch_script(env)
            options = self.moss_options
            job_id = await self.submit_job(script, env)
            self.job_id = job_id
            # What our script told sbatch, never what Slurm says later (see tail_output_file)
            self._job_output_path = job_output_path(
                self.req_homedir, job_id, bool(options and options.output)
            )
            self.job_partition = options.partition if options else ""
            self._save_state_now()
            progress.add(f"Submitted job {job_id} to partition {self.job_partition}", 10)
            self.log.info(
                "Submitted job %s for %s to partition %s",
                job_id,
                log_safe(self._log_name),
                self.job_partition,
            )
            try:
                node = await self._wait_until_running(job_id, progress)
                port = await self._wait_for_port(job_id, progress)
            except asyncio.CancelledError:
                # The user cancelled the pending spawn, or start_timeout expired.
                self.log.info(
                    "Spawn of %s cancelled: cancelling job %s", log_safe(self._log_name), job_id
                )
                await asyncio.shield(self._cancel_quietly(job_id))
                raise
            self.job_node = node
            self.log.info(
                "Job %s of %s: Jupyter on %s:%s", job_id, log_safe(self._log_name), node, port
            )
            return node, port
        finally:
            progress.finish()
            self._port_reported = None

    async def submit_job(self, script: str, env: Mapping[str, str]) -> str:
        """``sbatch --parsable`` as the user, the script on stdin; returns the job id."""
        runner = self.slurm_runner()
        since = datetime.now(timezone.utc)
        self._submitting = True
        try:
            out = await runner.run(
                "sbatch",
                ["--parsable"],
                prefix=self.user_prefix(),
                input=script,
                env_extra=dict(env),
            )
        except SlurmTimeout as error:
            # The request may still reach slurmctld (a stopped controller reads it when it
            # resumes) and create a job that no spawn waits for: look for it, and cancel it.
            task = asyncio.ensure_future(self._cancel_unclaimed_jobs(since))
            _SWEEPS.add(task)
            task.add_done_callback(_SWEEPS.discard)
            raise SpawnFailed(
                f"Slurm is not answering: sbatch gave no answer within {error.timeout:g} s. "
                "Please try again in a few minutes.",
                503,
            ) from error
        except SlurmCommandError as error:
            self.log.warning(
                "sbatch refused the job of %s: %s", log_safe(self._log_name), log_safe(error)
            )
            raise SpawnFailed(f"Slurm refused the job: {slurm_error_text(error)}", 400) from error
        finally:
            self._submitting = False
        try:
            return parse_job_id(out)
        except ValueError as error:
            raise SpawnFailed(f"Slurm did not say which job it created: {error}") from error

    async def _cancel_unclaimed_jobs(self, since: datetime) -> None:
        """After an sbatch that timed out: once Slurm answers again, cancel the user's jobs of
        this hub's ``job_name`` submitted since then that none of the user's servers claims.

        Two looks a few seconds apart, in case the late submission is read after the first.
        A look is put off while another server of the same user is being submitted, since
        its job id is not known yet.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + UNCLAIMED_JOB_SWEEP_SECONDS
        delay, looks = 2.0, 0
        args = ["-h", "-u", check_username(self.user.name), "-n", self.job_name, "-o", "%i|%V"]
        while looks < 2 and loop.time() < deadline:
            await asyncio.sleep(delay)
            siblings = list(getattr(self.user, "spawners", {}).values())
            if any(getattr(s, "_submitting", False) for s in siblings):
                continue
            try:
                out = await self.slurm_runner().run("squeue", args)
            except SlurmCommandError:
                delay = min(delay * 2, 60.0)  # Slurm still away: look again later
                continue
            claimed = {str(s.job_id) for s in siblings if getattr(s, "job_id", "")}
            for line in out.splitlines():
                job_id, _, submitted = line.strip().partition("|")
                when = parse_slurm_time(submitted) if submitted else None
                # a second of slack: Slurm's submit times have no fraction
                if job_id in claimed or when is None or when < since - timedelta(seconds=1):
                    continue
                self.log.warning(
                    "Cancelling job %s of %s: submitted by an sbatch that timed out",
                    job_id,
                    log_safe(self.user.name),
                )
                await self._cancel_quietly(job_id)
            delay, looks = 5.0, looks + 1

    async def _wait_until_running(self, job_id: str, progress: JobProgress) -> str:
        """Wait through the queue; return the node. Raises SpawnFailed if the job ends."""
        poller = self.job_poller()
        loop = asyncio.get_running_loop()
        submitted = loop.time()
        while True:
            interval = self._queue_interval(loop.time() - submitted)
            status = await poller.status(job_id, max_age=interval)
            if status is None:
                if poller.last_error and not (progress.last_message or "").startswith("Slurm"):
                    progress.add("Slurm is not answering; still waiting for the job")
            elif status.running and status.node:
                self.job_status = status.state
                progress.add(f"Running on node {status.node}, waiting for Jupyter to start", 50)
                return status.node
            elif status.finished:
                raise await self._job_failure(status)
            elif status.waiting:
                message = pending_message(status)
                if message != progress.last_message:
                    progress.add(message, 20)
            reported = self._port_reported is not None and self._port_reported.is_set()
            if status is not None and reported:
                # Jupyter reported its port before a poll saw the job run: look again now
                # (the poller still runs one squeue per second at most).
                await poller.status(job_id, max_age=0)
                continue
            await self._sleep_or_port(interval)

    async def _wait_for_port(self, job_id: str, progress: JobProgress) -> int:
        """Wait for the job's server to report its port, watching that the job still runs."""
        poller = self.job_poller()
        interval = self._startup_interval()
        while not self.port:
            await self._sleep_or_port(interval)
            if self.port:
                break
            status = await poller.status(job_id, max_age=interval)
            if status is not None and status.finished:
                raise await self._job_failure(status)
        return int(self.port)

    async def _sleep_or_port(self, seconds: float) -> None:
        event = self._port_reported
        if event is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    def _startup_interval(self) -> float:
        return max(float(self.startup_poll_interval), 1.0)

    def _queue_interval(self, waited: float) -> float:
        """Look often at a job just submitted (most start or fail at once), less at one that
        has waited in the queue for a while."""
        if waited < self.pending_backoff_after:
            return self._startup_interval()
        return max(float(self.pending_poll_interval), self._startup_interval())

    def report_port(self, port: int) -> bool:
        """Called by the port-report handler: the job's server listens on ``port``.

        Returns False (and changes nothing) when no start of this spawner waits for one.
        """
        event = self._port_reported
        if event is None or event.is_set():
            return False
        self.port = port
        event.set()
        return True

    def token_matches(self, token: str) -> bool:
        """Whether ``token`` is this server's own API token (compared in constant time)."""
        return bool(self.api_token) and hmac.compare_digest(
            str(self.api_token).encode(), token.encode()
        )

    async def _job_failure(self, status: JobStatus) -> SpawnFailed:
        """The error for a job that ended before its server reported a port."""
        details = await self._job_details(status.job_id)
        # Not details["StdOut"]: the job's owner may have pointed it elsewhere.
        path = self._job_output_path
        lines: list[str] = []
        if path and path != "/dev/null":
            uid = self._user_uid()
            if uid is not None:
                lines = tail_output_file(path, uid, self.job_output_lines)
        message = job_failure_message(
            status.job_id,
            details.get("JobState", status.state),
            details.get("Reason", status.reason),
            details.get("ExitCode", ""),
            path,
            lines,
        )
        self.log.warning(
            "Spawn of %s failed: %s", log_safe(self._log_name), log_safe(message, 4000)
        )
        self.job_status = details.get("JobState", status.state)
        # 502: the hub's upstream, the job, failed; not the hub itself (500).
        return SpawnFailed(message, 502)

    async def _job_details(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` fields of one job (once per failed spawn); {} if unknown."""
        try:
            out = await self.slurm_runner().run("scontrol", ["show", "job", "-o", job_id])
        except SlurmCommandError as error:
            self.log.debug("scontrol show job %s failed: %s", job_id, log_safe(error))
            return {}
        for line in out.splitlines():
            fields = parse_scontrol_fields(line)
            if fields.get("JobId") == job_id:
                return fields
        return {}

    def _user_uid(self) -> int | None:
        try:
            return pwd.getpwnam(self.user.name).pw_uid
        except KeyError:
            return None

    # -- poll / stop -----------------------------------------------------------------------

    async def poll(self) -> int | None:
        """None while the job is queued or running (or Slurm cannot tell); else its status."""
        job_id = self.job_id
        if not job_id:
            return 0
        if self._adopted_unfinished_start:
            # An earlier hub died while this spawn waited: nobody waits for the job any more.
            self.log.warning(
                "Cancelling job %s of %s: its spawn was interrupted by a hub restart",
                job_id,
                log_safe(self._log_name),
            )
            await self._cancel_quietly(job_id)
            self._forget_job(job_id)
            self.clear_state()
            return 1
        max_age = max(float(self.poll_interval) / 2, 1.0)
        poller = self.job_poller()
        status = await poller.status(job_id, max_age=max_age)
        if status is None or not status.finished:
            if poller.last_error:
                self.log.warning(
                    "Slurm did not answer about job %s of %s (%s); it still counts as running",
                    job_id,
                    log_safe(self._log_name),
                    log_safe(poller.last_error),
                )
            return None
        self.log.info(
            "Job %s of %s has ended: %s (%s)",
            job_id,
            log_safe(self._log_name),
            log_safe(status.state),
            log_safe(status.reason),
        )
        self._forget_job(job_id)
        self.clear_state()
        return 0 if status.state == "COMPLETED" else 1

    async def stop(self, now: bool = False) -> None:
        """``scancel`` as the user; unless ``now``, wait until Slurm says the job ended."""
        job_id = self.job_id
        if not job_id:
            return
        self.log.info("Stopping job %s of %s", job_id, log_safe(self._log_name))
        await self.cancel_job(job_id)
        if now:
            return
        if await self._confirm_ended(job_id):
            self._forget_job(job_id)
            return
        self.log.warning(
            "Job %s of %s still not ended %.0f s after scancel",
            job_id,
            log_safe(self._log_name),
            self.stop_confirm_timeout,
        )

    async def cancel_job(self, job_id: str) -> None:
        """``scancel JOB`` as the user. A job Slurm no longer knows counts as cancelled."""
        try:
            await self.slurm_runner().run("scancel", [job_id], prefix=self.user_prefix())
        except SlurmCommandError as error:
            if "Invalid job id" in error.stderr or "already completing" in error.stderr:
                return
            self.log.error("scancel of job %s failed: %s", job_id, log_safe(error))
            raise

    async def _cancel_quietly(self, job_id: str) -> None:
        # Logged by cancel_job; the job stays visible to the next poll.
        with contextlib.suppress(SlurmCommandError):
            await self.cancel_job(job_id)

    async def _confirm_ended(self, job_id: str) -> bool:
        poller = self.job_poller()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(float(self.stop_confirm_timeout), 0.0)
        while True:
            status = await poller.status(job_id, max_age=1.0)
            if status is not None and status.finished:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(1.0)

    def _forget_job(self, job_id: str) -> None:
        with contextlib.suppress(Exception):
            self.job_poller().forget(job_id)

    # -- progress --------------------------------------------------------------------------

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """Plain-text progress events of the current spawn (never ``html_message``)."""
        progress = self._job_progress
        if progress is None:
            return
        async for event in progress.follow():
            yield event

    # -- state -----------------------------------------------------------------------------

    def _save_state_now(self) -> None:
        """Record the job id in the database at once, so a hub that dies mid-spawn still
        knows about the job after a restart (and can cancel it)."""
        orm_spawner = getattr(self, "orm_spawner", None)
        session = object_session(orm_spawner) if orm_spawner is not None else None
        if session is None:
            return
        state = self.get_state()
        state["moss_starting"] = True
        orm_spawner.state = state
        session.commit()

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.job_node:
            state["job_node"] = self.job_node
        if self.job_partition:
            state["job_partition"] = self.job_partition
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.job_node = state.get("job_node", "")
        self.job_partition = state.get("job_partition", "")
        self._adopted_unfinished_start = bool(state.get("moss_starting")) and bool(self.job_id)

    def clear_state(self) -> None:
        super().clear_state()
        self.job_node = ""
        self.job_partition = ""
        self._adopted_unfinished_start = False
