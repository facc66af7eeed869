"""ChatGPT's way in: a metadata-document client that authenticates with `private_key_jwt`, end to end
against `mcpkit dev --auth oauth` (a loopback test double serves the document and the JWK Set).

The refusals are in tests/hostile/test_oauth_jwt.py.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from mcp.client.auth.extensions.client_credentials import SignedJWTParameters

from tests.auth.jwt_client import JwtClient, SigningKey, code_for, exchange, publish

if TYPE_CHECKING:
    from tests.auth.harness import Harness
    from tests.hostile.documents import DocumentServer

pytestmark = pytest.mark.slow
WHOAMI = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}


def test_the_server_advertises_private_key_jwt_and_keeps_none(harness: Harness) -> None:
    metadata = harness.http.get(f"{harness.base}/.well-known/oauth-authorization-server").json()
    methods = metadata["token_endpoint_auth_methods_supported"]
    # ChatGPT needs private_key_jwt; Claude uses metadata documents only while "none" is listed.
    assert "private_key_jwt" in methods
    assert "none" in methods
    algs = metadata["token_endpoint_auth_signing_alg_values_supported"]
    assert {"RS256", "ES256"} <= set(algs)
    assert not {"none", "HS256", "HS384", "HS512"} & set(algs)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_chatgpt_like_client_connects_refreshes_and_calls_a_tool(
    harness: Harness, documents: DocumentServer, alg: str
) -> None:
    client = publish(documents, harness, f"chatgpt-{alg.lower()}", SigningKey(alg))
    code, verifier = code_for(harness, client)
    token = exchange(harness, client, code, verifier)
    assert token.status_code == 200, token.text
    response = harness.mcp(WHOAMI, token.json()["access_token"], **{"mcp-protocol-version": "2025-11-25"})
    assert response.json()["result"]["structuredContent"]["client_id"] == client.client_id
    # A refresh is authenticated with a fresh assertion, too.
    refreshed = harness.token(
        {"grant_type": "refresh_token", "refresh_token": token.json()["refresh_token"], **client.auth()}
    )
    assert refreshed.status_code == 200, refreshed.text
    again = harness.mcp(WHOAMI, refreshed.json()["access_token"], **{"mcp-protocol-version": "2025-11-25"})
    assert again.json()["result"]["structuredContent"]["client_id"] == client.client_id
    # The key set is fetched once and then served from the table.
    assert documents.count(f"/chatgpt-{alg.lower()}/jwks.json") == 1


def test_an_assertion_may_name_the_client_without_a_client_id_parameter(
    harness: Harness, documents: DocumentServer
) -> None:
    client = publish(documents, harness, "no-client-id")
    code, verifier = code_for(harness, client)
    token = exchange(
        harness,
        client,
        code,
        verifier,
        client_assertion_type=client.auth()["client_assertion_type"],
        client_assertion=client.assertion(),
    )
    assert token.status_code == 200, token.text


def test_assertions_signed_by_the_official_python_sdk_are_accepted(harness: Harness, documents: DocumentServer) -> None:
    # The SDK's signer sets no kid and uses the issuer as the audience.
    key = SigningKey("RS256")
    client = publish(documents, harness, "sdk-signer", key)
    pem = key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signer = SignedJWTParameters(issuer=client.client_id, subject=client.client_id, signing_key=pem)
    provide = signer.create_assertion_provider()
    issuer = harness.http.get(f"{harness.base}/.well-known/oauth-authorization-server").json()["issuer"]
    code, verifier = code_for(harness, client)

    async def sign() -> str:
        return await provide(issuer)

    assertion = asyncio.run(sign())
    token = exchange(harness, client, code, verifier, **client.auth(assertion))
    assert token.status_code == 200, token.text


@pytest.mark.parametrize("keys", ["jwks_uri", "jwks"])
def test_a_registered_client_with_its_own_keys_connects(harness: Harness, documents: DocumentServer, keys: str) -> None:
    key = SigningKey("ES256")
    path = f"/dcr-{secrets.token_hex(4)}/jwks.json"
    documents.documents[path] = {"keys": [key.jwk()]}
    where = {"jwks_uri": f"{documents.base}{path}"} if keys == "jwks_uri" else {"jwks": {"keys": [key.jwk()]}}
    registered = harness.http.post(
        f"{harness.base}/oauth/register",
        json={
            "redirect_uris": ["https://chatgpt.com/connector_platform_oauth_redirect"],
            "token_endpoint_auth_method": "private_key_jwt",
            **where,
        },
    )
    assert registered.status_code == 201, registered.text
    assert "client_secret" not in registered.json()
    client = JwtClient(
        registered.json()["client_id"],
        f"{harness.base}/oauth/token",
        key,
        redirect_uri="https://chatgpt.com/connector_platform_oauth_redirect",
    )
    code, verifier = code_for(harness, client)
    token = exchange(harness, client, code, verifier)
    assert token.status_code == 200, token.text
    # Without an assertion, a client registered for private_key_jwt is not authenticated at all.
    bare = harness.token(
        {"grant_type": "refresh_token", "refresh_token": token.json()["refresh_token"], "client_id": client.client_id}
    )
    assert bare.status_code == 401
    assert "private_key_jwt" in bare.json()["error_description"]


def test_registration_for_private_key_jwt_needs_keys(harness: Harness) -> None:
    response = harness.http.post(
        f"{harness.base}/oauth/register",
        json={
            "redirect_uris": ["https://chatgpt.com/connector/oauth/x"],
            "token_endpoint_auth_method": "private_key_jwt",
        },
    )
    assert response.status_code == 400
    assert "jwks_uri" in response.json()["error_description"]
    # A private key published by mistake is refused, not stored.
    leaked = {**SigningKey("ES256").jwk(), "d": "AAAA"}
    response = harness.http.post(
        f"{harness.base}/oauth/register",
        json={
            "redirect_uris": ["https://chatgpt.com/connector/oauth/x"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [leaked]},
        },
    )
    assert response.status_code == 400
    assert "public keys only" in response.json()["error_description"]
