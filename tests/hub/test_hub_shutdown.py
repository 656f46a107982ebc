"""A stopping hub closes the shared Slurm services, and says how many in its log.

The services (cluster view, job pollers, start estimators) are created on first use, so a hub
that served no spawn page has none to close; one that served the page has its cluster view.
A hub with another spawner stops as it did before the package was installed.
"""

from __future__ import annotations

import re
import textwrap

from support.hub import HubProcess

CLOSED = re.compile(r"jupyterhub_moss: closed (\d+) shared Slurm services")

# Slurm's commands are missing on this "hub host": the page is served from the config alone,
# and the cluster view is created all the same.
NO_SLURM = textwrap.dedent(
    """
    c.MOSlurmSpawner.slurm_bin_dir = "/nonexistent-slurm/bin"
    """
)


def closed_counts(hub: HubProcess) -> list[int]:
    return [int(n) for n in CLOSED.findall(hub.log())]


def assert_clean_shutdown(hub: HubProcess) -> None:
    assert hub.process.returncode == 0, hub.log()[-3000:]
    log = hub.log()
    assert "...done" in log  # JupyterHub's own cleanup ran to its end
    assert "Traceback" not in log, log[-3000:]


def test_a_hub_that_served_the_spawn_page_closes_its_cluster_view(hub_factory):
    hub = hub_factory(NO_SLURM)
    client = hub.login("alice")
    page = client.get(hub.hub_url("spawn"))
    assert page.status_code == 200 and "moss-form" in page.text
    assert closed_counts(hub) == []  # nothing is closed while the hub runs
    hub.stop()
    assert_clean_shutdown(hub)
    (closed,) = closed_counts(hub)
    assert closed >= 1


def test_a_hub_that_asked_slurm_nothing_has_nothing_to_close(hub_factory):
    hub = hub_factory(NO_SLURM)
    hub.stop()
    assert_clean_shutdown(hub)
    assert closed_counts(hub) == [0]


# Printed as the hub process exits: whether our wrapper of JupyterHub.cleanup was in place.
REPORT_HOOK = textwrap.dedent(
    """
    import atexit

    def _report_moss_hook():
        from jupyterhub.app import JupyterHub

        print("moss cleanup hook:", getattr(JupyterHub.cleanup, "_moss_hook", False), flush=True)

    atexit.register(_report_moss_hook)
    """
)


def test_a_hub_with_another_spawner_stops_as_before(hub_factory):
    hub = hub_factory(REPORT_HOOK, spawner_class="simple")
    hub.stop()
    assert_clean_shutdown(hub)
    # JupyterHub imports every installed spawner, ours included: the wrapper ran, and was quiet
    assert "moss cleanup hook: True" in hub.log()
    assert "Slurm services" not in hub.log()
