"""The runtime's one settings object, read from `MCPKIT_*` environment variables.

The CDK stack and `mcpkit dev` both fill these from `ServerFolder.runtime_environment()`, so a
server behaves the same locally and in AWS. The DynamoDB endpoint is not a setting of ours:
botocore reads `AWS_ENDPOINT_URL_DYNAMODB` itself (moto, DynamoDB Local).

A plain pydantic model that reads the environment itself, the way pydantic-settings did (prefix
`MCPKIT_`, names matched case-insensitively, lists and models as JSON, keyword arguments win):
pydantic-settings (with python-dotenv and argparse) cost ~20 ms of every cold start for that.
"""

from __future__ import annotations

import json
import os
import types
import typing
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from handlers.auth.scopes import ScopePolicy

ENV_PREFIX: Final = "MCPKIT_"


class EnvSettings(BaseModel):
    """A frozen model whose fields also come from `<env_prefix><FIELD>` environment variables."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    env_prefix: ClassVar[str] = ENV_PREFIX

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {**_environment(cls, cls.env_prefix), **data}


class Settings(EnvSettings):
    server: str = Field(
        default="servers/example/server.py:mcp",
        description="`<path to module, relative to the code root>:<attribute>` of the MCPServer to serve.",
    )
    table_name: str = "mcpkit"
    auth_mode: Literal["none", "oauth"] = "none"
    allowed_origins: list[str] = Field(default_factory=list)
    # Custom domains the API is also reachable on; the execute-api domain is taken from each request's context.
    allowed_hosts: list[str] = Field(default_factory=list)
    session_ttl_seconds: Annotated[int, Field(ge=60)] = 24 * 3600
    # How long instances trust a session after opening or reading it (handlers/sessions.py says what that costs).
    session_cache_seconds: Annotated[int, Field(ge=0, le=300)] = 30
    # The secret the stack draws at deploy (`mcpkit dev`: per run). It signs session ids so that any instance
    # can trust a fresh one without a read (handlers/sessions.py), and a key derived from it seals the
    # 2026-07-28 requestState so that any instance can open it (handlers/request_state.py).
    session_key: SecretStr | None = None
    # How long a client has to answer what a tool asked (elicitation, sampling, roots) before the sealed
    # requestState of that round is refused as expired.
    request_state_ttl_seconds: Annotated[int, Field(ge=10, le=24 * 3600)] = 600
    # Behind a response-streaming function URL (mcpkit.toml `stream_responses`): a request whose tool sends
    # progress or log notifications is answered as an event stream while it runs; every other one as JSON.
    stream_responses: bool = False
    # API Gateway accepts 10 MB; an MCP request is rarely more than a few KB, so refuse early and clearly.
    sdk_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"
    max_body_bytes: Annotated[int, Field(ge=1024, le=10 * 1024 * 1024)] = 1024 * 1024

    # auth_mode = "oauth": the sign-in side the stack creates (stacks/constructs/oauth.py), ids only.
    kms_key_id: str = ""
    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""
    # Instead of the id, behind a function URL: the id would close a cycle in the stack (handlers/auth/app_client.py).
    cognito_client_name: str = ""
    cognito_domain: str = Field(default="", description="Managed-login base URL, e.g. https://x.auth.<region>...")
    # The local sign-in form of `mcpkit dev`; refused whenever the code runs inside AWS Lambda.
    dev_login: bool = False
    # Revoking a grant stops its refresh tokens at once and its access tokens when they expire: keep that short.
    access_token_ttl_seconds: Annotated[int, Field(ge=60, le=15 * 60)] = 15 * 60
    refresh_token_ttl_seconds: Annotated[int, Field(ge=3600, le=90 * 24 * 3600)] = 30 * 24 * 3600
    # A refresh-token family ends this long after sign-in however often it is rotated.
    refresh_token_max_seconds: Annotated[int, Field(ge=3600, le=365 * 24 * 3600)] = 90 * 24 * 3600
    # Registered clients unused for this long disappear (clients register on every connect).
    client_idle_days: Annotated[int, Field(ge=1, le=365)] = 30
    # JSON of mcpkit.toml's [permissions] (mcpkit.server_config.Permissions).
    permissions: ScopePolicy = Field(default_factory=ScopePolicy)
    # Only members of this Cognito group get tokens.
    required_group: str | None = None
    # JSON list of mcpkit.toml's [oauth] redirect_schemes: native apps' schemes not in reverse-domain form.
    redirect_schemes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _oauth_needs_its_ids(self) -> Settings:
        if self.auth_mode == "oauth":
            needed = {
                "MCPKIT_KMS_KEY_ID": self.kms_key_id,
                "MCPKIT_COGNITO_USER_POOL_ID": self.cognito_user_pool_id,
                "MCPKIT_COGNITO_CLIENT_ID (or MCPKIT_COGNITO_CLIENT_NAME)": self.cognito_client_id
                or self.cognito_client_name,
            }
            if not self.dev_login:
                needed["MCPKIT_COGNITO_DOMAIN"] = self.cognito_domain
            missing = [name for name, value in needed.items() if not value]
            if missing:
                raise ValueError(f"MCPKIT_AUTH_MODE=oauth needs {', '.join(missing)} (the stack sets them)")
        return self

    @field_validator("session_key", mode="after")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < 32:
            raise ValueError("MCPKIT_SESSION_KEY must be at least 32 random characters (the stack generates one)")
        return key

    @field_validator("allowed_origins", "allowed_hosts", mode="after")
    @classmethod
    def _lowercase(cls, values: list[str]) -> list[str]:
        return [v.strip().lower().rstrip("/") for v in values if v.strip()]


def _environment(model: type[BaseModel], env_prefix: str) -> dict[str, Any]:
    """The `<prefix><FIELD>` variables that are set, by field name; list and model fields decoded from JSON."""
    prefix = env_prefix.lower()
    found = {k.lower()[len(prefix) :]: v for k, v in os.environ.items() if k.lower().startswith(prefix)}
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name not in found:
            continue
        raw = found[name]
        if _is_structured(field.annotation):
            try:
                values[name] = json.loads(raw)
            except ValueError as exc:
                raise ValueError(f"{env_prefix}{name.upper()} must be JSON ({exc})") from None
        else:
            values[name] = raw
    return values


def _is_structured(annotation: Any) -> bool:
    """A list, tuple, set, dict or model (optionally `| None`): given as JSON in the environment."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _is_structured(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_structured(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    if origin in (list, tuple, set, frozenset, dict):
        return True
    return isinstance(annotation, type) and issubclass(annotation, (BaseModel, list, tuple, set, frozenset, dict))
