"""The API wrapper against a scripted fake upstream: success, retries, and each failure's message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from mcp import Client

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

pytestmark = pytest.mark.anyio
# The SDK's wording around a ToolError's message.
PREFIX = "Error executing tool get_item: "


async def _call(server: MCPServer, tool: str, args: dict[str, Any]) -> Any:
    async with Client(server) as client:
        return await client.call_tool(tool, args)


async def test_get_item_sends_the_key_from_secrets_manager(server: MCPServer, configured: Any) -> None:
    configured.respond("/items/42", 200, {"id": "42", "name": "bolt"})
    result = await _call(server, "get_item", {"item_id": "42"})
    assert not result.is_error, result.content
    assert result.structured_content == {"id": "42", "name": "bolt"}
    assert configured.requests[0][1]["authorization"] == "Bearer test-key-123"


async def test_key_from_ssm_parameter(server: MCPServer, configured: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("API_KEY_SECRET_NAME")
    monkeypatch.setenv("API_KEY_SSM_PARAMETER", "/test/api-key")
    configured.respond("/items?q=bolt&limit=2", 200, {"items": [{"id": "1"}, {"id": "2"}, {"id": "3"}]})
    result = await _call(server, "search_items", {"query": "bolt", "limit": 2})
    assert result.structured_content == {"result": [{"id": "1"}, {"id": "2"}]}
    assert configured.requests[0][1]["authorization"] == "Bearer test-key-123"


async def test_transient_errors_are_retried_then_succeed(server: MCPServer, configured: Any) -> None:
    configured.respond("/items/7", 503)
    configured.respond("/items/7", 429, headers={"retry-after": "0"})
    configured.respond("/items/7", 200, {"id": "7"})
    result = await _call(server, "get_item", {"item_id": "7"})
    assert result.structured_content == {"id": "7"}
    assert len(configured.requests) == 3


async def test_retries_are_bounded_and_the_error_says_so(server: MCPServer, configured: Any) -> None:
    configured.respond("/items/7", 503, {"message": "maintenance"})
    result = await _call(server, "get_item", {"item_id": "7"})
    assert result.is_error
    assert result.content[0].text == f"{PREFIX}The API is failing (HTTP 503 after 3 attempts): maintenance"
    assert len(configured.requests) == 3


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "The API refused the API key (HTTP 401): bad key. Check the configured secret."),
        (404, "Not found upstream: /items/9 (HTTP 404)."),
        (400, "The API rejected the request (HTTP 400): bad key"),
    ],
)
async def test_client_errors_are_not_retried_and_are_explained(
    server: MCPServer, configured: Any, status: int, message: str
) -> None:
    configured.respond("/items/9", status, {"message": "bad key"})
    result = await _call(server, "get_item", {"item_id": "9"})
    assert result.is_error
    assert result.content[0].text == f"{PREFIX}{message}"
    assert len(configured.requests) == 1


async def test_a_hanging_upstream_times_out_with_a_clear_error(
    server: MCPServer, configured: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_MAX_ATTEMPTS", "1")
    configured.respond("/items/slow", 200, {"id": "slow"}, hang=True)
    result = await _call(server, "get_item", {"item_id": "slow"})
    assert result.is_error
    assert result.content[0].text == f"{PREFIX}The API did not answer within 0.5 s (1 attempt)."


async def test_missing_key_configuration_is_explained(
    server: MCPServer, configured: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("API_KEY_SECRET_NAME")
    result = await _call(server, "get_item", {"item_id": "1"})
    assert result.is_error
    assert "add [secrets.API_KEY] to mcpkit.toml" in result.content[0].text
    assert configured.requests == []


async def test_invalid_arguments_never_reach_the_upstream(server: MCPServer, configured: Any) -> None:
    result = await _call(server, "get_item", {"item_id": "../admin"})
    assert result.is_error
    assert configured.requests == []
