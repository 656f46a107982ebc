"""A real Chromium loads the hub's login page and logs in."""


def test_chromium_loads_the_login_page_and_logs_in(hub, page):
    page.goto(hub.hub_url("login"))
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "any")
    # the login page's own URL already matches "**/hub/**": wait for the navigation itself
    with page.expect_navigation():
        page.click("input[type=submit], button[type=submit]")
    assert "/hub/login" not in page.url
    assert "alice" in page.content()
