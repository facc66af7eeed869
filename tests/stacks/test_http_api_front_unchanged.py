"""Without `stream_responses`, the stack is exactly what it was before the streaming front existed.

The snapshots in `tests/stacks/snapshots/` are the template files CDK wrote from the code before
issue 15 (commit 5fea092), for a default server, a default OAuth server with a custom domain and a
server with every option on, compared byte for byte. The Lambda code is inline here, so no zip
hash ties the snapshot to `handlers/`; what remains is everything the construct decides. A
deliberate change to the HTTP API front rewrites them with
`MCPKIT_WRITE_SNAPSHOTS=1 pytest tests/stacks/test_http_api_front_unchanged.py`, and the diff
shows in review.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest
from aws_cdk import App
from aws_cdk import aws_lambda as lambda_

from mcpkit.server_config import SERVER_FILE, load_server
from stacks.application import cdk_json_context
from stacks.server_stack import ServerStack
from tests.stacks.conftest import DEFAULT_OAUTH_TOML, FIXTURE_SERVER_PY, FULL_OAUTH_TOML, ROOT

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

SNAPSHOTS = ROOT / "tests" / "stacks" / "snapshots"
CONFIGS = {"plain": "", "oauth-domain": DEFAULT_OAUTH_TOML, "every-option": FULL_OAUTH_TOML}
INLINE_CODE = "def handler(event, context):\n    return {}\n"


def synthesize(root: Path, name: str, toml: str) -> str:
    folder = root / "servers" / name
    folder.mkdir(parents=True)
    (folder / SERVER_FILE).write_text(FIXTURE_SERVER_PY, encoding="utf-8")
    (folder / "mcpkit.toml").write_text(toml, encoding="utf-8")
    app = App(context=cdk_json_context(ROOT), outdir=str(root / "out"))
    stack = ServerStack(app, server=load_server(folder), root=root, code=lambda_.Code.from_inline(INLINE_CODE))
    app.synth()
    return (root / "out" / f"{stack.stack_name}.template.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_http_api_stack_is_unchanged(name: str, tmp_path: Path) -> None:
    template = synthesize(tmp_path, name, CONFIGS[name])
    snapshot = SNAPSHOTS / f"http-api-{name}.json"
    if os.environ.get("MCPKIT_WRITE_SNAPSHOTS") == "1":
        snapshot.write_text(template, encoding="utf-8")
    expected = snapshot.read_text(encoding="utf-8")
    # Parsed first, for a readable diff of what changed; then the bytes, order and formatting included.
    assert json.loads(template) == json.loads(expected), "the HTTP API stack changed (see the module docstring)"
    assert template == expected, "the HTTP API stack's template changed order or formatting"
