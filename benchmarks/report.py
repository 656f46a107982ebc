"""Results: one row per figure, both implementations side by side, their ratio and the target.

The Markdown table is printed and written into ``docs/benchmarks.md`` between two marker
comments; everything else in that file is hand-written and kept as it is.
"""

from __future__ import annotations

import math
import os
import platform
import re
import statistics
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .hubs import OURS_PYTHON, REFERENCE_VENV, REPO, installed_versions

BEGIN = "<!-- benchmark results: begin (written by benchmarks/run; edits here are lost) -->"
END = "<!-- benchmark results: end -->"
DOC = REPO / "docs" / "benchmarks.md"

#: A target: (how it reads in the table, a check on (ours, reference) -> met or not).
Check = Callable[[float, float | None], bool]


@dataclass(frozen=True)
class Target:
    text: str
    check: Check


@dataclass
class Row:
    scenario: str
    metric: str
    unit: str = ""
    digits: int = 1
    target: Target | None = None
    values: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def ratio(self) -> float | None:
        if self.digits == 0:
            return None  # counts (errors, tries): the figures say more than their ratio
        ours, reference = self.values.get("ours"), self.values.get("reference")
        if ours is None or reference is None or _bad(ours) or _bad(reference) or reference == 0:
            return None
        return ours / reference

    def verdict(self) -> str:
        if self.target is None:
            return ""
        ours = self.values.get("ours")
        if ours is None or _bad(ours):
            return f"{self.target.text}: not measured"
        reference = self.values.get("reference")
        met = self.target.check(ours, None if reference is None or _bad(reference) else reference)
        return f"{self.target.text}: **{'met' if met else 'missed'}**"

    def shown(self, key: str) -> str:
        value = self.values.get(key)
        note = self.notes.get(key, "")
        if value is None or _bad(value):
            text = "—"
        else:
            text = f"{value:,.{self.digits}f}"
            if self.unit:
                text += f" {self.unit}"
        return f"{text} ({note})" if note else text


def _scenario_number(scenario: str) -> int:
    match = re.match(r"\s*(\d+)", scenario)
    return int(match.group(1)) if match else 99


def _bad(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)


def median(values: list[float]) -> float:
    """The median, or NaN (shown as "—") when nothing was measured."""
    return statistics.median(values) if values else float("nan")


def median_ratio(values: list[float], other: list[float] | float | None) -> float:
    """The median of ``values`` over ``other`` (a median of its own, or a figure already
    taken); NaN when either side was not measured."""
    bottom = median(other) if isinstance(other, list) else other
    if not values or bottom is None or bottom != bottom or bottom == 0:
        return float("nan")
    return median(values) / bottom


def spread(values: list[float], digits: int = 2) -> str:
    """The range of a handful of tries, for the row's note ("" for one try)."""
    if len(values) < 2:
        return ""
    return f"min {min(values):.{digits}f}, max {max(values):.{digits}f}"


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, scenario: str, metric: str, **spec: object) -> Row:
        """The row for (scenario, metric), made on first use with ``spec``."""
        for row in self.rows:
            if row.scenario == scenario and row.metric == metric:
                return row
        made = Row(scenario, metric, **spec)  # type: ignore[arg-type]
        self.rows.append(made)
        return made

    def put(
        self,
        implementation: str,
        scenario: str,
        metric: str,
        value: float | None,
        note: str = "",
        **spec: object,
    ) -> None:
        row = self.row(scenario, metric, **spec)
        row.values[implementation] = value
        if note:
            row.notes[implementation] = note

    def table(self) -> str:
        lines = [
            "| scenario | figure | ours | reference | ratio (ours / reference) | target |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        # Grouped by scenario number, in the order figures were first reported within each.
        for row in sorted(self.rows, key=lambda row: _scenario_number(row.scenario)):
            ratio = row.ratio()
            lines.append(
                "| "
                + " | ".join(
                    [
                        row.scenario,
                        row.metric,
                        row.shown("ours"),
                        row.shown("reference"),
                        "—" if ratio is None else f"{ratio:.2f}x",
                        row.verdict(),
                    ]
                )
                + " |"
            )
        return "\n".join(lines)


# -- machine information ----------------------------------------------------------------------


def _first_line(args: list[str]) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "unknown"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def machine_info(mode: str) -> dict[str, str]:
    ours = installed_versions(OURS_PYTHON, ["jupyterhub", "batchspawner"])
    reference_python = REFERENCE_VENV / "bin" / "python"
    reference = (
        installed_versions(reference_python, ["jupyterhub-moss", "jupyterhub", "batchspawner"])
        if reference_python.exists()
        else {}
    )
    commit = _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(REPO), "status", "--porcelain", "--", "jupyterhub_moss"])
    return {
        "date (UTC)": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "mode": mode,
        "CPUs": f"{os.cpu_count()} x {_cpu_model()}",
        "memory": _memory(),
        "OS": _os_name(),
        "Slurm": _first_line(["sinfo", "--version"]),
        "Python": _first_line([str(OURS_PYTHON), "--version"]),
        "JupyterHub": f"{ours.get('jupyterhub')} (both hubs)",
        "batchspawner": f"{ours.get('batchspawner')} (both hubs)",
        "ours": f"jupyterhub_moss at {commit}{' + uncommitted changes' if dirty else ''}",
        "reference": f"jupyterhub-moss {reference.get('jupyterhub-moss')} from PyPI",
    }


def _memory() -> str:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return "unknown"
    match = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return f"{int(match.group(1)) / 1024 / 1024:.1f} GiB" if match else "unknown"


def _os_name() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return platform.platform()
    match = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', text, re.MULTILINE)
    return match.group(1) if match else platform.platform()


# -- the document -------------------------------------------------------------------------------


def results_section(results: Results, info: Mapping[str, str]) -> str:
    machine = "\n".join(f"| {key} | {value} |" for key, value in info.items())
    notes = "\n".join(f"- {note}" for note in results.notes)
    return "\n\n".join(
        part
        for part in [
            BEGIN,
            "| machine | |\n| --- | --- |\n" + machine,
            results.table(),
            notes,
            END,
        ]
        if part
    )


def write_doc(section: str, doc: Path = DOC) -> None:
    """Replace the results between the markers; keep the hand-written rest of the file."""
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
