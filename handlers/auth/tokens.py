"""Access tokens: JWTs (RFC 9068 profile) signed by the KMS key, verified locally with its public key.

Signing costs one KMS `Sign` per token; verification costs nothing remote: the public key is
fetched once per instance (`GetPublicKey`) and kept. KMS's RSA_2048 key signs
RSASSA-PKCS1-v1_5 with SHA-256, which is JWS `RS256`; nothing else is accepted on verify, so
`alg: none` and HMAC confusion (`HS256` keyed with the public key) cannot get through.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from handlers.auth.config import CLOCK_LEEWAY_SECONDS
from handlers.store import aws_client, aws_dependency

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from mypy_boto3_kms import KMSClient

ALGORITHM = "RS256"
TOKEN_TYPE = "at+jwt"  # noqa: S105 - RFC 9068 media type, not a secret
KMS_SIGNING_ALGORITHM: Final = "RSASSA_PKCS1_V1_5_SHA_256"
# KMS signs a RAW message of at most 4096 bytes.
_KMS_RAW_LIMIT = 4096


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class InvalidTokenError(Exception):
    """The bearer token cannot be accepted; the message is safe to show the client."""


@dataclass(frozen=True)
class AccessClaims:
    subject: str
    email: str | None
    client_id: str
    scopes: tuple[str, ...]
    expires_at: int
    audience: str
    issuer: str
    jwt_id: str


class TokenSigner:
    """The instance's handle on the KMS key: signs access tokens, publishes and caches the public key."""

    def __init__(self, key_id: str) -> None:
        self._key_id = key_id
        self._client: KMSClient | None = None
        self._public: tuple[RSAPublicKey, str] | None = None
        self._lock = threading.Lock()

    @property
    def _kms(self) -> KMSClient:
        if self._client is None:
            from botocore.config import Config

            self._client = aws_client(
                "kms", Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5)
            )
        return self._client

    def reset(self) -> None:
        """SnapStart restore: a fresh KMS connection; the public key itself stays valid."""
        self._client = None

    def public_key(self) -> tuple[RSAPublicKey, str]:
        """The public key and its `kid` (RFC 7638 thumbprint), fetched from KMS once per instance."""
        if self._public is None:
            with self._lock:
                if self._public is None:
                    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
                    from cryptography.hazmat.primitives.serialization import load_der_public_key

                    with aws_dependency("KMS", "GetPublicKey"):
                        der = self._kms.get_public_key(KeyId=self._key_id)["PublicKey"]
                    key = load_der_public_key(der)
                    if not isinstance(key, RSAPublicKey):
                        raise RuntimeError("MCPKIT_KMS_KEY_ID must be an RSA SIGN_VERIFY key")
                    self._public = (key, _thumbprint(key))
        return self._public

    def jwks(self) -> dict[str, Any]:
        key, kid = self.public_key()
        numbers = key.public_numbers()
        jwk = {"kty": "RSA", "use": "sig", "alg": ALGORITHM, "kid": kid}
        return {"keys": [{**jwk, "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}]}

    def issue(
        self,
        *,
        issuer: str,
        audience: str,
        subject: str,
        email: str | None,
        client_id: str,
        scopes: tuple[str, ...],
        lifetime: int,
    ) -> str:
        _, kid = self.public_key()
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(16),
        }
        if email:
            claims["email"] = email
        header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": kid}
        signing_input = f"{b64url(_json(header))}.{b64url(_json(claims))}".encode("ascii")
        if len(signing_input) > _KMS_RAW_LIMIT:
            raise ValueError("access token claims exceed what KMS signs in one call")
        with aws_dependency("KMS", "Sign"):
            signature = self._kms.sign(
                KeyId=self._key_id, Message=signing_input, MessageType="RAW", SigningAlgorithm=KMS_SIGNING_ALGORITHM
            )["Signature"]
        return f"{signing_input.decode('ascii')}.{b64url(signature)}"


def verify_access_token(token: str, key: RSAPublicKey, kid: str, *, issuer: str, audience: str) -> AccessClaims:
    """Check signature (RS256 with our key only), `typ`, `iss`, `aud`, `exp`/`nbf` (with leeway); raise otherwise."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidTokenError("The access token is not a well-formed JWT.") from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidTokenError(f"The access token must be signed with {ALGORITHM}.")
    if header.get("kid") != kid:
        raise InvalidTokenError("The access token was not signed by this server's key.")
    if header.get("typ") != TOKEN_TYPE:
        raise InvalidTokenError("The token is not an access token.")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=CLOCK_LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "sub", "exp", "nbf", "iat", "client_id"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidTokenError("The access token has expired.") from exc
    except jwt.InvalidAudienceError as exc:
        raise InvalidTokenError(f"The access token was not issued for {audience}.") from exc
    except jwt.ImmatureSignatureError as exc:
        raise InvalidTokenError("The access token is not valid yet.") from exc
    except jwt.PyJWTError as exc:
        raise InvalidTokenError("The access token is invalid.") from exc
    scope = claims.get("scope", "")
    email = claims.get("email")
    return AccessClaims(
        subject=str(claims["sub"]),
        email=email if isinstance(email, str) else None,
        client_id=str(claims["client_id"]),
        scopes=tuple(scope.split()) if isinstance(scope, str) else (),
        expires_at=int(claims["exp"]),
        audience=audience,
        issuer=issuer,
        jwt_id=str(claims.get("jti", "")),
    )


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _thumbprint(key: RSAPublicKey) -> str:
    numbers = key.public_numbers()
    canonical = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    return b64url(hashlib.sha256(_json(canonical)).digest())


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def pkce_challenge(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())
