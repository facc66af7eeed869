"""The runtime's one settings object, read from `MCPKIT_*` environment variables.

The CDK stack and `mcpkit dev` both fill these from `ServerFolder.runtime_environment()`, so a
server behaves the same locally and in AWS. The DynamoDB endpoint is not a setting of ours:
boto3 reads `AWS_ENDPOINT_URL_DYNAMODB` itself (moto, DynamoDB Local).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCPKIT_", frozen=True, extra="ignore")

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
    # API Gateway accepts 10 MB; an MCP request is rarely more than a few KB, so refuse early and clearly.
    sdk_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"
    max_body_bytes: Annotated[int, Field(ge=1024, le=10 * 1024 * 1024)] = 1024 * 1024

    # auth_mode = "oauth": the sign-in side the stack creates (stacks/constructs/oauth.py), ids only.
    kms_key_id: str = ""
    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""
    cognito_domain: str = Field(default="", description="Managed-login base URL, e.g. https://x.auth.<region>...")
    # The local sign-in form of `mcpkit dev`; refused whenever the code runs inside AWS Lambda.
    dev_login: bool = False
    access_token_ttl_seconds: Annotated[int, Field(ge=60, le=3600)] = 15 * 60
    refresh_token_ttl_seconds: Annotated[int, Field(ge=3600, le=90 * 24 * 3600)] = 30 * 24 * 3600
    # A refresh-token family ends this long after sign-in however often it is rotated.
    refresh_token_max_seconds: Annotated[int, Field(ge=3600, le=365 * 24 * 3600)] = 90 * 24 * 3600
    # Registered clients unused for this long disappear (clients register on every connect).
    client_idle_days: Annotated[int, Field(ge=1, le=365)] = 30

    @model_validator(mode="after")
    def _oauth_needs_its_ids(self) -> Settings:
        if self.auth_mode == "oauth":
            needed = {
                "MCPKIT_KMS_KEY_ID": self.kms_key_id,
                "MCPKIT_COGNITO_USER_POOL_ID": self.cognito_user_pool_id,
                "MCPKIT_COGNITO_CLIENT_ID": self.cognito_client_id,
            }
            if not self.dev_login:
                needed["MCPKIT_COGNITO_DOMAIN"] = self.cognito_domain
            missing = [name for name, value in needed.items() if not value]
            if missing:
                raise ValueError(f"MCPKIT_AUTH_MODE=oauth needs {', '.join(missing)} (the stack sets them)")
        return self

    @field_validator("allowed_origins", "allowed_hosts", mode="after")
    @classmethod
    def _lowercase(cls, values: list[str]) -> list[str]:
        return [v.strip().lower().rstrip("/") for v in values if v.strip()]
