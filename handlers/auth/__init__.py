"""OAuth for `auth = "oauth"`: the MCP endpoint as a resource server, and an authorization server in front of Cognito.

Cognito cannot serve today's MCP clients on its own (no dynamic registration, no client ID
metadata documents, no RFC 8414 metadata, no `aud` in access tokens, no `iss` in the
authorization response), so the function is the authorization server the clients see and
Cognito only signs the person in:

    client                      this function (AS + RS)                      Cognito
      │ POST /mcp (no token) ──▶ 401 WWW-Authenticate: resource_metadata=…
      │ GET PRM, AS metadata ──▶ resource, issuer, endpoints
      │ POST /oauth/register ──▶ CLIENT#<id> (or client_id = CIMD URL, fetched)
      │ GET /oauth/authorize ──▶ TXN#<state> ── 302 ──▶ managed login (/oauth2/authorize,
      │                                                 kit's client, own PKCE, state = txn)
      │                          /oauth/callback ◀── 302 code ──┘
      │                          code → /oauth2/token (secret), ID token verified (JWKS)
      │ ◀── 302 redirect_uri?code=…&state=…&iss=…   (CODE#<sha256>, 60 s, single use)
      │ POST /oauth/token ─────▶ PKCE S256 → JWT (KMS RS256, aud = <base>/mcp) + refresh
      │ POST /mcp (Bearer) ────▶ verified locally with the cached public key → tools

Locally (`mcpkit dev`), moto has no managed-login pages, so `/oauth/dev-login` (a plain form
checked against the moto user pool) stands in for Cognito's; it refuses to run inside Lambda.
Every piece of state is in the table: any instance may answer any step.
"""
