"""Token-endpoint client authentication with `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9).

The client signs a short JWT (`iss` = `sub` = its client_id, `aud` our token endpoint or issuer,
`exp`, a fresh `jti`) with a key whose public half is in its JWK Set: inline (`jwks`) or at a
`jwks_uri`, which is fetched exactly like a metadata document (SSRF rules, budget, rate limits)
and cached in the table. An unknown `kid` refetches the set once (key rotation), at most once a
minute per client. Every refusal is `invalid_client` with what to change.

PyJWT and cryptography are imported only here, on the first assertion: off the cold path.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from handlers.auth import clients
from handlers.auth.errors import OAuthError, invalid_client

if TYPE_CHECKING:
    from handlers.auth.clients import Client
    from handlers.auth.state import OAuthState
    from handlers.rate_limit import RateLimiter

logger = logging.getLogger("handlers.auth")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Asymmetric only: with HMAC, a public key could be (mis)used as the shared secret.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
MAX_LIFETIME_SECONDS = 300
LEEWAY_SECONDS = 30
REFETCH_SECONDS = 60
MAX_ASSERTION_BYTES = 8 * 1024
KEYS_NOT_FETCHED = "the client's jwks_uri could not be fetched"


def claimed_client_id(assertion: str) -> str | None:
    """The assertion's `sub` (else `iss`), unverified: only to find the client whose keys verify it."""
    import jwt

    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    found = claims.get("sub", claims.get("iss"))
    return found if isinstance(found, str) else None


class AssertionVerifier:
    def __init__(self, state: OAuthState, limits: RateLimiter | None, *, allow_loopback: bool) -> None:
        self._state = state
        self._limits = limits
        self._allow_loopback = allow_loopback

    async def verify(self, client: Client, assertion: str, audiences: list[str], source_ip: str) -> None:
        """Return if `assertion` authenticates `client`, else raise invalid_client saying why."""
        import jwt

        if len(assertion) > MAX_ASSERTION_BYTES:
            raise invalid_client(f"client_assertion is longer than {MAX_ASSERTION_BYTES} bytes.")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise invalid_client("client_assertion is not a signed JWT (compact JWS).") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise invalid_client(
                f"client_assertion alg {alg!r} is not accepted; sign with one of {', '.join(ALGORITHMS)}."
            )
        if kid is not None and not isinstance(kid, str):
            raise invalid_client("client_assertion kid must be a string.")
        # Checked again after the signature; first, so an assertion for another client costs no key fetch.
        named = claimed_client_id(assertion)
        if named is not None and named != client.client_id:
            raise invalid_client(
                f"client_assertion iss and sub must be the client_id {client.client_id}; this one is for {named}."
            )
        keys = self._candidates(await self._keys(client, source_ip, kid), alg, kid)
        if not keys:
            where = client.jwks_uri or "the client's jwks"
            with_kid = f"with kid {kid!r} " if kid is not None else ""
            raise invalid_client(f"No {alg} key {with_kid}in {where}; publish the signing key there.")
        claims = self._decode(assertion, client, keys, alg, audiences)
        if claims.get("sub") != client.client_id:
            raise invalid_client(f"client_assertion sub must be the client_id {client.client_id}.")
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp - time.time() > MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
            raise invalid_client(f"client_assertion exp must be at most {MAX_LIFETIME_SECONDS} seconds ahead.")
        jti = claims["jti"]
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            raise invalid_client("client_assertion jti must be a string of 1 to 256 characters.")
        if not self._state.use_assertion_id(client.client_id, jti, int(exp) + LEEWAY_SECONDS):
            raise invalid_client("This client_assertion (its jti) was already used; sign a new one for every request.")

    @staticmethod
    def _candidates(keys: list[dict[str, Any]], alg: str, kid: str | None) -> list[dict[str, Any]]:
        return [
            k
            for k in keys
            if (kid is None or k.get("kid") == kid)
            and k.get("kty") == _KEY_TYPES[alg[:2]]
            and k.get("use", "sig") == "sig"
            and k.get("alg", alg) == alg
        ]

    @staticmethod
    def _decode(
        assertion: str, client: Client, keys: list[dict[str, Any]], alg: str, audiences: list[str]
    ) -> dict[str, Any]:
        import jwt

        failure: jwt.PyJWTError | None = None
        for jwk in keys:
            try:
                key = jwt.PyJWK(jwk, algorithm=alg)
            except jwt.PyJWTError as exc:
                failure = exc
                continue
            try:
                claims: dict[str, Any] = jwt.decode(
                    assertion,
                    key=key,
                    algorithms=[alg],
                    audience=audiences,
                    issuer=client.client_id,
                    leeway=LEEWAY_SECONDS,
                    options={"require": ["iss", "sub", "aud", "exp", "jti"], "strict_aud": False},
                )
            except jwt.InvalidSignatureError as exc:
                failure = exc
                continue
            except jwt.ExpiredSignatureError as exc:
                raise invalid_client("client_assertion has expired; sign a new one for every request.") from exc
            except jwt.InvalidAudienceError as exc:
                raise invalid_client(
                    f"client_assertion aud must be the token endpoint {audiences[0]} or the issuer {audiences[1]}."
                ) from exc
            except jwt.InvalidIssuerError as exc:
                raise invalid_client(f"client_assertion iss must be the client_id {client.client_id}.") from exc
            except jwt.MissingRequiredClaimError as exc:
                raise invalid_client(f"client_assertion lacks the {exc.claim} claim.") from exc
            except jwt.ImmatureSignatureError as exc:
                raise invalid_client("client_assertion is not valid yet (nbf or iat in the future).") from exc
            except jwt.PyJWTError as exc:
                raise invalid_client(f"client_assertion is invalid: {exc}.") from exc
            return claims
        logger.info("client assertion for %s not verified: %s", client.client_id, failure)
        raise invalid_client("client_assertion signature does not verify with the client's keys.")

    async def _keys(self, client: Client, source_ip: str, kid: str | None) -> list[dict[str, Any]]:
        if client.jwks is not None:
            return list(client.jwks["keys"])
        if client.jwks_uri is None:
            raise invalid_client("This client has no keys (jwks_uri or jwks) to verify a client_assertion.")
        cached = self._state.get_client_keys(client.client_id, client.jwks_uri)
        if cached is not None:
            keys, fetched_at = cached
            known = "failure" not in keys and (kid is None or any(k.get("kid") == kid for k in keys["keys"]))
            if known or time.time() - fetched_at < REFETCH_SECONDS:
                return self._usable(keys)
        return self._usable(await self._fetch(client.client_id, client.jwks_uri, source_ip))

    @staticmethod
    def _usable(keys: dict[str, Any]) -> list[dict[str, Any]]:
        if "failure" in keys:
            raise invalid_client(f"{keys['failure']}; fix it, then try again in a minute.")
        return list(keys["keys"])

    async def _fetch(self, client_id: str, url: str, source_ip: str) -> dict[str, Any]:
        if self._limits is not None:
            settings = self._limits.settings
            self._limits.hit("cimd-ip", source_ip, settings.cimd_fetch_per_ip)
            self._limits.hit("cimd-host", clients.host_of(url), settings.cimd_fetch_per_host)
        try:
            text, lifetime = await clients.fetch_client_metadata(
                url, allow_loopback=self._allow_loopback, what="jwks_uri", not_fetched=KEYS_NOT_FETCHED
            )
            try:
                keys = clients.check_jwks(json.loads(text))
            except ValueError as exc:
                raise clients.ClientMetadataError(f"the key set at the client's jwks_uri is not usable: {exc}") from exc
        except clients.ClientMetadataError as exc:
            # Remembered like a failed document: a broken jwks_uri is fetched at most once a minute.
            failure = {"failure": str(exc)}
            self._state.put_client_keys(client_id, url, json.dumps(failure), clients.CIMD_FAILURE_SECONDS)
            return failure
        self._state.put_client_keys(client_id, url, json.dumps(keys), lifetime)
        return keys


def must_not_mix(form: dict[str, str], basic: bool) -> None:
    """RFC 6749 §2.3: one authentication method per request."""
    if basic or form.get("client_secret"):
        raise OAuthError("invalid_request", "Send either a client_assertion or a client secret, not both.")
