"""How browser tests wait on the spawn page: for what the page promises, never for time passing.

The page changes through htmx fragments (``/hub/moss/form/{fragment}/...``). A test that acts
and then looks must wait until the fragment its action asked for has been answered and swapped
in; an element merely appearing is not enough (it may be the old one, or one htmx has not wired
yet). Timers of the page itself (polling, the estimate's debounce) are driven with Playwright's
fake clock instead of waited out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from playwright.sync_api import Page, Response, expect

from .hub import HubProcess

#: Generous: the machine is small and shared; a wait ends as soon as its condition holds.
TIMEOUT_MS = 30_000

#: A request the user started (tab, reset, partition) still in flight, or a swap not settled.
#: The polled table and the estimate have lanes of their own and are waited for by name.
USER_REQUEST_BUSY = (
    "#moss-form :is(.htmx-request, .htmx-swapping, .htmx-settling)"
    ":not(#moss-availability, #moss-estimate)"
)


def is_fragment(fragment: str, *, containing: str = ""):
    """A predicate for ``expect_request``/``expect_response``: that fragment of the form."""

    def matches(message) -> bool:
        return f"/moss/form/{fragment}/" in message.url and containing in message.url

    return matches


def settled(page: Page, timeout: float = TIMEOUT_MS) -> None:
    """No request the user started is in flight and every swap has settled."""
    expect(page.locator(USER_REQUEST_BUSY)).to_have_count(0, timeout=timeout)


@contextmanager
def fragment_answered(
    page: Page, fragment: str, *, containing: str = "", timeout: float = TIMEOUT_MS
) -> Iterator[None]:
    """Around an action: the ``fragment`` it asks for is answered (2xx) and swapped in.

    Fails if the action sends no such request: a change the page dropped shows up here.
    """
    with page.expect_response(
        is_fragment(fragment, containing=containing), timeout=timeout
    ) as info:
        yield
    response: Response = info.value
    assert response.ok, f"{response.status} for {response.url}"
    settled(page, timeout)


def log_in(page: Page, hub: HubProcess, user: str = "alice") -> None:
    """Log in through the login form and wait for the page it leads to."""
    page.goto(hub.hub_url("login"))
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", "any")
    # the login page's own URL already matches "**/hub/**": wait for the navigation itself
    with page.expect_navigation(timeout=TIMEOUT_MS):
        page.click("input[type=submit], button[type=submit]")
    assert "/hub/login" not in page.url, page.url


def open_spawn_page(page: Page, hub: HubProcess, path: str = "spawn") -> None:
    """Go to the spawn form; ``goto`` returns after ``load``, when htmx has wired the page."""
    page.goto(hub.hub_url(path))
    expect(page.locator("#moss-form")).to_be_attached()
    settled(page)


def stop_the_clock(page: Page) -> None:
    """Freeze the page's timers (needs ``page.clock.install()`` before the page loads).

    From here only ``page.clock.run_for(ms)`` moves time: polls and debounces fire when the test
    says so, whatever the load on the machine.
    """
    # The page's clock keeps running while this call travels: aim well ahead of its reading (a
    # target already past is refused). Timers due on the way fire once, as after a short pause.
    now_ms = page.evaluate("Date.now()")
    page.clock.pause_at(datetime.fromtimestamp(now_ms / 1000) + timedelta(seconds=10))
