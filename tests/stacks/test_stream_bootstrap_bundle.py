"""The Lambda zip carries what `stream_responses = true` runs: the exec wrapper, executable, and a runtime that streams.

Lambda runs `AWS_LAMBDA_EXEC_WRAPPER=/var/task/handlers/stream_bootstrap` directly, so the file must
keep its exec bit in the zip; and the streaming runtime must find everything it imports in the
zip (plus what Lambda's Python runtime adds), as the buffered handler does (test_bundle_smoke.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import zipfile
from typing import TYPE_CHECKING

import pytest

from mcpkit.messages import MODERN, modern_meta, rpc
from mcpkit.runtime_api import Chunk, End, Prelude, RuntimeApi
from stacks.bundling import BundleSpec, build_bundle
from tests.conftest import LAMBDA_ENV, load_event
from tests.stacks.conftest import BUILD_DIR, ROOT
from tests.stacks.test_bundle_smoke import BOOTSTRAP, example_task, runtime_packages

if TYPE_CHECKING:
    from pathlib import Path

    from mcpkit.runtime_api import Part

pytestmark = pytest.mark.slow
__all__ = ["example_task", "runtime_packages"]  # fixtures, shared with the buffered bundle's smoke test

RUN_STREAMING_RUNTIME = (
    'import runpy\nrunpy.run_module("handlers.stream_runtime", run_name="__main__", alter_sys=True)\n'
)


def test_the_zip_carries_the_exec_wrapper_with_its_exec_bit() -> None:
    bundle = build_bundle(
        BundleSpec(root=ROOT, server_dir=ROOT / "servers" / "example", architecture="x86_64"),
        cache_dir=BUILD_DIR,
        report=False,
    )
    with zipfile.ZipFile(bundle.path) as archive:
        info = archive.getinfo("handlers/stream_bootstrap")
    assert info.external_attr >> 16 == 0o100755


def test_the_zipped_streaming_runtime_streams_an_mcp_answer(example_task: Path, runtime_packages: Path) -> None:
    # GIVEN the unzipped package, run as Lambda runs it: only the code root, the runtime's boto3 and the stdlib
    api = RuntimeApi()
    script = example_task.parent / "run-streaming-runtime.py"
    script.write_text(RUN_STREAMING_RUNTIME, encoding="utf-8")
    env = {**LAMBDA_ENV, "MCPKIT_STREAM_RESPONSES": "true", "AWS_LAMBDA_RUNTIME_API": api.address}
    env["PATH"] = os.environ.get("PATH", "")
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", BOOTSTRAP, str(example_task), str(runtime_packages), str(script)],
        cwd=example_task,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        parts = asyncio.run(_answer(api))
    finally:
        process.kill()
        output = process.communicate(timeout=10)[0].decode()
        api.close()

    # THEN its answer streams: the prelude, then the JSON-RPC result
    assert isinstance(parts[0], Prelude), output
    assert parts[0].status == 200, output
    body = b"".join(p.data for p in parts if isinstance(p, Chunk))
    assert json.loads(body)["result"]["structuredContent"] == {"result": 42}
    assert parts[-1] == End(None)


async def _answer(api: RuntimeApi) -> list[Part]:
    event = load_event("http_api_post_mcp")
    event["body"] = json.dumps(
        rpc("tools/call", {"name": "add", "arguments": {"a": 2, "b": 40}, "_meta": modern_meta("bundle")})
    )
    event["headers"].update({"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "add"})
    event["headers"]["host"] = event["requestContext"]["domainName"] = "mcp.example.com"
    invocation = api.invoke(json.dumps(event).encode(), int((time.time() + 30) * 1000), asyncio.get_running_loop())
    parts: list[Part] = []
    while not parts or not isinstance(parts[-1], End):
        parts.append(await asyncio.wait_for(invocation.parts.get(), 120))
    return parts
