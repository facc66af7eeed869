"""Fixtures: the server loaded by file path and a bucket of documents in an embedded moto server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from handlers.server_loader import load_server
from mcpkit.local_aws import EmbeddedAws, endpoint_environment

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mcp.server.mcpserver import MCPServer

SERVER_DIR = Path(__file__).resolve().parent.parent
BUCKET = "docs-test"
DOCUMENTS: dict[str, str | bytes] = {
    "docs/guide/install.md": "# Install\n\nRun make dev to install the kit and start the server locally.",
    "docs/guide/deploy.md": "# Deploy\n\nRun cdk deploy to install the stack in your AWS account.",
    "docs/faq.txt": "Why Lambda? Because idle servers cost nothing.",
    "docs/logo.png": b"\x89PNG\r\n\x1a\n\x00\xff",
    "private/salaries.txt": "not for the model: install deploy",
}


@pytest.fixture(scope="session")
def bucket() -> Iterator[str]:
    import boto3

    with EmbeddedAws() as aws:
        saved = dict(os.environ)
        os.environ.update({**endpoint_environment(aws.endpoint), "DOCS_BUCKET": BUCKET, "DOCS_PREFIX": "docs/"})
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for key, body in DOCUMENTS.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)
        yield BUCKET
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def server(bucket: str) -> MCPServer:
    return load_server(f"{SERVER_DIR / 'server.py'}:mcp")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
