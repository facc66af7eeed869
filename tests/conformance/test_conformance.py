"""The official MCP conformance suite against `mcpkit dev --server conformance` (the Lambda code path).

The server scenarios run once per requirement set (`--requirements 2026-07-28` and
`--requirements 2025-11-25`, each at its own wire: the suite picks the wire from the revision)
and per front: the buffered HTTP API stand-in, and the streaming function URL that
`stream_responses = true` selects (the same fixture folder, copied with the switch on). The
authorization-server scenarios run against the buffered server with `--auth oauth`, a script
standing in for the person who signs in. Every failed check is compared with
`servers/conformance/expected-failures.txt` both ways: a failure not listed there is a regression,
and a listed check that no longer fails (or no longer exists) means the list must shrink. An entry
tagged `[buffered]` is expected on the buffered front only.

Scored are the scenarios a requirement set lists as required, plus those it runs as `pending`
(the suite's own fixture cannot pass them yet, but this server may); `extension` scenarios are
optional by definition (SEP-1730) and not scored.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.auth.harness import Harness, dev_credentials
from tests.conftest import ROOT, free_port, start_dev_server, stop_dev_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

CONFORMANCE = ROOT / "node_modules" / ".bin" / "conformance"
EXPECTED_FAILURES = ROOT / "servers" / "conformance" / "expected-failures.txt"
REVISIONS = ("2026-07-28", "2025-11-25")
FRONTS = ("buffered", "streaming")
AUTHORIZATION = "authorization"
# Result folders are named `<kind>-<scenario>-<ISO timestamp with dashes>`.
RESULT_DIR = re.compile(r"^(?:server|authorization-server)-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
ENTRY = re.compile(
    r"^(?P<scenario>[\w./-]+):(?P<check>[\w./-]+)(?: \[(?P<front>buffered|streaming)\])?:\s*(?P<reason>\S.*)$"
)


@dataclass(frozen=True)
class Failure:
    run: str  # "<front> <requirement set>", or "authorization"
    front: str
    scenario: str
    check: str
    message: str

    @property
    def key(self) -> str:
        return f"{self.scenario}:{self.check}"


def node_env() -> dict[str, str]:
    # The suite needs Node >= 22, which lives in .venv/bin; the system one may be older.
    return {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}


def conformance(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONFORMANCE), *args], capture_output=True, text=True, env=node_env(), timeout=timeout, check=False
    )


@dataclass(frozen=True)
class Expected:
    reason: str
    front: str | None  # None: on every front

    def applies_to(self, front: str) -> bool:
        return self.front in (None, front)


def read_expected_failures(path: Path = EXPECTED_FAILURES) -> dict[str, Expected]:
    """`scenario:check-id` → why, one per line as `<scenario>:<check-id>[ [front]]: <reason>`."""
    expected: dict[str, Expected] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        entry = ENTRY.match(line)
        if entry is None:
            raise ValueError(f"{path}:{number}: expected '<scenario>:<check-id>: <reason>', got {line!r}")
        key = f"{entry['scenario']}:{entry['check']}"
        if key in expected:
            raise ValueError(f"{path}:{number}: {key} is listed twice")
        expected[key] = Expected(entry["reason"], entry["front"])
    return expected


def scored_scenarios(revision: str) -> set[str]:
    """The server scenarios `--requirements <revision>` runs that count: required, plus pending."""
    listing = conformance("list", "--server", "--requirements", revision)
    assert listing.returncode == 0, listing.stderr
    scored: set[str] = set()
    section = ""
    for line in listing.stdout.splitlines():
        if heading := re.match(r"^(\S.*?):?\s*$", line):
            section = heading[1]
        elif category := re.match(r"^  (\w[\w-]*) \(\d+\):$", line):
            section = category[1]
        elif (item := re.match(r"^\s+- (\S+)(?: \[(\w+)\])?$", line)) and (
            section.startswith("Server scenarios") or (item[2] == "server" and section != "extension")
        ):
            scored.add(item[1])
    assert scored, listing.stdout
    return scored


def authorization_scenarios() -> set[str]:
    listing = conformance("list", "--authorization")
    return set(re.findall(r"^\s+- (\S+)", listing.stdout, flags=re.MULTILINE))


def read_failures(run: str, front: str, output_dir: Path, scored: set[str]) -> tuple[set[str], list[Failure]]:
    """The scored scenarios that ran, and every failed check among them."""
    ran: set[str] = set()
    failures: list[Failure] = []
    for folder in sorted(output_dir.iterdir()):
        match = RESULT_DIR.match(folder.name)
        if match is None or match["scenario"] not in scored:
            continue
        scenario = match["scenario"]
        ran.add(scenario)
        checks_file = folder / "checks.json"
        if not checks_file.exists():
            failures.append(Failure(run, front, scenario, "checks-json", "the scenario wrote no checks.json"))
            continue
        for check in json.loads(checks_file.read_text(encoding="utf-8")):
            if check["status"] == "FAILURE":
                failures.append(Failure(run, front, scenario, check["id"], check.get("errorMessage", "")))
    return ran, failures


@dataclass(frozen=True)
class Run:
    front: str
    scored: set[str]
    ran: set[str]
    failures: list[Failure]


def streaming_copy(servers_dir: Path) -> Path:
    """servers/conformance as a user would switch it: the same folder with `stream_responses = true`."""
    folder = servers_dir / "conformance"
    shutil.copytree(ROOT / "servers" / "conformance", folder, ignore=shutil.ignore_patterns("__pycache__"))
    config = folder / "mcpkit.toml"
    config.write_text(config.read_text(encoding="utf-8") + "stream_responses = true\n", encoding="utf-8")
    return servers_dir


@pytest.fixture(scope="module", params=FRONTS)
def server_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    front: str = request.param
    args = ["--server", "conformance"]
    if front == "streaming":
        args += ["--servers-dir", str(streaming_copy(tmp_path_factory.mktemp("servers")))]
    server = start_dev_server(*args)
    runs: dict[str, Run] = {}
    try:
        for revision in REVISIONS:
            output = tmp_path_factory.mktemp(f"conformance-{front}-{revision}")
            # The exit code only says "something failed"; the per-scenario checks.json files say what.
            target = ("--url", server.url, "--requirements", revision)
            conformance("server", *target, "--output-dir", str(output), timeout=600)
            scored = scored_scenarios(revision)
            runs[revision] = Run(front, scored, *read_failures(f"{front} {revision}", front, output, scored))
    finally:
        stop_dev_server(server)
    return runs


@pytest.fixture(scope="module")
def authorization_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The authorization-server scenarios, a script signing in where the suite waits for a person."""
    server = start_dev_server("--server", "conformance", "--auth", "oauth", ready_when="Dev sign-in:")
    person = Harness(server, "", *dev_credentials(server.output()))
    try:
        port = free_port()
        # A public client: the suite then authenticates at the token endpoint with `none` (it picks
        # `none` whenever the server offers it), as Claude Code and the Inspector do.
        callback = f"http://127.0.0.1:{port}/callback"
        registered = person.register(redirect_uris=[callback], token_endpoint_auth_method="none")
        issuer = httpx.get(f"{person.base}/.well-known/oauth-authorization-server", timeout=10).json()["issuer"]
        output = tmp_path_factory.mktemp("conformance-authorization")
        command = [str(CONFORMANCE), AUTHORIZATION, "--url", issuer, "--client-id", registered["client_id"]]
        command += ["--resource", server.url, "--port", str(port), "--output-dir", str(output)]
        suite = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=node_env())
        assert suite.stdout is not None
        for line in suite.stdout:
            # The suite prints the authorization URL for a person to open, then waits for its callback.
            if line.startswith(person.base) and "/oauth/authorize?" in line:
                httpx.get(person.sign_in(person.http.get(line.strip())), timeout=10)
        suite.wait(timeout=120)
        scored = authorization_scenarios()
        yield Run("buffered", scored, *read_failures(AUTHORIZATION, "buffered", output, scored))
    finally:
        person.http.close()
        stop_dev_server(server)


def test_expected_failures_file_is_well_formed() -> None:
    expected = read_expected_failures()
    assert expected, "the file lists the stream-dependent checks"
    known = authorization_scenarios().union(*(scored_scenarios(r) for r in REVISIONS))
    unknown = sorted(k for k in expected if k.split(":", 1)[0] not in known)
    assert unknown == [], "every entry names a scored scenario"


@pytest.mark.parametrize("revision", REVISIONS)
def test_every_scored_scenario_ran(server_runs: dict[str, Run], revision: str) -> None:
    run = server_runs[revision]
    assert run.scored - run.ran == set()


def test_every_authorization_scenario_ran(authorization_run: Run) -> None:
    assert authorization_run.scored - authorization_run.ran == set()


def test_no_unexpected_failures(server_runs: dict[str, Run], authorization_run: Run) -> None:
    expected = read_expected_failures()
    failures = [f for run in _runs(server_runs, authorization_run) for f in run.failures]
    unexpected = [
        f"{f.run} {f.key}: {f.message}"
        for f in failures
        if f.key not in expected or not expected[f.key].applies_to(f.front)
    ]
    assert unexpected == []


def test_expected_failures_still_fail(server_runs: dict[str, Run], authorization_run: Run) -> None:
    # A listed check that passes now (or that the suite no longer has) means the runtime learned
    # it, or the suite changed: delete its line (or tag it with the front it still fails on).
    runs = _runs(server_runs, authorization_run)
    front, ran = runs[0].front, set().union(*(run.ran for run in runs))
    failing = {f.key for run in runs for f in run.failures}
    expected = read_expected_failures().items()
    applicable = {key for key, entry in expected if entry.applies_to(front) and key.split(":", 1)[0] in ran}
    assert sorted(applicable - failing) == []


def _runs(server_runs: dict[str, Run], authorization_run: Run) -> list[Run]:
    """This front's runs; the authorization scenarios ran once, against the buffered front."""
    runs = list(server_runs.values())
    return [*runs, authorization_run] if runs[0].front == authorization_run.front else runs
