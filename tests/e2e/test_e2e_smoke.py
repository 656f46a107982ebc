"""Hub, Slurm and browser together: alice logs in through Chromium to a hub on the real cluster."""


def test_alice_logs_in_through_chromium_to_a_hub_on_the_cluster(slurm_cluster, hub_factory, page):
    hub = hub_factory(env=slurm_cluster.env)
    page.goto(hub.hub_url("login"))
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "any")
    # the login page's own URL already matches "**/hub/**": wait for the navigation itself
    with page.expect_navigation():
        page.click("input[type=submit], button[type=submit]")
    assert "/hub/login" not in page.url
    assert "alice" in page.content()
    assert "SLURM_CONF" in slurm_cluster.env
