"""What the kit documents and prints is true: section references resolve, commands run as printed
from the repository root, `make help` lists every target, and the docs' CDK example runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mcpkit.server_config import deployable, discover_servers
from tests.conftest import ROOT

DOCUMENTS = sorted(
    [
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "server_templates").glob("*/README.md"),
        *(ROOT / "server_templates").glob("*/mcpkit.toml"),
        *(ROOT / "servers").glob("*/README.md"),
        *(ROOT / "servers").glob("*/mcpkit.toml"),
        *(ROOT / "mcpkit").glob("*.py"),
    ]
)
# `README "X"`, `the kit's README, "X"`, `"X" in the README`, `see "X"` (within the README itself).
QUOTED = [
    re.compile(r'README(?:\.md)?[,\s]+(?:section\s+)?"(?P<title>[^"]+)"'),
    re.compile(r'"(?P<title>[^"]+)" (?:section )?in the README'),
]
LINK = re.compile(r"(?P<path>[\w./-]+\.md)#(?P<anchor>[\w-]+)")


def headings(markdown: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", markdown.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [m.group(1).strip() for m in re.finditer(r"^#{1,6}\s+(.+)$", text, flags=re.MULTILINE)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def references() -> list[tuple[Path, str, Path, str]]:
    """(file, what it says, target document, heading or anchor)."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for pattern in QUOTED:
            for match in pattern.finditer(text):
                # Prose wraps: a title may be split across lines.
                found.append((document, match.group(0), ROOT / "README.md", " ".join(match.group("title").split())))
        for match in LINK.finditer(text):
            target = (document.parent / match.group("path")).resolve()
            if not target.is_file():
                target = (ROOT / match.group("path")).resolve()
            found.append((document, match.group(0), target, "#" + match.group("anchor")))
    return found


def test_the_scan_finds_the_references_it_is_meant_to_check() -> None:
    said = {what for _, what, _, _ in references()}
    assert any("Users and permissions" in s for s in said), said
    assert any("infrastructure.md#mcpkittoml-reference" in s for s in said), said


@pytest.mark.parametrize(
    ("document", "what", "target", "heading"),
    references(),
    ids=lambda v: v.name if isinstance(v, Path) else str(v)[:40],
)
def test_every_section_reference_resolves(document: Path, what: str, target: Path, heading: str) -> None:
    assert target.is_file(), f"{document}: {what}: {target} does not exist"
    titles = headings(target)
    if heading.startswith("#"):
        assert heading[1:] in {slug(t) for t in titles}, f"{document}: {what}: no such anchor in {target.name}"
    else:
        assert heading in titles, f"{document}: {what}: {target.name} has no section {heading!r}"


def shell_lines(markdown: Path) -> list[str]:
    """Command lines of the document's bash blocks, without comments and continuation lines."""
    lines = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", markdown.read_text(encoding="utf-8"), flags=re.DOTALL):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


@pytest.mark.parametrize(
    "document",
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "server_templates").glob("*/README.md")],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_documented_commands_run_from_the_repository_root_without_an_activated_venv(document: Path) -> None:
    # Installed into .venv only: typed bare, they are `command not found` (or another install's).
    needs_venv = ("mcpkit", "pytest", "cdk", "ruff", "mypy")
    for line in shell_lines(document):
        first = line.split()[0]
        assert first not in needs_venv, f"{document.name}: `{line}` needs .venv/bin/{first} or a make target"


def test_mcpkit_new_prints_commands_that_run_from_the_root(tmp_path: Path) -> None:
    servers = ROOT / "servers"
    name = f"docs-probe-{os.getpid()}"
    result = subprocess.run(
        [sys.executable, "-m", "mcpkit", "new", name], capture_output=True, text=True, cwd=ROOT, check=False
    )
    try:
        assert result.returncode == 0, result.stderr
        lines = [line.strip() for line in result.stdout.splitlines()]
        assert lines[-3:] == [f".venv/bin/mcpkit dev {name}", f"make test SERVER={name}", f"make deploy SERVER={name}"]
        # `make test SERVER=…` tests that server alone (its own tests), not the kit's suite.
        dry = subprocess.run(
            ["make", "-n", "test", f"SERVER={name}"], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout
        assert f"pytest -q servers/{name}/tests" in dry
        assert "pytest -n 2" not in dry
        assert "mypy handlers" not in dry
        assert (
            "pytest -n 2"
            in subprocess.run(["make", "-n", "test"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
        )
    finally:
        import shutil

        shutil.rmtree(servers / name, ignore_errors=True)


def makefile_targets() -> list[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return sorted({m.group(1) for m in re.finditer(r"^([a-z][\w-]*):(?!=)", text, flags=re.MULTILINE)})


def test_make_help_lists_every_target() -> None:
    targets = makefile_targets()
    assert {"dev", "test", "synth", "help", "browser", "inspector"} <= set(targets)
    shown = subprocess.run(["make", "help"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    listed = set(re.findall(r"^make ([a-z][\w-]*)", shown, flags=re.MULTILINE))
    assert set(targets) - {"help"} <= listed, sorted(set(targets) - listed)


def test_mcpkit_version() -> None:
    from importlib.metadata import version

    result = subprocess.run(
        [sys.executable, "-m", "mcpkit", "--version"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"mcpkit {version('mcpkit')}"


def test_the_conformance_fixture_is_never_a_users_stack() -> None:
    every = discover_servers(ROOT / "servers")
    assert "conformance" in {s.name for s in every}
    assert "conformance" not in {s.name for s in deployable(every)}
    assert "deployable(discover_servers(" in (ROOT / "app.py").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_docs_cdk_example_runs_as_shown(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "infrastructure.md").read_text(encoding="utf-8")
    section = text[text.index("## Using `McpServer` in your own CDK app") :]
    example = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert example is not None
    script = tmp_path / "my_app.py"
    script.write_text(example.group(1) + "app.synth()\n", encoding="utf-8")
    path = f"{ROOT / '.venv' / 'bin'}:{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}"
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PATH": path, "CDK_OUTDIR": str(tmp_path / "out"), "PYTHONPATH": str(ROOT)},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "MyTools.template.json").is_file()
