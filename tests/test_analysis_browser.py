"""The HTML report renders its charts in headless Chromium, offline, without errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aitel.analysis.analyze import analyze
from aitel.analysis.html_report import write_html_report
from aitel.analysis.loading import load
from aitel.analysis.synthetic import write_dataset

pytestmark = pytest.mark.browser

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str:
    for name in _BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):  # under CI a skipped browser test proves nothing
        pytest.fail("no Chromium found (scripts/test-deps.sh installs it)")
    pytest.skip("no Chromium found (apt-get install chromium)")


def _chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=20000",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> tuple[Path, int]:
    base = tmp_path_factory.mktemp("html")
    write_dataset(base / "data", 1500, seed=13, per_file=1500)
    with load([base / "data"]) as ds:
        report = analyze(ds)
        path = write_html_report(ds, report, base / "report.html")
    page = path.read_text(encoding="utf-8")
    embedded = re.search(
        r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S
    )
    assert embedded
    data = json.loads(embedded.group(1))
    assert data["waterfalls"], "a failing request to draw"
    assert any(f["id"] == "ranking" for f in data["figures"])
    return path, len(data["figures"]) + 1


def test_report_is_self_contained(report_file):
    path, _ = report_file
    page = path.read_text(encoding="utf-8")
    assert "<script src=" not in page
    assert "<link " not in page
    assert page.count("plotly.js v") >= 1


def test_charts_render_in_headless_chromium(report_file, tmp_path):
    browser = _browser()
    path, expected = report_file
    result = _chromium(browser, tmp_path / "profile", "--dump-dom", path.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    status = re.search(r'<div id="render-status"([^>]*)>', dom)
    assert status, dom[:500]
    charts = re.search(r'data-charts="(\d+)"', status.group(1))
    errors = re.search(r'data-errors="([^"]*)"', status.group(1))
    assert charts and int(charts.group(1)) == expected
    assert errors and errors.group(1) == ""
    assert dom.count('class="main-svg"') >= expected
    rendered_bars = dom.count('class="point"')
    assert rendered_bars > 20
    console_errors = [
        line
        for line in result.stderr.splitlines()
        if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)
    ]
    assert console_errors == []

    shot = tmp_path / "report.png"
    result = _chromium(
        browser,
        tmp_path / "profile2",
        "--window-size=1400,3400",
        f"--screenshot={shot}",
        path.as_uri(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.exists()
    assert shot.stat().st_size > 20_000
