"""`make dev` on a machine without root, apt-get or a browser; the browser test skipped, or required under CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow

HIDDEN = ("chromium", "chrome", "google-chrome", "apt", "dpkg", "sudo")


def bare_path(tmp_path: Path) -> str:
    """A PATH with the system's tools but no browser, no package manager and no sudo."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not Path(folder).is_dir() or folder.startswith(str(ROOT)):
            continue
        for entry in os.scandir(folder):
            if entry.name.startswith(HIDDEN) or (bin_dir / entry.name).exists():
                continue
            if entry.is_file() and os.access(entry.path, os.X_OK):
                (bin_dir / entry.name).symlink_to(entry.path)
    assert shutil.which("chromium", path=str(bin_dir)) is None
    assert shutil.which("apt-get", path=str(bin_dir)) is None
    return str(bin_dir)


def bare_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    # MAKE*/MFLAGS too: under `make test` a make started here would act as a sub-make (and say so).
    dropped = ("MCPKIT_", "AWS_", "PYTEST", "CI", "MAKE", "MFLAGS")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return {**keep, "PATH": bare_path(tmp_path), "HOME": str(home)}


def test_make_dev_serves_without_apt_get_a_browser_or_a_home(tmp_path: Path) -> None:
    port = free_port()
    env = bare_env(tmp_path)
    log = (tmp_path / "make-dev.log").open("w+")
    # The checkout's .venv and node_modules are current, so nothing is downloaded; a fresh state folder.
    process = subprocess.Popen(
        ["make", "dev", f"PORT={port}", "SERVER=example"],
        cwd=ROOT,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            log.seek(0)
            if f"ready at {url}" in log.read():
                break
            time.sleep(0.3)
        log.seek(0)
        output = log.read()
        assert f"ready at {url}" in output, output
        assert "apt-get" not in output
        assert "chromium" not in output.lower()
        listed = httpx.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"},
            timeout=30,
        )
        assert listed.status_code == 200, listed.text
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        log.close()


def test_make_browser_without_a_browser_says_how_to_get_one(tmp_path: Path) -> None:
    result = subprocess.run(
        ["make", "browser"], cwd=ROOT, env=bare_env(tmp_path), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("No Chromium or Chrome found:"), result.stdout
    assert "apt-get update" not in result.stdout


@pytest.mark.parametrize(("ci", "outcome"), [("", "skipped"), ("true", "error")])
def test_without_a_browser_the_browser_tests_skip_and_under_ci_fail(tmp_path: Path, ci: str, outcome: str) -> None:
    env = {**bare_env(tmp_path), "CI": ci}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "no:xdist",
         "tests/auth/test_accessibility.py", "-k", "consent"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    summary = result.stdout.strip().splitlines()[-1]
    assert outcome in summary, result.stdout[-3000:]
    assert (result.returncode == 0) == (outcome == "skipped"), summary
    if outcome == "skipped":
        assert "no Chromium or Chrome found" in result.stdout
        assert "sudo make browser" in result.stdout
