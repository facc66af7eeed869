"""The official MCP conformance suite (server mode) against `mcpkit dev --server conformance`.

The suite drives the server over HTTP through the local API Gateway front and the real Lambda
handler. Its per-scenario results are compared with `servers/conformance/expected-failures.txt`
both ways: an unexpected failure is a regression, and an expected failure that now passes means
the list must shrink.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from tests.conftest import ROOT, DevServer, start_dev_server, stop_dev_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

CONFORMANCE = ROOT / "node_modules" / ".bin" / "conformance"
EXPECTED_FAILURES = ROOT / "servers" / "conformance" / "expected-failures.txt"
# Result folders are named `server-<scenario>-<ISO timestamp with dashes>`.
RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def node_env() -> dict[str, str]:
    # The suite needs Node >= 22, which lives in .venv/bin; the system one may be older.
    return {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}


def read_expected_failures(path: Path = EXPECTED_FAILURES) -> dict[str, str]:
    expected: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        scenario, sep, reason = line.partition(":")
        if not sep or not reason.strip():
            raise ValueError(f"{path}:{number}: expected '<scenario>: <reason>', got {line!r}")
        expected[scenario.strip()] = reason.strip()
    return expected


def listed_scenarios() -> set[str]:
    listing = subprocess.run(
        [str(CONFORMANCE), "list", "--server"], capture_output=True, text=True, env=node_env(), timeout=60, check=True
    )
    return set(re.findall(r"^\s*-\s+(\S+)", listing.stdout, flags=re.MULTILINE))


def read_results(output_dir: Path) -> dict[str, ScenarioResult]:
    results: dict[str, ScenarioResult] = {}
    for folder in sorted(output_dir.iterdir()):
        match = RESULT_DIR.match(folder.name)
        if match is None:
            continue
        checks = json.loads((folder / "checks.json").read_text(encoding="utf-8"))
        failures = [f"{c['id']}: {c.get('errorMessage', '')}" for c in checks if c["status"] == "FAILURE"]
        results[match["scenario"]] = ScenarioResult(match["scenario"], failures)
    return results


@pytest.fixture(scope="module")
def conformance_server() -> Iterator[DevServer]:
    server = start_dev_server("--server", "conformance")
    yield server
    stop_dev_server(server)


@pytest.fixture(scope="module")
def suite_results(conformance_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScenarioResult]:
    output = tmp_path_factory.mktemp("conformance")
    # The exit code only says "something failed"; the per-scenario checks.json files say what.
    subprocess.run(
        [str(CONFORMANCE), "server", "--url", conformance_server.url, "--suite", "all", "--output-dir", str(output)],
        capture_output=True,
        text=True,
        env=node_env(),
        timeout=300,
        check=False,
    )
    return read_results(output)


def test_expected_failures_file_is_well_formed() -> None:
    expected = read_expected_failures()
    assert expected, "the file lists the stream-dependent scenarios"
    assert set(expected) <= listed_scenarios(), "every entry names a scenario the suite has"


def test_every_scenario_ran(suite_results: dict[str, ScenarioResult]) -> None:
    assert set(suite_results) == listed_scenarios()


def test_no_unexpected_failures(suite_results: dict[str, ScenarioResult]) -> None:
    expected = read_expected_failures()
    unexpected = {r.scenario: r.failures for r in suite_results.values() if not r.passed and r.scenario not in expected}
    assert unexpected == {}


def test_expected_failures_still_fail(suite_results: dict[str, ScenarioResult]) -> None:
    # A listed scenario that passes now means the runtime learned it: delete its line.
    now_passing = [s for s in read_expected_failures() if s in suite_results and suite_results[s].passed]
    assert now_passing == []
