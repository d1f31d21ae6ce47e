"""The cookbook recipes run offline, exit 0 and write valid packets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import aitel

COOKBOOK = Path(__file__).resolve().parents[3] / "cookbook"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "expected"),
    [("llama_index_rag.py", 2), ("llama_index_agent.py", 1)],
)
def test_recipe_runs_offline(script: str, expected: int, tmp_path: Path) -> None:
    """Each recipe exits 0, prints a summary and writes its packets to $AITEL_DIR."""
    env = {**os.environ, "AITEL_DIR": str(tmp_path)}
    env.pop("AITEL_EXPORTER", None)
    done = subprocess.run(
        [sys.executable, str(COOKBOOK / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "packets written to" in done.stdout
    packets = [
        json.loads(line)
        for path in sorted(tmp_path.glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    assert len(packets) == expected
    for packet in packets:
        aitel.ContextPacket.model_validate(packet)
        assert packet["status"] == "SUCCESS"
        assert packet["producer"]["integration"] == "llama_index"
