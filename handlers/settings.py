"""The runtime's one settings object, read from `MCPKIT_*` environment variables.

The CDK stack and `mcpkit dev` both fill these from `ServerFolder.runtime_environment()`, so a
server behaves the same locally and in AWS. The DynamoDB endpoint is not a setting of ours:
boto3 reads `AWS_ENDPOINT_URL_DYNAMODB` itself (moto, DynamoDB Local).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
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

    @field_validator("allowed_origins", "allowed_hosts", mode="after")
    @classmethod
    def _lowercase(cls, values: list[str]) -> list[str]:
        return [v.strip().lower().rstrip("/") for v in values if v.strip()]
