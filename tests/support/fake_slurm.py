"""Stand-ins for Slurm's commands, for hub-tier tests that spawn without a cluster.

``sbatch`` keeps the server token the hub gives the job and says it created job 4242; ``squeue``
says that job pends; every command appends ``"$MOSS_AS name args"`` to ``ran`` in the folder, so
a test sees what ran and as whom (the hub's ``exec_prefix`` sets ``MOSS_AS`` to the username).
"""

from __future__ import annotations

from pathlib import Path

from .hub import DEMO_PARTITIONS

#: What the stand-in squeue prints: a pending job, in the poller's format (SQUEUE_FORMAT) as the
#: real squeue prints it. tests/unit/test_slurm_parsing.py checks that the parser reads it.
PENDING_SQUEUE_LINE = "4242|PENDING|n/a||N/A|N/A|Resources"


def fake_slurm(folder: Path) -> Path:
    """sbatch keeps the job's server token and says job 4242; squeue says it pends."""
    folder.mkdir()
    scripts = {
        "sbatch": 'cat > /dev/null\nprintf %s "$JUPYTERHUB_API_TOKEN" > "$D/token"\necho 4242',
        "squeue": f'echo "{PENDING_SQUEUE_LINE}"',
        "scancel": "true",
        "scontrol": "true",
        "sinfo": "exit 1",  # no cluster: the page and limits come from the config alone
    }
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f'#!/bin/sh\nD={folder}\necho "$MOSS_AS {name} $*" >> "$D/ran"\n{body}\n')
        path.chmod(0o755)
    return folder


def fake_slurm_config(slurm: Path) -> str:
    """Hub config lines that use the stand-ins of :func:`fake_slurm`."""
    return f"""
c.MOSlurmSpawner.partitions = {DEMO_PARTITIONS!r}
c.MOSlurmSpawner.slurm_bin_dir = {str(slurm)!r}
c.MOSlurmSpawner.exec_prefix = "env MOSS_AS={{username}}"
c.MOSlurmSpawner.stop_confirm_timeout = 1
c.Spawner.start_timeout = 120
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0, "slow_stop_timeout": 0}}
"""
