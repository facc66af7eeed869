"""{{ title }}: documents in an S3 bucket, readable by a model.

Each object under `DOCS_BUCKET`/`DOCS_PREFIX` is a resource `docs://<key relative to the
prefix>` (one resource template), `list_documents` lists them and `search_documents` finds the
ones that mention every word of a query. The function's role may only list the bucket and read
objects under the prefix (`iam_statements` in mcpkit.toml).
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3.client import S3Client

mcp = MCPServer(
    Path(__file__).resolve().parent.name,
    version="0.1.0",
    instructions="Documents from an S3 bucket: list them, search them, read them as docs://<path> resources.",
)

# Search reads documents one by one; these bounds keep a call well inside API Gateway's 29 s.
MAX_SCANNED = 200
MAX_DOCUMENT_BYTES = 1024 * 1024
SNIPPET_CHARS = 160
TEXT_SUFFIXES = (".md", ".txt", ".rst", ".html", ".htm", ".json", ".csv", ".yaml", ".yml", ".xml")


class Document(BaseModel):
    uri: str
    key: str = Field(description="Path relative to the documents folder.")
    size: int
    last_modified: str


class Match(BaseModel):
    uri: str
    key: str
    hits: int = Field(description="How often the query words occur.")
    snippet: str


@cache
def _s3() -> S3Client:
    import boto3  # the Lambda runtime ships boto3; keep it off the import path of the module

    return boto3.client("s3")


def _location() -> tuple[str, str]:
    bucket = os.environ.get("DOCS_BUCKET", "")
    if not bucket:
        raise ToolError("DOCS_BUCKET is not set: name the bucket in mcpkit.toml [environment].")
    return bucket, os.environ.get("DOCS_PREFIX", "")


def _object_key(key: str) -> str:
    # S3 does not resolve '..', but a key that looks like a path escape is never a document name.
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise ResourceError(f"{key!r} is not a document path")
    return _location()[1] + key


def _list(limit: int) -> list[Document]:
    bucket, prefix = _location()
    pages = (
        _s3()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"MaxItems": limit})
    )
    return [
        Document(
            uri=f"docs://{obj['Key'].removeprefix(prefix)}",
            key=obj["Key"].removeprefix(prefix),
            size=obj["Size"],
            last_modified=obj["LastModified"].isoformat(),
        )
        for page in pages
        for obj in page.get("Contents", [])
        if not obj["Key"].endswith("/")
    ]


def _read_text(key: str) -> str | None:
    """The object's text, or None when it is not text a model can read."""
    from botocore.exceptions import ClientError

    bucket, _ = _location()
    try:
        obj = _s3().get_object(Bucket=bucket, Key=_object_key(key))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise ResourceError(f"No document docs://{key}; list_documents shows what exists.") from exc
        raise ResourceError(f"Cannot read docs://{key}: {exc.response.get('Error', {}).get('Message', exc)}") from exc
    if obj["ContentLength"] > MAX_DOCUMENT_BYTES:
        raise ResourceError(f"docs://{key} is larger than {MAX_DOCUMENT_BYTES // 1024} KiB; split it")
    data = obj["Body"].read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _as_tool_errors[T](call: Callable[[], T]) -> T:
    """Run `call`; S3 failures become tool errors that say what S3 answered."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ResourceError as exc:
        raise ToolError(str(exc)) from exc
    except ClientError as exc:
        detail = exc.response.get("Error", {})
        raise ToolError(f"S3 refused the request ({detail.get('Code')}): {detail.get('Message')}") from exc
    except BotoCoreError as exc:
        raise ToolError(f"Cannot reach S3: {exc}") from exc


@mcp.tool()
def list_documents(limit: Annotated[int, Field(ge=1, le=1000)] = 100) -> list[Document]:
    """List the documents (at most `limit`), with their docs:// URIs."""
    return _as_tool_errors(lambda: _list(limit))


@mcp.tool()
def search_documents(
    query: Annotated[str, Field(min_length=1, max_length=200)],
    limit: Annotated[int, Field(ge=1, le=50)] = 10,
) -> list[Match]:
    """Find text documents that contain every word of `query` (case-insensitive), best first."""
    words = [w for w in re.findall(r"\w+", query.lower()) if w]
    if not words:
        raise ToolError("The query has no words to search for.")
    candidates = [d for d in _as_tool_errors(lambda: _list(MAX_SCANNED)) if d.key.lower().endswith(TEXT_SUFFIXES)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        texts = _as_tool_errors(lambda: list(pool.map(lambda d: _read_text(d.key), candidates)))
    matches: list[Match] = []
    for doc, text in zip(candidates, texts, strict=True):
        lowered = (text or "").lower()
        if not text or not all(w in lowered for w in words):
            continue
        first = lowered.find(words[0])
        start = max(0, first - SNIPPET_CHARS // 2)
        snippet = " ".join(text[start : start + SNIPPET_CHARS].split())
        matches.append(Match(uri=doc.uri, key=doc.key, hits=sum(lowered.count(w) for w in words), snippet=snippet))
    return sorted(matches, key=lambda m: (-m.hits, m.key))[:limit]


@mcp.resource("docs://{+key}", mime_type="text/plain")
def document(key: str) -> str | bytes:
    """A document from the bucket, by its path relative to the documents folder."""
    text = _read_text(key)
    if text is not None:
        return text
    bucket, _ = _location()
    return _s3().get_object(Bucket=bucket, Key=_object_key(key))["Body"].read()
