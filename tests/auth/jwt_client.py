"""A `private_key_jwt` client as ChatGPT is one: its own key pair, a metadata document and a JWK Set on a
loopback web server (dev mode fetches from loopback), and a fresh signed assertion per token request."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.auth.harness import pkce

if TYPE_CHECKING:
    import httpx

    from tests.auth.harness import Harness
    from tests.hostile.documents import DocumentServer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# ChatGPT's redirect URI shape (../shared/notes/clients.md).
CHATGPT_REDIRECT = "https://chatgpt.com/connector/oauth/c-test"


@dataclass
class SigningKey:
    alg: str = "RS256"
    kid: str = field(default_factory=lambda: f"k-{secrets.token_hex(4)}")

    def __post_init__(self) -> None:
        self.private: Any = (
            ec.generate_private_key(ec.SECP256R1())
            if self.alg.startswith("ES")
            else rsa.generate_private_key(65537, 2048)
        )

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        public: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


@dataclass
class JwtClient:
    client_id: str
    token_endpoint: str
    key: SigningKey
    redirect_uri: str = CHATGPT_REDIRECT

    def assertion(
        self, claims: dict[str, Any] | None = None, header: dict[str, Any] | None = None, key: SigningKey | None = None
    ) -> str:
        key = key or self.key
        now = int(time.time())
        body = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_endpoint,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
            **(claims or {}),
        }
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key.private, algorithm=key.alg, headers={"kid": key.kid, **(header or {})})

    def auth(self, assertion: str | None = None) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or self.assertion(),
        }


def publish(
    documents: DocumentServer, harness: Harness, name: str, key: SigningKey | None = None, **overrides: Any
) -> JwtClient:
    """A metadata document with `private_key_jwt` and a `jwks_uri` beside it, shaped like ChatGPT's."""
    key = key or SigningKey()
    jwks_path = f"/{name}/jwks.json"
    documents.documents[jwks_path] = {"keys": [key.jwk()]}
    fields: dict[str, Any] = {
        "client_name": "ChatGPT (test double)",
        "redirect_uris": [CHATGPT_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": f"{documents.base}{jwks_path}",
        **overrides,
    }
    client_id = documents.publish(f"/{name}/client.json", **fields)
    return JwtClient(client_id, f"{harness.base}/oauth/token", key)


def code_for(harness: Harness, client: JwtClient) -> tuple[str, str]:
    """(code, verifier) after authorize, sign-in and consent in the person's browser."""
    verifier, challenge = pkce()
    location = harness.sign_in(harness.authorize(client.client_id, challenge, redirect_uri=client.redirect_uri))
    assert location.startswith(client.redirect_uri), location
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(location).query)["code"][0], verifier


def exchange(harness: Harness, client: JwtClient, code: str, verifier: str, **auth: str) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": client.redirect_uri,
        "resource": harness.resource,
        **(auth or client.auth()),
    }
    return harness.token({k: v for k, v in data.items() if v})
