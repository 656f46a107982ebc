"""batchspawner's command and state traits, which our lifecycle never runs, are not offered.

batchspawner submits, queries and cancels jobs through shell commands (``batch_submit_cmd``,
``batch_query_cmd``, ``batch_cancel_cmd``) and reads their output with regular expressions
(``state_*_re``, ``state_exechost_exp``). jupyterhub_moss does neither: ``--help-all`` must not
list them for our spawner, and a config setting them changes nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging

import pytest
from support.replay_slurm import AnsweringServer, ReplaySlurm, ReplaySpawner, Reply, spawn_request
from traitlets.config import Config

from jupyterhub_moss.lifecycle import SlurmJobLifecycle
from jupyterhub_moss.spawner import MOSlurmSpawner

pytestmark = pytest.mark.unit

UNUSED = (
    "batch_submit_cmd",
    "batch_query_cmd",
    "batch_cancel_cmd",
    "state_pending_re",
    "state_running_re",
    "state_unknown_re",
    "state_exechost_re",
    "state_exechost_exp",
)
# batchspawner's code that reads them: none of it may run under our lifecycle.
BATCHSPAWNER_PATHS = (
    "submit_batch_script",
    "query_job_status",
    "cancel_batch_job",
    "run_command",
    "state_ispending",
    "state_isrunning",
    "state_isunknown",
    "state_gethost",
)


def run(coroutine):
    """A fresh loop in a thread: the browser tier keeps one running in the main thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


def test_these_are_every_configurable_command_and_state_trait_batchspawner_has():
    from batchspawner import BatchSpawnerBase, SlurmSpawner

    inherited = set(SlurmSpawner.class_traits(config=True))
    ours = {name for name in inherited if name.endswith(("_cmd", "_re", "_exp"))}
    # batchspawner_singleuser_cmd is the wrapper our jobs do run
    assert ours - {"batchspawner_singleuser_cmd"} == set(UNUSED)
    assert {"batch_submit_cmd", "batch_query_cmd"} <= set(BatchSpawnerBase.class_traits())


@pytest.mark.parametrize("cls", [MOSlurmSpawner, SlurmJobLifecycle])
def test_the_generated_help_does_not_offer_them(cls):
    help_text = cls.class_get_help() + cls.class_config_section()
    for name in UNUSED:
        assert name not in help_text
        trait = cls.class_traits()[name]
        assert not trait.metadata.get("config")
        assert trait.help.startswith("Not used by jupyterhub_moss:")
    assert "startup_poll_interval" in help_text  # the control: our own traits are listed


def replay_spawner(config: Config, tmp_path) -> ReplaySpawner:
    replies = {
        "sbatch": [Reply.captured("sbatch")],
        # running at start and at the poll; ended (here: listed as failed) after scancel
        "squeue": [
            Reply.captured("squeue_running"),
            Reply.captured("squeue_running"),
            Reply.captured("squeue_failed"),
        ],
        "scancel": [Reply.captured("scancel")],
    }
    return ReplaySpawner(ReplaySlurm(replies), spawn_request(), home=str(tmp_path), config=config)


async def start_poll_stop(spawner: ReplaySpawner) -> list:
    """A whole server's life against the replayed cluster: start, a poll, stop. start()'s
    result is given as ``(node, "port")``, whatever port the stand-in server had."""
    async with AnsweringServer() as server:
        started = asyncio.ensure_future(spawner.start())
        await asyncio.sleep(0)
        async for event in spawner.progress():
            if event["message"].startswith("Running on node"):
                spawner.report_port(server.port)
        node, port = await started
    assert port == server.port
    return [(node, "port"), await spawner.poll(), await spawner.stop()]


def test_setting_them_in_a_config_changes_nothing_and_says_so(tmp_path, caplog, monkeypatch):
    for name in BATCHSPAWNER_PATHS:
        monkeypatch.setattr(
            ReplaySpawner, name, lambda *a, _name=name, **k: pytest.fail(f"{_name} ran")
        )
    config = Config()
    for section in ("SlurmSpawner", "BatchSpawnerBase", "MOSlurmSpawner"):
        for name in UNUSED:
            config[section][name] = "touch /tmp/moss-must-not-exist"
    with caplog.at_level(logging.WARNING):
        configured = replay_spawner(config, tmp_path)
    plain = replay_spawner(Config(), tmp_path)

    async def both() -> list:
        return await asyncio.gather(start_poll_stop(configured), start_poll_stop(plain))

    configured_life, plain_life = run(both())

    assert configured_life == plain_life == [("localhost", "port"), None, None]
    assert configured.slurm.ran() == plain.slurm.ran()
    (submitted,), (submitted_plain,) = (s.slurm.calls_of("sbatch") for s in (configured, plain))
    assert submitted.input == submitted_plain.input  # the same script
    for name in UNUSED:
        assert getattr(configured, name) == ""
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "`batch_submit_cmd` not recognized" in warned
