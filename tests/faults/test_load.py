"""`make load`, scaled down: the load test's own checks hold under injected DynamoDB faults.

The full run (10,000 requests, 4 instances) takes about two minutes; this one keeps its shape
(several instances, faults, sessions ended at the end and checked once every instance's trust
in them has run out) at a size `make test` can afford.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_scaled_down_load_run_passes_its_checks() -> None:
    arguments = ("--requests", "400", "--clients", "10", "--sessions", "40", "--end", "10", "--instances", "2")
    result = subprocess.run(
        [sys.executable, "-m", "load", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = result.stdout[result.stdout.find("== load report ==") :]
    assert result.returncode == 0, report or result.stdout[-3000:] + result.stderr[-3000:]
    assert "'ended → 404': 10" in report
    assert "checks          PASS" in report
    assert "  listen " in report, "the run includes subscriptions/listen requests"
