"""The Lambda zip runs: unzipped, on an interpreter that has nothing but the zip and Lambda's boto3.

The package is built by the real bundler for x86_64 (this machine; the deployed arm64 wheels cannot
execute here, and both come from the same lock and the same pruning), extracted, and run in a fresh
`python -I -S` process whose `sys.path` is the extracted folder, the standard library and a folder
of links to the boto3 family the Lambda runtime provides. So a pruned module that is still needed,
a library that reads its own source, or a dependency missing from the lock fails here, not in AWS.
DynamoDB is the embedded moto server of the `aws` fixture.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from stacks.bundling import BundleSpec, build_bundle
from tests.conftest import EVENTS, LAMBDA_ENV
from tests.stacks.conftest import BUILD_DIR, ROOT

if TYPE_CHECKING:
    from mcpkit.local_aws import EmbeddedAws

pytestmark = pytest.mark.slow

# What the Lambda Python runtime puts on sys.path besides the code root (boto3 and its dependencies).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

# Run inside the bundle: only the extracted folder, the links and the standard library are importable.
BOOTSTRAP = """
import json, runpy, sys
task, runtime, script = sys.argv[1:4]
sys.path[:0] = [task, runtime]
sys.argv = [script, *sys.argv[4:]]
runpy.run_path(script, run_name="__main__")
"""

MCP_CHILD = """
import copy, json, sys

import handlers.lambda_handler as module

event_path, out_path = sys.argv[1:3]
with open(event_path) as f:
    base = json.load(f)


class Context:
    function_name = "mcpkit-smoke"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:mcpkit-smoke"
    aws_request_id = "smoke"

    def get_remaining_time_in_millis(self):
        return 20_000


def call(message, headers):
    event = copy.deepcopy(base)
    body = json.dumps(message)
    event["body"] = body
    event["headers"]["content-length"] = str(len(body.encode()))
    event["headers"].update(headers)
    return module.handler(event, Context())


init = call(
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "smoke", "version": "1"}}},
    {},
)
session = {"mcp-session-id": init["headers"]["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
add = call(
    {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 2, "b": 3}}},
    session,
)
meta = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "smoke", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
echo = call(
    {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
     "params": {"name": "echo", "arguments": {"text": "hi", "repeat": 2}, "_meta": meta}},
    {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "echo"},
)
anyio = sys.modules["anyio"]
report = {
    "responses": [init, add, echo],
    "modules": {name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())},
    "anyio_lazy": "__getattr__" in vars(anyio),
}
with open(out_path, "w") as f:
    json.dump(report, f)
"""  # fmt: skip

TOKEN_CHILD = """
import json, sys, time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from handlers.auth.tokens import InvalidTokenError, verify_access_token

issuer, audience = "https://mcp.example.com", "https://mcp.example.com/mcp"
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
now = int(time.time())
claims = {"iss": issuer, "aud": audience, "sub": "user-1", "exp": now + 300, "nbf": now, "iat": now,
          "client_id": "client-1", "scope": "mcp:tools", "jti": "jti-1"}
headers = {"kid": "key-1", "typ": "at+jwt"}
token = jwt.encode(claims, key, algorithm="RS256", headers=headers)
verified = verify_access_token(token, key.public_key(), "key-1", issuer=issuer, audience=audience)
forged = jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
                    headers=headers)
try:
    verify_access_token(forged, key.public_key(), "key-1", issuer=issuer, audience=audience)
    rejected = ""
except InvalidTokenError as exc:
    rejected = str(exc)
print(json.dumps({
    "subject": verified.subject, "scopes": list(verified.scopes), "rejected": rejected,
    "modules": {name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())},
}))
"""  # fmt: skip


def _unpack(server_dir: Path, destination: Path) -> Path:
    bundle = build_bundle(
        BundleSpec(root=ROOT, server_dir=server_dir, architecture="x86_64"), cache_dir=BUILD_DIR, report=False
    )
    with zipfile.ZipFile(bundle.path) as archive:
        archive.extractall(destination)
    return destination


@pytest.fixture(scope="module")
def runtime_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Links to this venv's boto3 family: what Lambda's runtime adds to the path, and nothing else."""
    folder = tmp_path_factory.mktemp("lambda-runtime")
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None, name
        assert spec.origin is not None, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (folder / source.name).symlink_to(source)
    return folder


@pytest.fixture(scope="module")
def example_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _unpack(ROOT / "servers" / "example", tmp_path_factory.mktemp("example-task"))


@pytest.fixture(scope="module")
def oauth_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _unpack(ROOT / "tests" / "auth" / "servers" / "whoami", tmp_path_factory.mktemp("oauth-task"))


def _run(task: Path, runtime: Path, child: str, *args: str, env: dict[str, str]) -> str:
    script = task.parent / f"{task.name}-child.py"
    script.write_text(child, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", BOOTSTRAP, str(task), str(runtime), str(script), *args],
        cwd=task,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def _outside(modules: dict[str, str | None], task: Path, runtime: Path) -> list[str]:
    """Modules loaded from anywhere but the bundle, the runtime's boto3 links or the standard library."""
    allowed = (str(task), str(runtime), sys.base_prefix)
    return sorted(name for name, file in modules.items() if file and not file.startswith(allowed))


def _body(response: dict[str, Any]) -> Any:
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


def test_example_bundle_answers_mcp_requests_of_both_transport_generations(
    aws: EmbeddedAws, example_task: Path, runtime_packages: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}  # the aws fixture's emulator endpoint
    env.update(LAMBDA_ENV)
    out = tmp_path / "report.json"
    _run(example_task, runtime_packages, MCP_CHILD, str(EVENTS / "http_api_post_mcp.json"), str(out), env=env)
    report = json.loads(out.read_text())
    init, add, echo = (_body(r) for r in report["responses"])
    assert init["result"]["protocolVersion"] == "2025-11-25"
    assert add["result"]["structuredContent"] == {"result": 5.0}
    assert echo["result"]["structuredContent"] == {"result": "hi hi"}
    assert echo["result"]["resultType"] == "complete"
    modules: dict[str, str | None] = report["modules"]
    assert _outside(modules, example_task, runtime_packages) == []
    # Libraries ran from bytecode alone; our code and the server's from their sources.
    assert str(modules["pydantic.main"]).endswith("pydantic/main.pyc")
    assert str(modules["handlers.app"]).endswith("handlers/app.py")
    # anyio found its own source to parse and kept its imports lazy (KEEP_SOURCE).
    assert report["anyio_lazy"]
    assert not [m for m in modules if m.split(".")[0] in {"uvicorn", "click", "cffi", "pycparser"}]


def test_oauth_bundle_verifies_an_rs256_access_token(oauth_task: Path, runtime_packages: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = json.loads(_run(oauth_task, runtime_packages, TOKEN_CHILD, env=env).strip().splitlines()[-1])
    assert result["subject"] == "user-1"
    assert result["scopes"] == ["mcp:tools"]
    assert result["rejected"] == "The access token is invalid."
    assert _outside(result["modules"], oauth_task, runtime_packages) == []
    assert str(result["modules"]["cryptography.hazmat.primitives.asymmetric.rsa"]).endswith(".pyc")


def _section_names(data: bytes) -> set[bytes]:
    """Section names of a 64-bit little-endian ELF file, read independently of stacks/elf.py."""
    shoff, shentsize, shnum, shstrndx = (
        int.from_bytes(data[40:48], "little"),
        int.from_bytes(data[58:60], "little"),
        int.from_bytes(data[60:62], "little"),
        int.from_bytes(data[62:64], "little"),
    )

    def field(index: int, at: int, size: int) -> int:
        start = shoff + index * shentsize + at
        return int.from_bytes(data[start : start + size], "little")

    names_at = field(shstrndx, 24, 8)
    return {data[names_at + field(i, 0, 4) : data.index(b"\0", names_at + field(i, 0, 4))] for i in range(1, shnum)}


def test_bundled_extensions_carry_no_static_symbols_and_still_load(example_task: Path) -> None:
    # The smoke tests above ran these very files (pydantic_core, cryptography's Rust binding, rpds
    # through jsonschema) from the same extracted package; here: the symbols really are gone.
    extensions = sorted(example_task.rglob("*.so"))
    rust = example_task / "cryptography" / "hazmat" / "bindings" / "_rust.abi3.so"
    assert rust in extensions
    for path in extensions:
        names = _section_names(path.read_bytes())
        assert b".symtab" not in names, path
        assert not [n for n in names if n.startswith(b".debug")], path
        assert {b".dynsym", b".dynstr", b".text"} <= names, path


def test_strip_symbols_leaves_what_it_cannot_safely_strip_alone() -> None:
    from stacks.elf import strip_symbols

    not_elf = b"#!/bin/sh\necho hi\n" * 10
    assert strip_symbols(not_elf) is not_elf
    elf32 = b"\x7fELF\x01\x01" + bytes(100)
    assert strip_symbols(elf32) is elf32
    truncated = b"\x7fELF\x02\x01" + bytes(20)
    assert strip_symbols(truncated) is truncated


def test_deployed_arm64_package_is_within_the_size_target() -> None:
    # Issue 7: zip_mb <= 10 (MB = 10^6 bytes) for the package the stack deploys (arm64).
    bundle = build_bundle(
        BundleSpec(root=ROOT, server_dir=ROOT / "servers" / "example"), cache_dir=BUILD_DIR, report=False
    )
    assert bundle.zipped_bytes <= 10e6, bundle.zipped_bytes / 1e6
    with zipfile.ZipFile(bundle.path) as archive:
        rust = archive.read("cryptography/hazmat/bindings/_rust.abi3.so")
    assert rust[18:20] == (183).to_bytes(2, "little")  # EM_AARCH64: the arm64 binary, stripped
    assert b".symtab" not in _section_names(rust)
