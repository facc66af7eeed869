"""The whole connector flow through `mcpkit dev --auth oauth`, driven by the official MCP Python client.

401 → PRM → AS metadata → DCR (client_secret_post, as Claude registers) → authorize → sign-in
form → redirect with code, state and iss → token → tools/call → refresh with rotation.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from tests.auth.harness import LOOPBACK_REDIRECT

if TYPE_CHECKING:
    from tests.auth.harness import Harness

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None
        self.token_history: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.token_history.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class FormSubmittingBrowser:
    """The redirect/callback handler pair: follows the authorization URL and submits the sign-in form."""

    def __init__(self, username: str, password: str) -> None:
        self._credentials = {"username": username, "password": password}
        self.redirected_to: str | None = None

    async def redirect(self, authorization_url: str) -> None:
        async with httpx.AsyncClient(follow_redirects=False, timeout=30) as browser:
            to_login = await browser.get(authorization_url)
            assert to_login.status_code == 302, to_login.text
            form = await browser.get(to_login.headers["location"])
            txn = re.search(r'name="txn" value="([^"]+)"', form.text)
            assert txn, form.text
            action = urlsplit(str(form.url))._replace(path="/oauth/dev-login", query="").geturl()
            done = await browser.post(action, data={"txn": txn.group(1), **self._credentials})
            assert done.status_code == 303, done.text
            location = done.headers["location"]
            if urlsplit(location).path == "/oauth/consent":
                page = await browser.get(location)
                request_id = re.search(r'name="request" value="([^"]+)"', page.text)
                assert request_id, page.text
                consent_url = urlsplit(location)._replace(query="").geturl()
                answered = await browser.post(consent_url, data={"request": request_id.group(1), "decision": "approve"})
                assert answered.status_code == 303, answered.text
                location = answered.headers["location"]
            self.redirected_to = location

    async def callback(self) -> AuthorizationCodeResult:
        assert self.redirected_to is not None
        query = parse_qs(urlsplit(self.redirected_to).query)
        return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query["iss"][0])


def connector(
    url: str, name: str, storage: MemoryStorage, browser: FormSubmittingBrowser, scope: str | None = None
) -> OAuthClientProvider:
    """The official client's OAuth, registering the way Claude does (confidential, client_secret_post)."""
    return OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name=name,
            redirect_uris=[LOOPBACK_REDIRECT],  # type: ignore[list-item]
            token_endpoint_auth_method="client_secret_post",
            grant_types=["authorization_code", "refresh_token"],
            scope=scope,
        ),
        storage=storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
    )


async def test_official_client_completes_the_connector_flow_and_refreshes(harness: Harness) -> None:
    storage = MemoryStorage()
    browser = FormSubmittingBrowser(harness.username, harness.password)
    provider = connector(harness.server.url, "Claude", storage, browser)
    seen: list[tuple[str, str, int]] = []

    async def record(response: httpx2.Response) -> None:
        seen.append((response.request.method, response.request.url.path, response.status_code))

    async with (
        httpx2.AsyncClient(auth=provider, timeout=30, event_hooks={"response": [record]}) as http,
        Client(streamable_http_client(harness.server.url, http_client=http), mode="legacy") as client,
    ):
        result = await client.call_tool("whoami", {})
        identity: dict[str, Any] = result.structured_content or {}
        assert identity["email"] == harness.username
        assert identity["scopes"] == ["mcp:tools"]
        assert identity["sub"]
        assert identity["sub"] != "anonymous"
        assert storage.client is not None
        assert identity["client_id"] == storage.client.client_id

        first = storage.tokens
        assert first is not None
        assert first.refresh_token
        # Let the access token look expired to the client: it must refresh (rotation) and go on.
        provider.context.token_expiry_time = time.time() - 1
        again = await client.call_tool("whoami", {})
        assert (again.structured_content or {})["sub"] == identity["sub"]

    steps = [(method, path) for method, path, _ in seen]
    assert ("POST", "/mcp", 401) in seen
    assert steps.index(("GET", "/.well-known/oauth-protected-resource/mcp")) < steps.index(
        ("GET", "/.well-known/oauth-authorization-server")
    )
    assert ("POST", "/oauth/register", 201) in seen
    assert [s for s in seen if s[1] == "/oauth/token"] == [("POST", "/oauth/token", 200)] * 2
    # The client registered the way Claude does and got a confidential client back.
    assert storage.client.token_endpoint_auth_method == "client_secret_post"
    assert storage.client.client_secret
    second = storage.tokens
    assert second is not None
    assert second.refresh_token
    assert second.refresh_token != first.refresh_token
    # The rotated-away refresh token is dead now, and presenting it again kills the family.
    client_info = {"client_id": storage.client.client_id, "client_secret": storage.client.client_secret}
    reused = harness.refresh(client_info, first.refresh_token)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert harness.refresh(client_info, second.refresh_token).json()["error"] == "invalid_grant"


async def test_tools_see_the_caller_on_the_2026_07_28_path_too(harness: Harness) -> None:
    client = harness.register()
    tokens = harness.tokens(client)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(harness.server.url, http_client=http)) as session,
    ):
        result = await session.call_tool("whoami", {})
        assert session.session.protocol_version == "2026-07-28"
    assert (result.structured_content or {})["email"] == harness.username


async def test_official_client_steps_up_when_a_tool_needs_a_scope_it_lacks(notes: Harness) -> None:
    """The person allowed only reading; calling a write tool makes the client ask for more, on the
    same registration, and the call then goes through (MCP 2025-11-25 step-up, SEP-2350 union)."""
    registered = notes.register(client_name="Stepping client")
    read_only = notes.tokens(registered, scope="notes:read")
    storage = MemoryStorage()
    storage.client = OAuthClientInformationFull.model_validate(registered)
    storage.tokens = OAuthToken.model_validate(read_only)
    browser = FormSubmittingBrowser(notes.username, notes.password)
    provider = connector(notes.server.url, "Stepping client", storage, browser, scope="notes:read")
    seen: list[tuple[str, str, int]] = []

    async def record(response: httpx2.Response) -> None:
        seen.append((response.request.method, response.request.url.path, response.status_code))

    async with (
        httpx2.AsyncClient(auth=provider, timeout=30, event_hooks={"response": [record]}) as http,
        Client(streamable_http_client(notes.server.url, http_client=http), mode="legacy") as client,
    ):
        listed = {tool.name for tool in (await client.list_tools()).tools}
        created = await client.call_tool("create_note", {"title": "written after step-up"})
        relisted = {tool.name for tool in (await client.list_tools()).tools}

    assert listed == {"list_notes", "get_note"}
    assert ("POST", "/mcp", 403) in seen
    assert not created.is_error, created
    assert (created.structured_content or {})["title"] == "written after step-up"
    assert relisted == listed | {"create_note", "update_note", "delete_note"}
    assert storage.tokens is not None
    assert set((storage.tokens.scope or "").split()) == {"notes:read", "notes:write"}
    assert ("POST", "/oauth/register", 201) not in seen
    assert storage.client.client_id == registered["client_id"]
