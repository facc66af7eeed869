"""What the OAuth side needs to know, fixed once per instance from `Settings`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from handlers.auth.scopes import ScopePolicy

if TYPE_CHECKING:
    from handlers.settings import Settings

# API Gateway renames a Lambda-returned WWW-Authenticate; the HTTP API integration maps this header
# back for 401/403 (mcpkit.gateway_contract.CHALLENGE_HEADER, which a test keeps equal to this).
CHALLENGE_HEADER: Final = "x-mcpkit-www-authenticate"
TRANSACTION_SECONDS: Final = 10 * 60
CODE_SECONDS: Final = 60
# RFC 8725 recommends a small leeway for clock skew between the issuer and the verifier.
CLOCK_LEEWAY_SECONDS: Final = 60


def running_in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.environ.get("AWS_EXECUTION_ENV"))


@dataclass(frozen=True)
class OAuthConfig:
    kms_key_id: str
    user_pool_id: str
    upstream_client_id: str
    cognito_domain: str
    access_token_seconds: int
    refresh_token_seconds: int
    refresh_family_max_seconds: int
    client_idle_seconds: int
    # Local development only: the sign-in form, and client metadata documents on loopback addresses.
    dev_mode: bool
    permissions: ScopePolicy = field(default_factory=ScopePolicy)
    required_group: str | None = None
    # Redirect URI schemes allowed besides https, loopback http and reverse-domain ones (mcpkit.toml).
    redirect_schemes: frozenset[str] = frozenset()
    # Behind a function URL the stack names the client instead of passing its id (handlers/auth/app_client.py).
    upstream_client_name: str = ""

    @property
    def region(self) -> str:
        # A user pool id is `<region>_<suffix>`.
        return self.user_pool_id.split("_", 1)[0]

    @classmethod
    def from_settings(cls, settings: Settings) -> OAuthConfig:
        return cls(
            kms_key_id=settings.kms_key_id,
            user_pool_id=settings.cognito_user_pool_id,
            upstream_client_id=settings.cognito_client_id,
            cognito_domain=settings.cognito_domain.rstrip("/"),
            access_token_seconds=settings.access_token_ttl_seconds,
            refresh_token_seconds=settings.refresh_token_ttl_seconds,
            refresh_family_max_seconds=settings.refresh_token_max_seconds,
            client_idle_seconds=settings.client_idle_days * 24 * 3600,
            # "Impossible to enable in a deployed stack": the flag alone is not enough.
            dev_mode=settings.dev_login and not running_in_lambda(),
            permissions=settings.permissions,
            required_group=settings.required_group,
            redirect_schemes=frozenset(settings.redirect_schemes),
            upstream_client_name=settings.cognito_client_name,
        )
