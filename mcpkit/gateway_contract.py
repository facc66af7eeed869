"""What API Gateway does in front of the function, as data shared by the stack and the local front.

`stacks/` configures the HTTP API from these values and `mcpkit.local_gateway` emulates the same
behaviour, so a design that only works locally fails the tests. Imports nothing heavy.
"""

from __future__ import annotations

from typing import Final

# Routes of the HTTP API (method, path). `{proxy+}` matches one or more path segments.
MCP_ROUTES: Final[tuple[tuple[str, str], ...]] = (("POST", "/mcp"), ("DELETE", "/mcp"), ("GET", "/mcp"))
OAUTH_ROUTES: Final[tuple[tuple[str, str], ...]] = (
    ("GET", "/.well-known/oauth-protected-resource"),
    ("GET", "/.well-known/oauth-protected-resource/{proxy+}"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/oauth/jwks.json"),
    ("POST", "/oauth/register"),
    ("GET", "/oauth/register/{client_id}"),
    ("DELETE", "/oauth/register/{client_id}"),
    ("GET", "/oauth/authorize"),
    ("GET", "/oauth/callback"),
    ("GET", "/oauth/consent"),
    ("POST", "/oauth/consent"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/revoke"),
)

# CORS, answered by API Gateway itself (preflights never reach the function, so never meet auth).
CORS_ALLOW_METHODS: Final[tuple[str, ...]] = ("GET", "POST", "DELETE", "OPTIONS")
CORS_ALLOW_HEADERS: Final[tuple[str, ...]] = (
    "Authorization",
    "Content-Type",
    "Accept",
    "Mcp-Protocol-Version",
    "Mcp-Session-Id",
    "Last-Event-ID",
    "Mcp-Method",
    "Mcp-Name",
    # `Mcp-Param-<Name>` headers are named by each server's tools (SEP-2243), so no fixed list can
    # hold them. The wildcard covers them; Authorization stays listed, since Fetch never lets `*`
    # stand for it.
    "*",
)
CORS_EXPOSE_HEADERS: Final[tuple[str, ...]] = ("Mcp-Session-Id", "WWW-Authenticate", "MCP-Protocol-Version")
CORS_MAX_AGE_SECONDS: Final = 3600
# Behind a function URL (`stream_responses`) Lambda answers CORS from the URL's configuration, whose
# method list takes no OPTIONS (it answers preflights itself); the other lists are the same.
FUNCTION_URL_CORS_ALLOW_METHODS: Final[tuple[str, ...]] = tuple(m for m in CORS_ALLOW_METHODS if m != "OPTIONS")

# API Gateway renames a WWW-Authenticate header returned by a Lambda proxy integration to
# x-amzn-remapped-www-authenticate (AWS "Amazon API Gateway important notes"; claude-ai-mcp #748).
# The function therefore also returns the challenge under this name, and the integration maps it
# back onto WWW-Authenticate for 401 and 403 (HTTP API response parameter mapping; the header is
# not in the reserved list of the `http-api-parameter-mapping` page).
CHALLENGE_HEADER: Final = "x-mcpkit-www-authenticate"
REMAPPED_HEADERS: Final[frozenset[str]] = frozenset({"www-authenticate"})
RESPONSE_PARAMETER_MAPPINGS: Final[dict[int, dict[str, str]]] = {
    status: {"overwrite:header.WWW-Authenticate": f"$response.header.{CHALLENGE_HEADER}"} for status in (401, 403)
}

# Limits of the HTTP API and of synchronous Lambda invocation.
MAX_REQUEST_BYTES: Final = 10 * 1024 * 1024
MAX_RESPONSE_BYTES: Final = 6 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS: Final = 29
