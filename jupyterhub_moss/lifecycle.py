"""The Slurm job behind a single-user server: submit, wait, poll, stop, progress.

:class:`SlurmJobLifecycle` replaces batchspawner's own lifecycle, which runs every command
through a shell, asks ``squeue`` twice a second per pending spawn, reads any squeue error as
"job gone" and waits until ``start_timeout`` when a job dies early. Here:

- ``start()`` takes one :class:`~.context.SpawnRequest`, validated once for the spawn, and
  the batch script comes from it and the admin's ``req_*`` traits (:mod:`.job_script`). It is
  piped to ``sbatch --parsable`` run as the user, an argument list, never a shell
  (:mod:`.job_submission`);
- every job state is read from one hub-wide :class:`~.slurm.jobs.JobStatusPoller`: one ``squeue``
  for all tracked jobs, however many servers run or spawns wait (:mod:`.job_watch`);
- a job that ends before its server reports a port (:mod:`.port_report_receiver`) fails the
  spawn at the next look, with the job's final state, reason, exit code and the last lines of
  its output file (:mod:`.job_reports`); for a job ``squeue`` has forgotten they come from
  ``sacct`` when the site keeps accounting;
- progress events are plain text (:mod:`.job_progress`): the job id and partition, the Slurm
  reason while pending with the expected start, the node it runs on;
- an unanswered or failing ``squeue`` is "unknown", never "stopped".

The spawner class provides the hooks this mixin calls:

- ``async spawn_request() -> SpawnRequest``: this spawn's validated request (see
  :meth:`SlurmJobLifecycle.spawn_request`);
- ``slurm_runner() -> SlurmRunner``: how Slurm commands run (``sbatch``, ``scancel``,
  ``scontrol``, and ``squeue`` through the poller and the sweep after an sbatch timeout);
- ``user_prefix() -> list[str]``: the prefix of commands run as the user (``sbatch``,
  ``scancel``).

``job_poller()`` has a default: the hub-wide poller of ``slurm_runner()``. These two are the
lifecycle's only ways to Slurm: a test overrides both, with anything that has
:meth:`~.slurm.commands.SlurmRunner.run`'s signature and a poller of it, and may lower
``MIN_POLL_SECONDS``, to drive the lifecycle through a replayed Slurm.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from batchspawner import SlurmSpawner
from sqlalchemy.orm import object_session
from traitlets import Float, Integer, Unicode, default

from .batch_script import default_template
from .context import SpawnRequest
from .job_progress import JobProgress
from .job_reports import SpawnFailed, ended_job_summary, final_exit_code, job_output_path
from .job_script import JobScript
from .job_submission import JobSubmission
from .job_watch import JobWatch
from .log_safe import log_safe
from .port_report_receiver import JobReports, PortReportReceiver
from .session_report import SessionReport
from .spawn_timeline import SpawnTimeline

__all__ = ["SlurmJobLifecycle"]


def _unused_batchspawner_trait(why: str) -> Unicode:
    # Not tagged config=True: --help-all does not offer it, and a config setting it is
    # ignored with traitlets' "not recognized" warning instead of silently doing nothing.
    return Unicode("", help=f"Not used by jupyterhub_moss: {why} Inherited from batchspawner.")


class SlurmJobLifecycle(
    JobWatch, JobSubmission, JobScript, PortReportReceiver, SessionReport, SlurmSpawner
):
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

    # -- batchspawner's command and state traits: this lifecycle runs none of them ----------

    batch_submit_cmd = _unused_batchspawner_trait(
        "jobs are submitted with ``sbatch --parsable`` as the user, never through a shell."
    )
    batch_query_cmd = _unused_batchspawner_trait(
        "job states come from one hub-wide ``squeue`` for every job (``poll_interval``)."
    )
    batch_cancel_cmd = _unused_batchspawner_trait(
        "jobs are cancelled with ``scancel`` as the user, never through a shell."
    )
    state_pending_re = _unused_batchspawner_trait("Slurm's job states are parsed, not matched.")
    state_running_re = _unused_batchspawner_trait("Slurm's job states are parsed, not matched.")
    state_unknown_re = _unused_batchspawner_trait("a failing ``squeue`` is always 'unknown'.")
    state_exechost_re = _unused_batchspawner_trait("the node is read from ``squeue``'s %B.")
    state_exechost_exp = _unused_batchspawner_trait("the node is read from ``squeue``'s %B.")

    # -- per-spawn state (reset by clear_state) ---------------------------------------------

    job_node = Unicode("", help="Node the job runs on, as Slurm names it (set by start).")
    job_partition = Unicode("", help="Partition the job was submitted to (set by start).")

    _job_progress: JobProgress | None = None
    _timeline: SpawnTimeline | None = None  # of the current or last spawn
    _job_output_path = ""  # the --output our script gave the current job ("" unknown)
    # True when the state came from the database of an earlier hub, for a spawn that had not
    # finished: no start() of ours is waiting for that job.
    _adopted_unfinished_start = False

    # -- the hook the spawner class provides -------------------------------------------------

    async def spawn_request(self) -> SpawnRequest:
        """The validated request of the spawn ``start()`` is about to submit.

        The spawner class provides it. It returns the request validated earlier in this spawn
        (JupyterHub >= 5.3 validates through ``apply_user_options``), or validates
        ``self.user_options`` once when none was; for options that are not valid it raises a
        ``web.HTTPError`` 400 whose message the user sees. ``start()`` awaits it once, after
        the username and port-report checks and before anything is submitted, and uses what
        it returns as it is: its options for the batch script, the output file and the job's
        partition, its partition limits for the script.

        Define it on the spawner class itself (or on a base listed before this mixin): this
        default would shadow one on a base listed after it.
        """
        raise NotImplementedError("the spawner class provides spawn_request()")

    # -- refusing what must never run -------------------------------------------------

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

    # -- start -----------------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        """Submit the job, wait for it to run and for its server to report a port."""
        # Before anything runs: nothing has been submitted if these refuse.
        self.check_username()
        self.check_port_report_route()
        self.port = 0  # the job picks its own; get_env() then passes a placeholder
        self._job_progress = progress = JobProgress()
        self._job_reports = reports = JobReports()
        self._timeline = timeline = SpawnTimeline(self.user.name, self.name or "")
        self._mark("start")
        job_id = ""
        try:
            env = self.get_env()
            request = await self.spawn_request()
            job_id = await self._submit(request, env, progress)
            self._mark("submitted")
            try:
                node = await self._wait_until_running(job_id, progress)
                port = await self._wait_for_port(job_id, progress)
                self._mark_reports(reports)
                await self._wait_until_answering(job_id, node, port, progress)
            except asyncio.CancelledError:
                # The user cancelled the pending spawn, or start_timeout expired.
                self.log.info(
                    "Spawn of %s cancelled: cancelling job %s", log_safe(self._log_name), job_id
                )
                await self._cancel_after_cancelled_start(job_id)
                raise
            self.job_node = node
            self.log.info(
                "Job %s of %s: Jupyter on %s:%s", job_id, log_safe(self._log_name), node, port
            )
            self._mark("returned")
            return node, port
        finally:
            progress.finish()
            self._job_reports = None
            if job_id:
                self._mark_reports(reports)
                self.log.info("%s", timeline.log_line(job_id))

    def _mark(self, point: str) -> None:
        timeline = self._timeline
        if timeline is not None:
            timeline.mark(point)

    def _mark_reports(self, reports: JobReports) -> None:
        if self._timeline is not None:
            # our launcher reports the port the moment the server listens on it
            listening = self.server_launcher == "moss"
            self._timeline.mark_reports(reports.started_at, reports.port_at, listening)

    async def _submit(
        self, request: SpawnRequest, env: Mapping[str, str], progress: JobProgress
    ) -> str:
        """Submit the request's job and record it (in the database too); returns its id."""
        script = self.build_batch_script(request, env)
        job_id = await self.submit_job(script, env)
        self.job_id = job_id
        # What our script told sbatch, never what Slurm says later (see tail_output_file)
        self._job_output_path = job_output_path(
            self.req_homedir, job_id, bool(request.options.output)
        )
        self.job_partition = request.options.partition
        self._save_state_now()
        progress.add(f"Submitted job {job_id} to partition {self.job_partition}", 10)
        self.log.info(
            "Submitted job %s for %s to partition %s",
            job_id,
            log_safe(self._log_name),
            self.job_partition,
        )
        return job_id

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
        max_age = max(float(self.poll_interval) / 2, self.MIN_POLL_SECONDS)
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
            "Job %s of %s has ended: %s",
            job_id,
            log_safe(self._log_name),
            log_safe(ended_job_summary(status.state, status.reason, final_exit_code(status))),
        )
        self._remember_end(status)
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
            self._remember_end(self.job_poller().latest(job_id))
            self._forget_job(job_id)
            return
        self.log.warning(
            "Job %s of %s still not ended %.0f s after scancel",
            job_id,
            log_safe(self._log_name),
            self.stop_confirm_timeout,
        )

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
