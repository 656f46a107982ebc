"""jupyterhub_moss: the JupyterHub MOdular Slurm Spawner.

Admins need two lines::

    import jupyterhub_moss
    jupyterhub_moss.set_config(c)

and a ``c.MOSlurmSpawner.partitions`` dict. See README.md for the reference.
"""

from ._version import __version__
from .handlers import register as _register_handlers
from .hub_config import set_config, watch_starting_hub
from .spawner import MOSlurmSpawner

# Whichever way the admin named the spawner (set_config, spawner_class = "moss" or the class
# name), JupyterHub imports this package before it builds its handler table: our port report
# must be in it, and batchspawner's (which lets a job set any attribute) must not.
_register_handlers()
watch_starting_hub()

__all__ = ["MOSlurmSpawner", "__version__", "set_config"]
