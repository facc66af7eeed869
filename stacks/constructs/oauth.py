"""The sign-in side of `auth = "oauth"`: a Cognito user pool with managed login, and the KMS signing key.

The function is the OAuth authorization server MCP clients talk to (DCR, PKCE, its own tokens
signed with the KMS key); Cognito only authenticates the human in between, through one
confidential app client whose callback is the function's `/oauth/callback`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from aws_cdk import Acknowledgment, Aws, Duration, Fn, RemovalPolicy, Stack, Validations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# Scopes in Cognito are `<resource server identifier>/<scope name>`.
RESOURCE_SERVER_ID: Final = "mcpkit"
TOOLS_SCOPE: Final = "mcp:tools"
# Behind a function URL the function finds its app client by this name (handlers/auth/app_client.py).
APP_CLIENT_NAME: Final = "mcpkit"
# Cognito rejects domain prefixes that contain these words.
_RESERVED_IN_PREFIX: Final = re.compile(r"aws|amazon|cognito")


def domain_prefix_base(stack_name: str) -> str:
    """The literal part of the managed-login domain prefix; the account id is appended at deploy time.

    Prefixes are global per region, so the account id keeps two accounts' `McpServer-example` apart.
    """
    base = _RESERVED_IN_PREFIX.sub("x", stack_name.lower())
    base = re.sub(r"[^a-z0-9-]+", "-", base).strip("-")
    # 63 characters at most, 12 for the account id and one hyphen.
    return base[:50].rstrip("-")


@dataclass(frozen=True)
class OAuthEnvironment:
    """What the function needs to reach the sign-in side; names and ids only, never secrets."""

    kms_key_id: str
    user_pool_id: str
    client_id: str
    domain_url: str
    # Set when the function cannot be given the client's id without a cycle (a function URL front).
    client_name: str | None = None

    def as_env(self) -> dict[str, str]:
        client = (
            {"MCPKIT_COGNITO_CLIENT_NAME": self.client_name}
            if self.client_name is not None
            else {"MCPKIT_COGNITO_CLIENT_ID": self.client_id}
        )
        return {
            "MCPKIT_KMS_KEY_ID": self.kms_key_id,
            "MCPKIT_COGNITO_USER_POOL_ID": self.user_pool_id,
            **client,
            "MCPKIT_COGNITO_DOMAIN": self.domain_url,
        }


class McpOAuth(Construct):
    """User pool, resource server, managed-login domain, one confidential client and the signing key."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        callback_url: str,
        client_name: str | None = None,
        feature_plan: Literal["essentials", "plus"] = "essentials",
        mfa: Literal["off", "optional", "required"] = "optional",
        self_sign_up: bool = False,
        required_group: str | None = None,
        retain: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        plus = feature_plan == "plus"

        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            # Off by default: users are invited (`mcpkit users add`); an open sign-up hands tool access to anyone
            # who finds the sign-in page, unless `required_group` still holds them back.
            self_sign_up_enabled=self_sign_up,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            mfa={"off": cognito.Mfa.OFF, "optional": cognito.Mfa.OPTIONAL, "required": cognito.Mfa.REQUIRED}[mfa],
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False) if mfa != "off" else None,
            feature_plan=cognito.FeaturePlan.PLUS if plus else cognito.FeaturePlan.ESSENTIALS,
            # Threat protection exists only on the Plus plan; enforce it there.
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION if plus else None,
            deletion_protection=retain,
            removal_policy=removal,
        )
        if not plus:
            why = (
                "Threat protection (advanced security) requires the Cognito Plus plan, priced per active user "
                "with no free tier; Essentials is the default, set oauth.feature_plan = 'plus' in mcpkit.toml "
                "to enforce it."
            )
            Validations.of(self.user_pool).acknowledge(
                Acknowledgment(id="AwsSolutions-COG3", reason=why),
                Acknowledgment(id="AwsSolutions-COG8", reason=why),
            )
        if mfa != "required":
            Validations.of(self.user_pool).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-COG2",
                    reason="MFA (TOTP) is offered to every user but only required with oauth.mfa = 'required' "
                    "in mcpkit.toml; "
                    + (
                        "self sign-up is on (oauth.self_sign_up), by the server owner's choice."
                        if self_sign_up
                        else "sign-up is closed, so every account is created by an administrator."
                    ),
                )
            )

        # The function admits only this group's members (`cognito:groups` of the ID token); the group lives
        # with the pool so inviting someone into it (`mcpkit users add --group`) works right after deploy.
        self.required_group: cognito.CfnUserPoolGroup | None = None
        if required_group is not None:
            self.required_group = cognito.CfnUserPoolGroup(
                self,
                "RequiredGroup",
                user_pool_id=self.user_pool.user_pool_id,
                group_name=required_group,
                description="Members may use the MCP server (oauth.required_group)",
            )

        tools_scope = cognito.ResourceServerScope(
            scope_name=TOOLS_SCOPE, scope_description="Call the MCP server's tools"
        )
        self.resource_server = self.user_pool.add_resource_server(
            "ResourceServer", identifier=RESOURCE_SERVER_ID, scopes=[tools_scope]
        )
        self.client_name = client_name
        self.client = self.user_pool.add_client(
            "Client",
            # Named only when the function looks the client up by its name; otherwise as before.
            user_pool_client_name=client_name,
            # Confidential: the function exchanges the code server-side with the secret, which it reads
            # through cognito-idp:DescribeUserPoolClient (no copy of the secret anywhere else).
            generate_secret=True,
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[
                    cognito.OAuthScope.OPENID,
                    cognito.OAuthScope.EMAIL,
                    cognito.OAuthScope.resource_server(self.resource_server, tools_scope),
                ],
                callback_urls=[callback_url],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            auth_session_validity=Duration.minutes(5),
            access_token_validity=Duration.minutes(60),
            id_token_validity=Duration.minutes(60),
            refresh_token_validity=Duration.days(30),
        )

        stack_name = Stack.of(self).stack_name
        self.domain = self.user_pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=Fn.join("-", [domain_prefix_base(stack_name), Aws.ACCOUNT_ID])
            ),
            managed_login_version=cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN,
        )
        # The newer managed login shows an error page until a branding style exists for the client.
        self.branding = cognito.CfnManagedLoginBranding(
            self,
            "Branding",
            user_pool_id=self.user_pool.user_pool_id,
            client_id=self.client.user_pool_client_id,
            use_cognito_provided_values=True,
        )

        self.signing_key = kms.Key(
            self,
            "SigningKey",
            description=f"{stack_name}: signs the MCP server's OAuth tokens (RS256)",
            key_spec=kms.KeySpec.RSA_2048,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            # KMS cannot rotate asymmetric keys.
            enable_key_rotation=False,
            removal_policy=removal,
            pending_window=Duration.days(30 if retain else 7),
        )
        Validations.of(self.signing_key).acknowledge(
            Acknowledgment(
                id="AwsSolutions-KMS5",
                reason="Asymmetric (RSA_2048 SIGN_VERIFY) keys do not support automatic rotation in KMS; "
                "rotate by deploying a new key, the JWKS endpoint publishes the public key.",
            )
        )

        self.environment = OAuthEnvironment(
            kms_key_id=self.signing_key.key_id,
            user_pool_id=self.user_pool.user_pool_id,
            client_id=self.client.user_pool_client_id,
            domain_url=self.domain.base_url(),
            client_name=client_name,
        )

    def grant_runtime(self, grantee: iam.IGrantable) -> None:
        """Exactly what the function does with the sign-in side: sign tokens, publish the key, read the client."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Sign", "kms:GetPublicKey"], resources=[self.signing_key.key_arn])
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                # AdminGetUser/AdminListGroupsForUser: a refresh checks the account is still enabled and in the group.
                actions=[
                    "cognito-idp:DescribeUserPoolClient",
                    "cognito-idp:AdminGetUser",
                    "cognito-idp:AdminListGroupsForUser",
                    # The client is found by name at the first sign-in (a function URL front).
                    *(["cognito-idp:ListUserPoolClients"] if self.client_name is not None else []),
                ],
                resources=[self.user_pool.user_pool_arn],
            )
        )
