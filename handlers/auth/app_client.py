"""The sign-in app client's id, found by its name when the stack cannot hand it over.

Behind a function URL (`stream_responses`) Cognito's callback is the function's own URL, so the
function's environment cannot also carry the client's id: CloudFormation would need the function
before the client and the client before the function. The stack names the client instead
(`MCPKIT_COGNITO_CLIENT_NAME`) and grants `cognito-idp:ListUserPoolClients` on the pool alone.
`CognitoUpstream` asks here once per instance, at the first sign-in; `/mcp` never needs the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.store import aws_dependency

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient


class AppClientNotFoundError(Exception):
    """The pool has no app client of that name, or more than one; the message names pool and name."""


def find_client_id(idp: CognitoIdentityProviderClient, pool_id: str, name: str) -> str:
    """The id of the one app client called `name` in the pool (API failures: `StoreUnavailableError`)."""
    found: list[str] = []
    with aws_dependency("Cognito", "ListUserPoolClients"):
        pages = idp.get_paginator("list_user_pool_clients").paginate(UserPoolId=pool_id)
        for page in pages:
            found += [c["ClientId"] for c in page.get("UserPoolClients", []) if c.get("ClientName") == name]
    if len(found) == 1:
        return found[0]
    if not found:
        raise AppClientNotFoundError(
            f"the user pool {pool_id} has no app client named {name!r}; redeploy the server's stack to create it"
        )
    raise AppClientNotFoundError(
        f"the user pool {pool_id} has {len(found)} app clients named {name!r}; delete the ones the stack did not "
        "create (its client is in the stack's resources)"
    )
