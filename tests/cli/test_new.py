"""`mcpkit templates` and `mcpkit new`: every template renders into a server that passes its own
tests and serves through `mcpkit dev`; bad names and existing folders are refused."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest

from mcpkit.server_config import load_server
from mcpkit.templates import TemplateError, list_templates, render
from tests.conftest import ROOT, start_dev_server, stop_dev_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

TEMPLATES = ["http-api", "long-task", "minimal", "notes", "s3-docs"]
MCPKIT = [sys.executable, "-m", "mcpkit"]
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def mcpkit(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MCPKIT, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


def test_templates_lists_every_template_with_a_one_line_description() -> None:
    result = mcpkit("templates")
    assert result.returncode == 0, result.stderr
    infos = list_templates()
    assert [t.name for t in infos] == TEMPLATES
    for info in infos:
        assert re.search(rf"^\s*{re.escape(info.name)}\s+\S", result.stdout, flags=re.MULTILINE), info.name
        assert "\n" not in info.description


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_folder_is_a_valid_server_folder(template: str) -> None:
    folder = load_server(ROOT / "server_templates" / template)
    assert (folder.path / "README.md").is_file()
    assert (folder.path / "tests").is_dir()


def test_new_renders_variables_and_prints_the_next_three_commands(tmp_path: Path) -> None:
    result = mcpkit("new", "team-notes", "--template", "notes", "--dir", str(tmp_path), "--description", "Our notes")
    assert result.returncode == 0, result.stderr
    dest = tmp_path / "team-notes"
    config = tomllib.loads((dest / "mcpkit.toml").read_text())
    assert config["description"] == "Our notes"
    readme = (dest / "README.md").read_text()
    assert readme.startswith("# Team Notes\n")
    assert "make deploy SERVER=team-notes" in readme
    assert "make test SERVER=team-notes" in readme
    assert "{{" not in readme
    assert not (dest / "template.toml").exists()
    lines = [line.strip() for line in result.stdout.splitlines()]
    # Outside servers/ there is no make target for the folder: the venv's own tools, as printed.
    assert lines[-3:] == [
        f".venv/bin/mcpkit dev team-notes --servers-dir {tmp_path}",
        f".venv/bin/pytest {tmp_path / 'team-notes' / 'tests'}",
        "make deploy SERVER=team-notes",
    ]


def test_new_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "server.py").write_text("# mine\n")
    result = mcpkit("new", "taken", "--dir", str(tmp_path))
    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert (tmp_path / "taken" / "server.py").read_text() == "# mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no staging folder left behind


@pytest.mark.parametrize("name", ["Bad_Name", "x-", "a--b", "1abc", "x" * 41])
def test_new_refuses_invalid_names(tmp_path: Path, name: str) -> None:
    result = mcpkit("new", name, "--dir", str(tmp_path))
    assert result.returncode != 0
    assert "server name" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_new_refuses_unknown_template(tmp_path: Path) -> None:
    result = mcpkit("new", "ok", "--template", "nope", "--dir", str(tmp_path))
    assert result.returncode != 0
    assert "no template named 'nope'" in result.stderr
    with pytest.raises(TemplateError, match="available: http-api"):
        render("nope", "ok", tmp_path / "ok")


@pytest.fixture(scope="module")
def build_dir() -> Iterator[Path]:
    # Inside the project (git-ignored .build/): `mcpkit dev --servers-dir` cannot serve folders
    # outside the project root yet (see test_dev_serves_a_servers_dir_outside_the_project).
    path = ROOT / ".build" / f"test-new-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("template", TEMPLATES)
def test_generated_server_passes_its_own_tests_and_serves_through_mcpkit_dev(template: str, build_dir: Path) -> None:
    name = f"gen-{template}"
    result = mcpkit("new", name, "--template", template, "--dir", str(build_dir))
    assert result.returncode == 0, result.stderr
    dest = build_dir / name

    # Its own tests, as its author runs them, in a fresh interpreter rooted at the new folder.
    own = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        capture_output=True,
        text=True,
        cwd=dest,
        timeout=300,
        check=False,
    )
    assert own.returncode == 0, own.stdout + own.stderr
    assert re.search(r"\d+ passed", own.stdout)

    # Served through the real handler. Getting an OAuth token is the OAuth tests' business, so an
    # OAuth template is served without auth here (tests/auth/test_permissions.py serves `notes` with
    # it): this checks that the rendered server loads and lists.
    assert_dev_server_lists_tools("--server", name, "--servers-dir", str(build_dir), "--auth", "none")


def test_dev_serves_a_servers_dir_outside_the_project(tmp_path: Path) -> None:
    render("minimal", "outside", tmp_path / "outside")
    assert_dev_server_lists_tools("--server", "outside", "--servers-dir", str(tmp_path))


def assert_dev_server_lists_tools(*args: str) -> None:
    """`mcpkit dev *args` starts, and the served server answers tools/list through the real handler."""
    server = start_dev_server(*args, timeout=60)
    try:
        listed = httpx.post(
            server.url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            headers={**HEADERS, "mcp-protocol-version": "2025-11-25"},
            timeout=30,
        )
    finally:
        stop_dev_server(server)
    assert listed.status_code == 200, listed.text
    assert listed.json()["result"]["tools"], listed.text
