"""axe-core, the accessibility checker, run on a part of a page in the browser tests."""

from __future__ import annotations

from playwright.sync_api import Page

from .infra import REPO

AXE = REPO / "dev" / "npm" / "node_modules" / "axe-core" / "axe.min.js"


def serious_axe_violations(page: Page, selector: str) -> list[tuple[str, str, list]]:
    """axe's serious and critical violations within ``selector``: (rule, help, elements).

    Fails if axe checked nothing there (a selector that matches nothing passes every rule).
    """
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async (part) => await axe.run(part)", selector)
    assert result["passes"], f"axe found nothing to check in {selector}"
    return [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
