"""Server templates (`server_templates/<template>/`) and `mcpkit new`'s renderer.

A template folder is itself a valid server folder (server.py + mcpkit.toml), so the stack tests
and `mcpkit dev` can use it as it stands. Placeholders (`{{ name }}`, `{{ title }}`,
`{{ description }}`) appear only inside string literals and comments, which keeps the unrendered
files valid Python and TOML. Every text file is rendered with Jinja2 (file names too), with
`StrictUndefined` so a misspelt variable fails loudly instead of rendering as an empty string.
"""

from __future__ import annotations

import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcpkit.server_config import validate_server_name

TEMPLATES_DIR: Final = Path(__file__).resolve().parent.parent / "server_templates"
METADATA_FILE: Final = "template.toml"
# Never copied into a new server: caches of the template's own test runs and its metadata.
_SKIPPED: Final = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", METADATA_FILE})


class TemplateError(ValueError):
    """A template or a `new` request that cannot be used; the message says what to change."""


class TemplateInfo(BaseModel):
    """One template, as listed by `mcpkit templates`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = Field(min_length=1, description="One line shown by `mcpkit templates`.")
    path: Path


class _Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=120, pattern=r"^[^\n]+$")


def list_templates(templates_dir: Path = TEMPLATES_DIR) -> list[TemplateInfo]:
    """Every template folder (one with a `template.toml`), sorted by name."""
    if not templates_dir.is_dir():
        return []
    return [
        _info(folder)
        for folder in sorted(templates_dir.iterdir())
        if folder.is_dir() and (folder / METADATA_FILE).is_file()
    ]


def get_template(template: str, templates_dir: Path = TEMPLATES_DIR) -> TemplateInfo:
    for info in list_templates(templates_dir):
        if info.name == template:
            return info
    known = ", ".join(t.name for t in list_templates(templates_dir)) or "none"
    raise TemplateError(f"no template named {template!r}; available: {known}")


def _info(folder: Path) -> TemplateInfo:
    path = folder / METADATA_FILE
    try:
        meta = _Metadata.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise TemplateError(f"{path}: {exc}") from exc
    return TemplateInfo(name=folder.name, description=meta.description, path=folder)


def template_variables(name: str, description: str | None = None) -> dict[str, str]:
    """What templates may use: `name` (the folder/stack name), `title` and `description`."""
    title = " ".join(part.capitalize() for part in name.split("-"))
    return {"name": name, "title": title, "description": description or f"{title} MCP server"}


def render(
    template: str,
    name: str,
    dest: Path,
    *,
    description: str | None = None,
    templates_dir: Path = TEMPLATES_DIR,
) -> Path:
    """Render `template` into the new folder `dest` for a server called `name`; returns `dest`.

    Refuses to touch an existing `dest`. The files are rendered into a temporary sibling first and
    moved into place at the end, so a failed render never leaves a half-written server behind.
    """
    import jinja2

    validate_server_name(name)
    info = get_template(template, templates_dir)
    if dest.exists():
        raise TemplateError(f"{dest} already exists; choose another name or remove it first (nothing was written)")
    if description is not None and ("\n" in description or '"' in description or "\\" in description):
        raise TemplateError("the description must be one line without double quotes or backslashes")

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - renders Python, TOML and Markdown, never HTML
    )
    variables = template_variables(name, description)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest.parent))
    try:
        for source in sorted(info.path.rglob("*")):
            relative = source.relative_to(info.path)
            if _SKIPPED.intersection(relative.parts) or source.is_dir():
                continue
            target = staging / env.from_string(relative.as_posix()).render(variables)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                text = source.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                shutil.copyfile(source, target)
                continue
            try:
                target.write_text(env.from_string(text).render(variables), encoding="utf-8")
            except jinja2.TemplateError as exc:
                raise TemplateError(f"{source}: cannot render: {exc}") from exc
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


__all__ = [
    "TEMPLATES_DIR",
    "TemplateError",
    "TemplateInfo",
    "get_template",
    "list_templates",
    "render",
    "template_variables",
]
