"""The hub starts with set_config(c) and serves its pages."""

import httpx


def test_hub_with_set_config_serves_its_login_page(hub):
    response = httpx.get(hub.hub_url("login"))
    assert response.status_code == 200
    assert 'name="username"' in response.text
    assert "jupyterhub_moss.MOSlurmSpawner" in hub.log() or "MOSlurmSpawner" in hub.log()


def test_vendored_htmx_is_served_under_the_hub_prefix(hub):
    response = httpx.get(hub.hub_url("moss/static/htmx.min.js"))
    assert response.status_code == 200
    assert "htmx" in response.text[:2000]
