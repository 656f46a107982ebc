"""Watching a spawn's Slurm job: through the queue, until its server reports a port, until it ends.

Every look goes through one hub-wide :class:`~.slurm.jobs.JobStatusPoller` (one ``squeue`` for
all tracked jobs, however many servers run or spawns wait). A look that Slurm does not answer is
"unknown", never "ended". A job that ends before its server reports a port fails the spawn at
the next look, with its final state, reason and exit code and the last lines of its output
file. They come from ``scontrol``, or from the accounting (``sacct``, through the poller) for a
job slurmctld has already forgotten.

The job's own reports (:mod:`.port_report_receiver`: it started, its port) wake every wait at
once, and the spawn returns only when the server answers HTTP (:mod:`.server_answer`), so
nothing between "the server listens" and "JupyterHub calls it ready" waits for a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import pwd
from typing import ClassVar

from .job_progress import JobProgress
from .job_reports import (
    BEFORE_JUPYTER_ANSWERED,
    BEFORE_JUPYTER_STARTED,
    SpawnFailed,
    final_exit_code,
    job_failure_message,
    pending_message,
    tail_output_file,
)
from .log_safe import log_safe
from .server_answer import wait_until_answering
from .slurm import services
from .slurm.commands import SlurmCommandError
from .slurm.jobs import JobStatusPoller
from .slurm.models import JobStatus
from .slurm.scontrol import parse_scontrol_fields

__all__ = ["JobWatch"]


class JobWatch:
    """Mixin of :class:`~.lifecycle.SlurmJobLifecycle`: waits on and looks at the spawn's job.

    It calls the spawner's hook ``slurm_runner()`` (for ``scontrol``) and reads the
    lifecycle's polling traits, ``job_output_lines``, ``poll_interval``, ``http_timeout``,
    ``internal_ssl``, ``port``, ``server``, ``user``, ``log`` and ``_log_name``, and the
    per-spawn ``_job_output_path`` and ``_job_reports``; it marks the spawn's timeline through
    ``_mark()``.
    """

    #: The shortest time between two looks at a job, whatever the traits say, so that a small
    #: value in a config cannot turn the hub into a load on slurmctld. A test subclass may
    #: lower it to run the lifecycle against a replayed Slurm in milliseconds.
    MIN_POLL_SECONDS: ClassVar[float] = 1.0

    def job_poller(self) -> JobStatusPoller:
        """The hub-wide poller (one per Slurm configuration), shared with every spawner.

        Every job state the lifecycle reads comes from here: a test overrides it (with
        ``slurm_runner()``) to watch a replayed Slurm.
        """
        return services.job_poller(
            self.slurm_runner(), max(float(self.poll_interval), self.MIN_POLL_SECONDS)
        )

    def _startup_interval(self) -> float:
        return max(float(self.startup_poll_interval), self.MIN_POLL_SECONDS)

    def _queue_interval(self, waited: float) -> float:
        """Look often at a job just submitted (most start or fail at once), less at one that
        has waited in the queue for a while."""
        if waited < self.pending_backoff_after:
            return self._startup_interval()
        return max(float(self.pending_poll_interval), self._startup_interval())

    async def _wait_until_running(self, job_id: str, progress: JobProgress) -> str:
        """Wait through the queue; return the node. Raises SpawnFailed if the job ends.

        The job's own reports (it started, its port) wake this wait at once, and are checked
        with one ``squeue`` for the job alone: a job whose node was just released is not left
        waiting for the next slow look at a long-pending job.
        """
        poller = self.job_poller()
        loop = asyncio.get_running_loop()
        submitted = loop.time()
        looked_for: set[str] = set()  # the reports already checked with a look of their own
        while True:
            interval = self._queue_interval(loop.time() - submitted)
            news = self._unchecked_reports(looked_for)
            if news:
                looked_for.update(news)
                status = await poller.look_now(job_id)
            else:
                status = await poller.status(job_id, max_age=interval)
            if status is None:
                if poller.last_error and not (progress.last_message or "").startswith("Slurm"):
                    progress.add("Slurm is not answering; still waiting for the job")
            elif status.running and status.node:
                self.job_status = status.state
                self._mark("running")
                progress.add(f"Running on node {status.node}, waiting for Jupyter to start", 50)
                return status.node
            elif status.finished:
                raise await self._job_failure(status)
            elif status.waiting:
                message = pending_message(status)
                if message != progress.last_message:
                    progress.add(message, 20)
            if not self._unchecked_reports(looked_for):
                await self._sleep_or_report(interval)

    def _unchecked_reports(self, looked_for: set[str]) -> set[str]:
        reports = self._job_reports
        if reports is None:
            return set()
        made = {name for name in ("started_at", "port_at") if getattr(reports, name) is not None}
        return made - looked_for

    async def _wait_for_port(self, job_id: str, progress: JobProgress) -> int:
        """Wait for the job's server to report its port, watching that the job still runs."""
        poller = self.job_poller()
        interval = self._startup_interval()
        while not self.port:
            await self._sleep_or_report(interval)
            if self.port:
                break
            status = await poller.status(job_id, max_age=interval)
            if status is not None and status.finished:
                raise await self._job_failure(status)
        return int(self.port)

    async def _wait_until_answering(
        self, job_id: str, node: str, port: int, progress: JobProgress
    ) -> None:
        """Return once the server answers HTTP, so that JupyterHub's first check succeeds.

        Bounded by ``http_timeout``, JupyterHub's own limit for that check; a server that does
        not answer by then is left to JupyterHub's check, which reports it. Skipped with the
        hub's internal TLS, whose client certificates only JupyterHub's check holds.
        """
        if self.internal_ssl:
            return
        progress.add(f"Jupyter listens on {node}:{port}, waiting for it to answer", 75)
        poller = self.job_poller()
        interval = self._startup_interval()
        url = f"http://{node}:{port}{self._server_base_url()}"
        probe = asyncio.ensure_future(wait_until_answering(url, float(self.http_timeout)))
        try:
            # A server that dies now fails the spawn at the next look, not after http_timeout
            while not probe.done():
                await asyncio.wait({probe}, timeout=interval)
                if probe.done():
                    break
                status = await poller.status(job_id, max_age=interval)
                if status is not None and status.finished:
                    raise await self._job_failure(status, BEFORE_JUPYTER_ANSWERED)
        finally:
            probe.cancel()
        if probe.result():
            self._mark("answering")
            return
        self.log.warning(
            "The server of %s on %s:%s did not answer within %s s",
            log_safe(self._log_name),
            node,
            port,
            self.http_timeout,
        )

    def _server_base_url(self) -> str:
        server = getattr(self, "server", None)
        return server.base_url if server is not None else "/"

    async def _job_failure(
        self, status: JobStatus, when: str = BEFORE_JUPYTER_STARTED
    ) -> SpawnFailed:
        """The error for a job that ended during the spawn, ``when`` says at which step."""
        state, reason, exit_code = await self._final_state(status)
        # Not details["StdOut"]: the job's owner may have pointed it elsewhere.
        path = self._job_output_path
        lines: list[str] = []
        if path and path != "/dev/null":
            uid = self._user_uid()
            if uid is not None:
                lines = tail_output_file(path, uid, self.job_output_lines)
        message = job_failure_message(status.job_id, state, reason, exit_code, path, lines, when)
        self.log.warning(
            "Spawn of %s failed: %s", log_safe(self._log_name), log_safe(message, 4000)
        )
        self.job_status = state
        # 502: the hub's upstream, the job, failed; not the hub itself (500).
        return SpawnFailed(message, 502)

    async def _final_state(self, status: JobStatus) -> tuple[str, str, str]:
        """State, reason and exit code (``3:0``) of a job that ended."""
        if status.ended is not None:
            # slurmctld has forgotten it (scontrol would not know it): the accounting told.
            return status.state, status.reason, final_exit_code(status)
        details = await self._job_details(status.job_id)
        return (
            details.get("JobState", status.state),
            details.get("Reason", status.reason),
            details.get("ExitCode", ""),
        )

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

    async def _confirm_ended(self, job_id: str) -> bool:
        """Whether Slurm says the job ended within ``stop_confirm_timeout``."""
        poller = self.job_poller()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(float(self.stop_confirm_timeout), 0.0)
        while True:
            status = await poller.status(job_id, max_age=self.MIN_POLL_SECONDS)
            if status is not None and status.finished:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(self.MIN_POLL_SECONDS)

    def _forget_job(self, job_id: str) -> None:
        with contextlib.suppress(Exception):
            self.job_poller().forget(job_id)
