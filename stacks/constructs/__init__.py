"""Reusable constructs: `McpServer` works in any CDK app, not only in the kit's own."""

from stacks.constructs.mcp_server import CustomDomainProps, McpServer, SecretReferences
from stacks.constructs.oauth import McpOAuth
from stacks.constructs.observability import McpObservability

__all__ = ["CustomDomainProps", "McpOAuth", "McpObservability", "McpServer", "SecretReferences"]
