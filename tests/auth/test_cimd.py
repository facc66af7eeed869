"""Client ID metadata documents over real HTTP: a client whose client_id is the URL of its metadata.

Loopback http documents are accepted only because `mcpkit dev` runs in dev mode; deployed, a
client ID URL must be https to a public address (test_units.py checks that rule in-process).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.auth.harness import pkce

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.auth.harness import Harness

pytestmark = pytest.mark.slow


class _Documents(BaseHTTPRequestHandler):
    documents: ClassVar[dict[str, dict[str, Any]]] = {}
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        document = self.documents.get(self.path)
        body = json.dumps(document).encode() if document is not None else b"{}"
        self.send_response(200 if document is not None else 404)
        self.send_header("content-type", "application/json")
        self.send_header("cache-control", "max-age=600")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def documents() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Documents)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _publish(base: str, path: str, **overrides: Any) -> str:
    url = f"{base}{path}"
    # Shaped like Claude Code's document: loopback redirect URIs without a port.
    _Documents.documents[path] = {
        "client_id": url,
        "client_name": "CIMD test client",
        "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        **overrides,
    }
    return url


def test_metadata_document_client_connects_without_registering(harness: Harness, documents: str) -> None:
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
    assert _Documents.hits.count("/claude-code.json") == 1
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
    harness: Harness, documents: str, path: str, overrides: dict[str, Any], reason: str
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
