"""Documents from a moto S3 bucket through the official client, in-process."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

pytestmark = pytest.mark.anyio


async def test_documents_under_the_prefix_are_listed(server: MCPServer) -> None:
    async with Client(server) as client:
        result = await client.call_tool("list_documents", {})
        templates = await client.list_resource_templates()
    keys = sorted(d["key"] for d in result.structured_content["result"])
    assert keys == ["faq.txt", "guide/deploy.md", "guide/install.md", "logo.png"]
    assert [t.uri_template for t in templates.resource_templates] == ["docs://{+key}"]


async def test_a_document_is_a_resource(server: MCPServer) -> None:
    async with Client(server) as client:
        text = await client.read_resource("docs://guide/install.md")
        image = await client.read_resource("docs://logo.png")
    assert text.contents[0].text.startswith("# Install")  # type: ignore[union-attr]
    assert image.contents[0].blob  # type: ignore[union-attr]


async def test_search_finds_documents_with_every_word_best_first(server: MCPServer) -> None:
    async with Client(server) as client:
        both = await client.call_tool("search_documents", {"query": "install"})
        narrow = await client.call_tool("search_documents", {"query": "cdk INSTALL"})
        none = await client.call_tool("search_documents", {"query": "kubernetes"})
    assert [m["key"] for m in both.structured_content["result"]] == ["guide/install.md", "guide/deploy.md"]
    assert [m["uri"] for m in narrow.structured_content["result"]] == ["docs://guide/deploy.md"]
    assert "cdk deploy" in narrow.structured_content["result"][0]["snippet"]
    assert none.structured_content["result"] == []


async def test_objects_outside_the_prefix_are_unreachable(server: MCPServer) -> None:
    async with Client(server) as client:
        search = await client.call_tool("search_documents", {"query": "salaries model"})
        with pytest.raises(MCPError):
            await client.read_resource("docs://../private/salaries.txt")
    assert search.structured_content["result"] == []


async def test_missing_document_is_a_clear_error(server: MCPServer) -> None:
    async with Client(server) as client:
        with pytest.raises(MCPError, match=r"No document docs://nope\.md"):
            await client.read_resource("docs://nope.md")
