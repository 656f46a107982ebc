"""The package as admins install it: entry point, vendored htmx, and what a wheel carries."""

import hashlib
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import jupyterhub_moss

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "jupyterhub_moss" / "static"


def read_record() -> dict[str, str]:
    lines = (STATIC / "htmx.VERSION").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_spawner_entry_point_names_our_class():
    (entry,) = [e for e in entry_points(group="jupyterhub.spawners") if e.name == "moss"]
    assert entry.load() is jupyterhub_moss.MOSlurmSpawner


def test_vendored_htmx_matches_its_recorded_checksum():
    record = read_record()
    digest = hashlib.sha256((STATIC / "htmx.min.js").read_bytes()).hexdigest()
    assert record["package"] == "htmx.org"
    assert record["version"].startswith("2.0.")
    assert digest == record["sha256"]
    assert "htmx" in (STATIC / "htmx.LICENSE").read_text().lower() or (
        "permission" in (STATIC / "htmx.LICENSE").read_text().lower()
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("jupyterhub_moss-*.whl")
    return wheel


def test_wheel_carries_templates_and_static_files(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"jupyterhub_moss/{path.relative_to(REPO / 'jupyterhub_moss')}"
        for folder in ("templates", "static")
        for path in (REPO / "jupyterhub_moss" / folder).iterdir()
        if path.is_file()
    }
    assert "jupyterhub_moss/static/htmx.min.js" in expected
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
