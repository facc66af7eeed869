"""The server through the official client, in-process: the same requests a connector sends."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from mcp import Client

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

pytestmark = pytest.mark.anyio


async def test_lists_one_tool_one_resource_one_prompt(server: MCPServer) -> None:
    async with Client(server) as client:
        tools = await client.list_tools()
        resources = await client.list_resources()
        prompts = await client.list_prompts()
    assert [t.name for t in tools.tools] == ["text_stats"]
    assert [str(r.uri) for r in resources.resources] == [f"{server.name}://about"]
    assert [p.name for p in prompts.prompts] == ["summarise"]


async def test_text_stats_counts(server: MCPServer) -> None:
    async with Client(server) as client:
        result = await client.call_tool("text_stats", {"text": "one two\nthree"})
    assert not result.is_error
    assert result.structured_content == {"words": 3, "characters": 13, "lines": 2}


async def test_text_stats_rejects_missing_argument(server: MCPServer) -> None:
    async with Client(server) as client:
        result = await client.call_tool("text_stats", {})
    assert result.is_error


async def test_about_resource_and_prompt(server: MCPServer) -> None:
    async with Client(server) as client:
        about = await client.read_resource(f"{server.name}://about")
        prompt = await client.get_prompt("summarise", {"text": "A long story.", "sentences": "2"})
    assert "text_stats" in about.contents[0].text  # type: ignore[union-attr]
    assert "at most 2 sentences" in prompt.messages[0].content.text  # type: ignore[union-attr]
