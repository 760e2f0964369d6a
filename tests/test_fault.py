"""Fault test (slow): savers in child processes killed with SIGKILL mid-save; after recovery no acknowledged save is
lost or torn, no temporary file or orphan is left, and the folder loads with `datasets`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_kill_9_during_saves_loses_nothing_and_leaves_nothing(tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmarks.fault", "--kills", "6", "--max-delay", "1.5",
                             "--size", "320x240", "--seed", "1", "--root", str(tmp_path / "annotations"), "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0 and figures["passed"], (figures, result.stderr[-2000:])
    assert figures["kills"] == 6 and figures["acknowledged"] > 0 and figures["rows"] >= figures["acknowledged"]
    assert figures["lost"] == figures["torn"] == figures["temp_files_left"] == figures["orphans_left"] == 0
    assert figures["load_ok"] and figures["loaded_rows"] == figures["rows"]
    assert not list((tmp_path / "annotations").rglob("*.tmp"))
