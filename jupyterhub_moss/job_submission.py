"""Submitting and cancelling a spawn's Slurm job, as its user.

``sbatch --parsable`` and ``scancel`` run with the user's prefix (``exec_prefix``, e.g.
``sudo -E -u alice``), from an argument list, never a shell; the script goes on stdin. A
username that ``sudo -u`` could misread is refused before anything runs. An ``sbatch`` that
times out, or that is stopped because JupyterHub cancelled the spawn, may still create its job
once slurmctld reads the request: such jobs are looked for afterwards and cancelled, since no
spawn waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from .job_reports import SpawnFailed, parse_job_id, slurm_error_text
from .log_safe import log_safe
from .slurm.commands import SlurmCommandError, SlurmTimeout, UnsafeUsername, check_username
from .slurm.times import parse_slurm_time
from .waiting import wait_at_most

__all__ = ["UNCLAIMED_JOB_SWEEP_SECONDS", "JobSubmission"]

#: After an sbatch that timed out or was stopped, how long to look for the job it may create.
UNCLAIMED_JOB_SWEEP_SECONDS = 900.0
# The sweeps running now: asyncio keeps only weak references to tasks.
#: How long a cancelled start waits for the scancel of its job (see _cancel_after_cancelled_start).
CANCEL_WAIT_SECONDS = 0.5
#: Slurm work that outlives the spawn that started it: sweeps, and scancels still running.
_SWEEPS: set[asyncio.Task] = set()


class JobSubmission:
    """Mixin of :class:`~.lifecycle.SlurmJobLifecycle`: ``sbatch`` and ``scancel`` as the user.

    It calls the spawner's hooks ``slurm_runner()`` and ``user_prefix()``, and reads ``user``
    (its ``name`` and ``spawners``), ``job_name``, ``log`` and ``_log_name``.
    """

    _submitting = False  # an sbatch of this spawner is running (its job id is not known yet)

    def check_username(self) -> None:
        """Raise :class:`SpawnFailed` (a 400) for a username that must not reach ``sudo -u``
        or ``squeue -u`` (see :func:`.slurm.commands.check_username`)."""
        try:
            check_username(self.user.name)
        except UnsafeUsername as error:
            self.log.warning("Refusing to spawn for user %s: %s", log_safe(self.user.name), error)
            raise SpawnFailed(str(error), 400) from error

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        """batchspawner's, but a hub user with no account on this machine gets a clear refusal
        instead of its ``KeyError`` (a 500): Slurm could not run a job as them anyway."""
        try:
            return super().user_env(env)  # type: ignore[misc]
        except (KeyError, ValueError) as error:
            self.log.warning("Refusing to spawn for %s: no such account", log_safe(self.user.name))
            raise SpawnFailed(
                f"{self.user.name} has no account on this cluster, so Slurm cannot run a job as "
                "them; ask your HPC support to create one",
                403,
            ) from error

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
        except asyncio.CancelledError:
            # The user cancelled the spawn while sbatch ran. Stopping sbatch does not take back
            # a request slurmctld already has: the job may appear, with no spawn waiting for it.
            self._sweep_unclaimed_jobs(since, "whose spawn was cancelled")
            raise
        except SlurmTimeout as error:
            # The request may still reach slurmctld (a stopped controller reads it when it
            # resumes) and create a job that no spawn waits for: look for it, and cancel it.
            self._sweep_unclaimed_jobs(since, "that timed out")
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

    def _sweep_unclaimed_jobs(self, since: datetime, why: str) -> None:
        """Start :meth:`_cancel_unclaimed_jobs` on its own: it outlives the spawn."""
        _outliving_the_spawn(self._cancel_unclaimed_jobs(since, why))

    async def _cancel_unclaimed_jobs(self, since: datetime, why: str) -> None:
        """After an sbatch that gave no job id (it timed out, or was stopped because its spawn
        was cancelled; ``why`` says which, for the log): once Slurm answers, cancel the user's
        jobs of this hub's ``job_name`` submitted since then that none of their servers claims.

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
                    "Cancelling job %s of %s: submitted by an sbatch %s",
                    job_id,
                    log_safe(self.user.name),
                    why,
                )
                await self._cancel_quietly(job_id)
            delay, looks = 5.0, looks + 1

    async def cancel_job(self, job_id: str) -> None:
        """``scancel JOB`` as the user. A job Slurm no longer knows counts as cancelled."""
        try:
            await self.slurm_runner().run("scancel", [job_id], prefix=self.user_prefix())
        except SlurmCommandError as error:
            if "Invalid job id" in error.stderr or "already completing" in error.stderr:
                return
            self.log.error("scancel of job %s failed: %s", job_id, log_safe(error))
            raise

    async def _cancel_after_cancelled_start(self, job_id: str) -> None:
        """``scancel`` the job of a start that was cancelled, waiting for it a moment only.

        JupyterHub stops a server one second after it cancels the server's pending start, and
        that stop fails (a 500 for the user) while the start is still running. A slow scancel
        (a busy controller) therefore goes on by itself after ``CANCEL_WAIT_SECONDS``; the stop
        that follows cancels the job too, and a second scancel of it is no error.
        """
        task = _outliving_the_spawn(self._cancel_quietly(job_id))
        with contextlib.suppress(asyncio.TimeoutError):
            await wait_at_most(asyncio.shield(task), CANCEL_WAIT_SECONDS)

    async def _cancel_quietly(self, job_id: str) -> None:
        # Logged by cancel_job; the job stays visible to the next poll.
        with contextlib.suppress(SlurmCommandError):
            await self.cancel_job(job_id)


def _outliving_the_spawn(work: Coroutine[Any, Any, None]) -> asyncio.Task:
    """Run ``work`` as a task of its own, kept in :data:`_SWEEPS` until it ends."""
    task = asyncio.ensure_future(work)
    _SWEEPS.add(task)
    task.add_done_callback(_SWEEPS.discard)
    return task
