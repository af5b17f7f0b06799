"""The report in a real browser: headless Chromium (Debian's `chromium`) renders the page of a
real local run; its screenshot is not blank and shows the states' colours, and the page holds
the task names and states. `tests/run` installs chromium; in CI (CI=true) its absence fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from submitter.report.svg import STATE_COLORS
from tests.integration.test_report import run_pipeline

WINDOW = (1400, 2000)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is missing in CI: tests/run installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed here (tests/run installs it; in CI it must be)")


def headless(page: Path, profile: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",  # tests run as root
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *options,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def test_the_report_renders_in_chromium(tmp_path: Path) -> None:
    chromium()
    page = run_pipeline(tmp_path / "project")
    shot = tmp_path / "report.png"
    headless(
        page,
        tmp_path / "profile",
        f"--screenshot={shot}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    )
    with Image.open(shot) as image:
        assert image.size == WINDOW
        colours = image.convert("RGB").getcolors(WINDOW[0] * WINDOW[1]) or []
    pixels = Counter({colour: count for count, colour in colours})
    background, most = pixels.most_common(1)[0]
    assert background == (255, 255, 255)
    assert most < 0.97 * WINDOW[0] * WINDOW[1], "the page is (almost) blank"
    assert len(pixels) > 50, "only a few colours: nothing drawn but flat boxes"
    for state in ("completed", "failed"):
        assert pixels[_rgb(STATE_COLORS[state])] > 50, f"no {state} bar or chip drawn"
    dark_text = sum(n for (r, g, b), n in pixels.items() if r + g + b < 150)
    assert dark_text > 2000, "no legible text"

    dom = headless(page, tmp_path / "profile", "--dump-dom").stdout
    for shown in ("prepare", "broken", "flaky", "weird&lt;name&gt;&amp;", "completed", "failed"):
        assert shown in dom
    assert "Failures (1)" in dom and "the last words on stderr" in dom
