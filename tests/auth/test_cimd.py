"""Client ID metadata documents over real HTTP: a client whose client_id is the URL of its metadata.

Loopback http documents are accepted only because `mcpkit dev` runs in dev mode; deployed, a
client ID URL must be https to a public address (test_units.py checks that rule in-process).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.auth.harness import pkce

if TYPE_CHECKING:
    from tests.auth.harness import Harness
    from tests.hostile.documents import DocumentServer

pytestmark = pytest.mark.slow


def _publish(documents: DocumentServer, path: str, **overrides: Any) -> str:
    # Shaped like Claude Code's document: loopback redirect URIs without a port.
    claude_code = {
        "client_name": "CIMD test client",
        "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
    }
    return documents.publish(path, **(claude_code | overrides))


def test_metadata_document_client_connects_without_registering(harness: Harness, documents: DocumentServer) -> None:
    client_id = _publish(documents, "/claude-code.json")
    redirect_uri = "http://localhost:49152/callback"
    verifier, challenge = pkce()
    consent_at = harness.sign_in(harness.authorize(client_id, challenge, redirect_uri=redirect_uri), decision=None)
    page = harness.http.get(consent_at).text
    # The name is the document's claim; where the document came from is what can be relied on.
    assert "Its details come from <strong>127.0.0.1</strong>" in page
    assert "CIMD test client" in page
    location = harness.answer_consent(consent_at, "approve")
    assert location.startswith(redirect_uri)
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = harness.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "resource": harness.resource,
        }
    )
    assert token.status_code == 200, token.text
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    response = harness.mcp(call, token.json()["access_token"], **{"mcp-protocol-version": "2025-11-25"})
    assert response.json()["result"]["structuredContent"]["client_id"] == client_id
    # Fetched once, then served from the table for the document's max-age.
    assert documents.count("/claude-code.json") == 1
    refreshed = harness.refresh({"client_id": client_id}, token.json()["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text


@pytest.mark.parametrize(
    ("path", "overrides", "reason"),
    [
        ("/mismatch.json", {"client_id": "https://elsewhere.example/client.json"}, "client_id is not the URL"),
        ("/bad-redirect.json", {"redirect_uris": ["http://evil.example/cb"]}, "redirect_uris are not usable"),
        ("/secret-auth.json", {"token_endpoint_auth_method": "client_secret_basic"}, "not supported"),
        ("/jwt-no-keys.json", {"token_endpoint_auth_method": "private_key_jwt"}, "needs the client&#x27;s public keys"),
        (
            "/jwt-bad-keys.json",
            {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://evil.example/jwks.json"},
            "a jwks_uri must use https",
        ),
    ],
)
def test_unusable_documents_are_refused_on_an_error_page(
    harness: Harness, documents: DocumentServer, path: str, overrides: dict[str, Any], reason: str
) -> None:
    client_id = _publish(documents, path, **overrides)
    _, challenge = pkce()
    response = harness.authorize(client_id, challenge, redirect_uri="http://localhost:1234/callback")
    assert response.status_code == 400
    assert reason in response.text


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/client.json",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/client.json",
        "http://example.com/client.json",
    ],
)
def test_document_urls_to_internal_addresses_are_never_fetched(harness: Harness, url: str) -> None:
    _, challenge = pkce()
    response = harness.authorize(url, challenge, redirect_uri="http://localhost:1234/callback")
    assert response.status_code == 400
    assert "location" not in response.headers
