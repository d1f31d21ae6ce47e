"""Every cookbook recipe runs offline, exits 0 and writes valid packets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aitel.validate import validate_files

COOKBOOK = Path(__file__).resolve().parent.parent / "cookbook"
RECIPES = sorted(p for p in COOKBOOK.glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_runs_offline(recipe: Path, tmp_path: Path) -> None:
    env = {**os.environ, "AITEL_DIR": str(tmp_path / "packets"), "AITEL_EXPORTER": "jsonl"}
    result = subprocess.run(
        [sys.executable, str(recipe)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    files = sorted((tmp_path / "packets").rglob("*.jsonl"))
    if files:
        report = validate_files(files)
        assert report.ok, report.problems[:3]
