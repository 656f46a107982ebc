"""jupyterhub_moss: the JupyterHub MOdular Slurm Spawner.

Admins need two lines::

    import jupyterhub_moss
    jupyterhub_moss.set_config(c)

and a ``c.MOSlurmSpawner.partitions`` dict. See README.md for the reference.
"""

from ._version import __version__
from .hub_config import hook_into_hub_start, set_config
from .spawner import MOSlurmSpawner

# Whichever way the admin named the spawner (set_config, spawner_class = "moss" or the class
# name), JupyterHub imports this package before it builds its handler table: a hub spawning
# with our class gets our port report in it, and not batchspawner's (which lets a job set any
# attribute of the spawner), or refuses to start.
hook_into_hub_start()

__all__ = ["MOSlurmSpawner", "__version__", "set_config"]
