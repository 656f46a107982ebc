"""Test tiers and the infrastructure each one needs.

The tier of a test is the folder it lives in (tests/unit, tests/hub, tests/slurm, tests/browser,
tests/e2e), and the marker of the same name is added automatically, so `pytest -m slurm` runs one
tier. Fixtures that need infrastructure call `missing()`, which skips for a contributor and fails
under MOSS_REQUIRE_ALL=1 (CI).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.hub import HubProcess, running_hub
from support.infra import (
    CHROMIUM,
    SlurmCluster,
    missing,
    proxy_command,
    running_cluster,
)

TIERS = ("unit", "hub", "slurm", "browser", "e2e")

# A test that asks for one accounting mode of the cluster carries its marker, so that the pass of
# dev/test on the other mode deselects it rather than skipping it (or failing it in CI).
MODE_MARKERS = {"accounting_cluster": "accounting", "plain_cluster": "no_accounting"}


def tier_index(item: pytest.Item) -> int:
    for index, tier in enumerate(TIERS):
        if item.get_closest_marker(tier):
            return index
    return len(TIERS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts and not item.get_closest_marker(tier):
                item.add_marker(getattr(pytest.mark, tier))
        for fixture_name, marker in MODE_MARKERS.items():
            if fixture_name in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, marker))
    # Tiers run in the order of TIERS: the fast ones fail first, and Playwright's sync API,
    # which keeps an event loop running in the main thread once started, comes after every
    # asyncio test (which could not start their own loop then).
    items.sort(key=tier_index)


def tier_of(report: pytest.TestReport | pytest.CollectReport) -> str:
    keywords = getattr(report, "keywords", None)
    if keywords is None:  # a collection error has no test, hence no markers
        return "collection"
    for tier in TIERS:
        if tier in keywords:
            return tier
    return "untiered"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One line per tier, so a CI log shows at a glance that every tier ran."""
    counts: dict[str, Counter] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") not in ("call", "setup") and outcome != "error":
                continue
            if outcome == "passed" and report.when != "call":
                continue
            counts.setdefault(tier_of(report), Counter())[outcome] += 1
    if not counts:
        return
    terminalreporter.section("tests per tier")
    for tier in (*TIERS, "untiered", "collection"):
        if tier in counts:
            parts = ", ".join(f"{n} {k}" for k, n in sorted(counts[tier].items()))
            terminalreporter.write_line(f"{tier:>8}: {parts}")


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    cluster = running_cluster()
    if cluster is None:
        missing("the local Slurm cluster is not running (start it with `dev/cluster start`)")
    return cluster


# `make test` (dev/test) runs the cluster with accounting, then without: a test that needs one
# mode asks for it, and skips (or fails under MOSS_REQUIRE_ALL=1) on the other.
@pytest.fixture(scope="session")
def accounting_cluster(slurm_cluster: SlurmCluster) -> SlurmCluster:
    """The local cluster, running slurmdbd (the default of `dev/cluster start`)."""
    if not slurm_cluster.accounting:
        missing("the local cluster runs without accounting (start it with `dev/cluster start`)")
    return slurm_cluster


@pytest.fixture(scope="session")
def plain_cluster(slurm_cluster: SlurmCluster) -> SlurmCluster:
    """The local cluster without an accounting database, as at many small sites."""
    if slurm_cluster.accounting:
        missing(
            "the local cluster runs with accounting "
            "(start it with `dev/cluster start --no-accounting`)"
        )
    return slurm_cluster


@pytest.fixture(scope="session")
def hub_infra() -> None:
    if proxy_command() is None:
        missing("configurable-http-proxy is not installed (run `dev/setup`)")


@pytest.fixture
def hub_factory(hub_infra, tmp_path: Path):
    """Start real hubs: ``hub_factory(extra_config="...", base_url="/")``."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        count = 0

        def start(extra_config: str = "", base_url: str = "/", **kwargs) -> HubProcess:
            nonlocal count
            count += 1
            return stack.enter_context(
                running_hub(tmp_path / f"hub{count}", extra_config, base_url, **kwargs)
            )

        yield start


@pytest.fixture
def hub(hub_factory) -> HubProcess:
    return hub_factory()


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if not os.path.exists(CHROMIUM):
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright Python package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )  # Playwright gives every launch a fresh, empty user-data-dir of its own
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()
