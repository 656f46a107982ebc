"""jupyterhub_moss: the JupyterHub MOdular Slurm Spawner.

Admins need two lines::

    import jupyterhub_moss
    jupyterhub_moss.set_config(c)

and a ``c.MOSlurmSpawner.partitions`` dict. See README.md for the reference.
"""

from ._version import __version__
from .hub_config import set_config
from .spawner import MOSlurmSpawner

__all__ = ["MOSlurmSpawner", "__version__", "set_config"]
