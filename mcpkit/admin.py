"""`mcpkit users` and `mcpkit grants`: who may sign in, and what each person allowed which client.

Both work on a deployed stack (its CloudFormation outputs name the table and the user pool; boto3
finds credentials and region the usual way) and on a running `mcpkit dev` (its discovery file names
the emulator). Every failure becomes an `AdminError` with a message fit for the terminal.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mcpkit.server_config import ServerConfigError, ServerFolder, discover_servers, load_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_cognito_idp.type_defs import AttributeTypeTypeDef

    from handlers.auth.state import GrantRecord, OAuthState

# A plausible address; Cognito has the final word (and sends the invitation to it).
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AdminError(Exception):
    """A failure to print as `error: <message>` with exit status `code` (1: state or AWS, 2: bad arguments)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    """One server's data and user pool, deployed or in `mcpkit dev`."""

    server: str
    where: str
    table_name: str
    user_pool_id: str | None
    required_group: str | None
    dev: bool

    def cognito(self) -> CognitoIdentityProviderClient:
        if self.user_pool_id is None:
            if self.dev:
                raise AdminError(
                    f"mcpkit dev for {self.server} runs without OAuth: restart it with --auth oauth", code=1
                )
            raise AdminError(f'{self.where} has no user pool: the server needs auth = "oauth" in its mcpkit.toml')
        import boto3

        client: CognitoIdentityProviderClient = boto3.client("cognito-idp")
        return client

    def state(self) -> OAuthState:
        from handlers.auth.state import OAuthState
        from handlers.store import Table

        return OAuthState(Table(self.table_name))


# -- choosing the server and connecting ----------------------------------------------------------


def choose_server(servers_dir: Path, name: str | None, *, dev: bool) -> ServerFolder:
    """NAME if given; else the one server using OAuth (with --dev: the one running under `mcpkit dev`)."""
    try:
        if name is not None:
            if not (servers_dir / name).is_dir():
                known = ", ".join(s.name for s in discover_servers(servers_dir)) or "none"
                raise AdminError(f"no server {name!r} in {servers_dir} (servers: {known})")
            return load_server(servers_dir / name)
        servers = discover_servers(servers_dir)
    except ServerConfigError as exc:
        raise AdminError(str(exc), code=2) from exc
    if dev:
        from mcpkit.dev import DevNotRunningError, read_discovery

        running = []
        for server in servers:
            with contextlib.suppress(DevNotRunningError):
                if read_discovery(server).user_pool_id is not None:
                    running.append(server)
        if len(running) == 1:
            return running[0]
    oauth = [s for s in servers if s.config.auth == "oauth"]
    if len(oauth) == 1:
        return oauth[0]
    if not oauth:
        known = ", ".join(s.name for s in servers) or "none"
        raise AdminError(f'no server in {servers_dir} uses auth = "oauth"; pick one with --server (servers: {known})')
    raise AdminError(f"several servers use OAuth ({', '.join(s.name for s in oauth)}); pick one with --server")


def connect(folder: ServerFolder, *, dev: bool, region: str | None) -> Target:
    """Point this process's boto3 at the server's AWS (the deployed stack, or the dev emulator)."""
    return _dev_target(folder) if dev else _stack_target(folder, region)


def _dev_target(folder: ServerFolder) -> Target:
    from mcpkit.dev import DevNotRunningError, read_discovery
    from mcpkit.local_aws import endpoint_environment

    try:
        found = read_discovery(folder)
    except DevNotRunningError as exc:
        raise AdminError(str(exc)) from exc
    # From here on every client this process makes talks to the emulator, never to AWS.
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(endpoint_environment(found.aws_endpoint))
    return Target(
        server=folder.name,
        where=f"mcpkit dev ({found.url})",
        table_name=found.table_name,
        user_pool_id=found.user_pool_id,
        required_group=found.required_group,
        dev=True,
    )


def _stack_target(folder: ServerFolder, region: str | None) -> Target:
    import boto3

    if region is not None:
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = region
    session = boto3.session.Session()
    if session.region_name is None:
        raise AdminError("no AWS region: pass --region or set AWS_REGION (or a region in your AWS profile)")
    stack_name = folder.stack_name
    where = f"stack {stack_name} ({session.region_name})"
    with aws_errors(where):
        if session.get_credentials() is None:
            raise AdminError(
                "no AWS credentials: configure a profile (aws configure, then AWS_PROFILE=…) "
                "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        from botocore.exceptions import ClientError

        cloudformation = session.client("cloudformation")
        try:
            stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc.response.get("Error", {}).get("Message", "")):
                raise AdminError(
                    f"no stack {stack_name} in {session.region_name}: deploy it with `cdk deploy {stack_name}` "
                    "(or pass --region), or use --dev for a running `mcpkit dev`"
                ) from exc
            raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", []) if "OutputValue" in o}
    if "TableName" not in outputs:
        raise AdminError(f"{where} has no TableName output (status {stacks[0]['StackStatus']}); redeploy it")
    return Target(
        server=folder.name,
        where=where,
        table_name=outputs["TableName"],
        user_pool_id=outputs.get("UserPoolId"),
        required_group=outputs.get("RequiredGroup"),
        dev=False,
    )


@contextlib.contextmanager
def aws_errors(where: str) -> Iterator[None]:
    """AWS failures as one line naming what failed, never a traceback."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    from handlers.store import StoreUnavailableError

    try:
        yield
    except NoCredentialsError as exc:
        raise AdminError(
            "no AWS credentials: configure a profile (aws configure, then AWS_PROFILE=…) "
            "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from exc
    except NoRegionError as exc:
        raise AdminError("no AWS region: pass --region or set AWS_REGION") from exc
    except EndpointConnectionError as exc:
        raise AdminError(f"cannot reach AWS for {where}: {exc}") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AdminError(
            f"{where}: {exc.operation_name} failed: {error.get('Code', 'Unknown')}: {error.get('Message', '')}"
        ) from exc
    except BotoCoreError as exc:
        raise AdminError(f"{where}: {exc}") from exc
    except StoreUnavailableError as exc:
        cause = exc.__cause__
        if isinstance(cause, NoCredentialsError):
            raise AdminError("no AWS credentials: configure a profile or set AWS_ACCESS_KEY_ID") from exc
        if isinstance(cause, ClientError):
            error = cause.response.get("Error", {})
            raise AdminError(f"{where}: {exc}: {error.get('Message', '')}") from exc
        raise AdminError(f"{where}: {exc}") from exc


# -- users ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddedUser:
    email: str
    subject: str
    # Only in `mcpkit dev`, whose sign-in form cannot ask for a new password; Cognito emails one otherwise.
    password: str | None
    existed: bool
    # The server's required group (without it they could not sign in) and the one asked for.
    groups: tuple[str, ...]
    created_groups: tuple[str, ...]


@dataclass(frozen=True)
class UserInfo:
    email: str | None
    subject: str
    status: str
    enabled: bool
    groups: tuple[str, ...]
    created: datetime | None


def check_email(email: str) -> str:
    if not EMAIL_PATTERN.fullmatch(email):
        raise AdminError(f"{email!r} is not an email address", code=2)
    return email


def _attributes(user: Any) -> dict[str, str]:
    return {a["Name"]: a["Value"] for a in user.get("Attributes", user.get("UserAttributes", []))}


def add_user(target: Target, email: str, group: str | None) -> AddedUser:
    """Invite `email` (Cognito emails a temporary password) or, in dev, create it with a printed password."""
    check_email(email)
    idp = target.cognito()
    pool = target.user_pool_id
    assert pool is not None  # target.cognito() refuses a target without a pool
    groups = tuple(dict.fromkeys(g for g in (target.required_group, group) if g is not None))
    password = None
    existed = False
    with aws_errors(target.where):
        attributes: list[AttributeTypeTypeDef] = [
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
        ]
        try:
            if target.dev:
                created = idp.admin_create_user(
                    UserPoolId=pool, Username=email, UserAttributes=attributes, MessageAction="SUPPRESS"
                )
                # Permanent: the dev sign-in form cannot answer Cognito's NEW_PASSWORD_REQUIRED challenge.
                password = f"{secrets.token_urlsafe(12)}-Aa1"
                idp.admin_set_user_password(UserPoolId=pool, Username=email, Password=password, Permanent=True)
            else:
                created = idp.admin_create_user(
                    UserPoolId=pool, Username=email, UserAttributes=attributes, DesiredDeliveryMediums=["EMAIL"]
                )
            subject = _attributes(created["User"]).get("sub", created["User"]["Username"])
        except idp.exceptions.UsernameExistsException:
            if not groups:
                raise AdminError(
                    f"{email} is already a user of {target.where} (see `mcpkit users list`; "
                    "--group G adds them to a group)"
                ) from None
            existed = True
            subject = _attributes(idp.admin_get_user(UserPoolId=pool, Username=email)).get("sub", "")
        created_groups = []
        for name in groups:
            try:
                idp.get_group(UserPoolId=pool, GroupName=name)
            except idp.exceptions.ResourceNotFoundException:
                idp.create_group(UserPoolId=pool, GroupName=name)
                created_groups.append(name)
            idp.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName=name)
    return AddedUser(email, subject, password, existed, groups, tuple(created_groups))


def list_users(target: Target) -> list[UserInfo]:
    idp = target.cognito()
    pool = target.user_pool_id
    assert pool is not None
    with aws_errors(target.where):
        members: dict[str, list[str]] = {}
        for page in idp.get_paginator("list_groups").paginate(UserPoolId=pool):
            for group in page["Groups"]:
                name = group["GroupName"]
                for users in idp.get_paginator("list_users_in_group").paginate(UserPoolId=pool, GroupName=name):
                    for user in users["Users"]:
                        members.setdefault(user["Username"], []).append(name)
        found = []
        for listed in idp.get_paginator("list_users").paginate(UserPoolId=pool):
            for user in listed["Users"]:
                attributes = _attributes(user)
                found.append(
                    UserInfo(
                        email=attributes.get("email"),
                        subject=attributes.get("sub", user["Username"]),
                        status=str(user.get("UserStatus", "UNKNOWN")),
                        enabled=bool(user.get("Enabled", True)),
                        groups=tuple(sorted(members.get(user["Username"], []))),
                        created=user.get("UserCreateDate"),
                    )
                )
    return sorted(found, key=lambda u: (u.email or "", u.subject))


def remove_user(target: Target, email: str) -> tuple[str, list[GrantRecord]]:
    """Delete the account and revoke its grants (tokens the kit issued do not ask Cognito again)."""
    check_email(email)
    idp = target.cognito()
    pool = target.user_pool_id
    assert pool is not None
    with aws_errors(target.where):
        try:
            subject = _attributes(idp.admin_get_user(UserPoolId=pool, Username=email)).get("sub")
        except idp.exceptions.UserNotFoundException:
            raise AdminError(f"no user {email} in {target.where} (see `mcpkit users list`)") from None
        idp.admin_delete_user(UserPoolId=pool, Username=email)
        revoked = revoke_all(target, subject) if subject else []
    return email, revoked


# -- grants --------------------------------------------------------------------------------------


def find_subject(target: Target, user: str) -> str:
    """The `sub` behind `user`: an email (looked up in the grants, then in the pool) or a sub itself."""
    if "@" not in user:
        return user
    with aws_errors(target.where):
        for grant in target.state().list_grants():
            if grant.email is not None and grant.email.lower() == user.lower():
                return grant.subject
        if target.user_pool_id is not None:
            idp = target.cognito()
            try:
                found = _attributes(idp.admin_get_user(UserPoolId=target.user_pool_id, Username=user))
            except idp.exceptions.UserNotFoundException:
                pass
            else:
                if "sub" in found:
                    return found["sub"]
    raise AdminError(f"no user {user} in {target.where}: no grant and no account with that email")


def list_grants(target: Target, user: str | None) -> list[GrantRecord]:
    subject = find_subject(target, user) if user is not None else None
    with aws_errors(target.where):
        return target.state().list_grants(subject)


def revoke_all(target: Target, subject: str) -> list[GrantRecord]:
    state = target.state()
    with aws_errors(target.where):
        return [r for g in state.list_grants(subject) if (r := state.revoke_grant(g.subject, g.client_id))]


def revoke(target: Target, user: str, client_id: str | None, *, every: bool) -> list[GrantRecord]:
    if (client_id is None) == (not every):
        raise AdminError("give --client CLIENT_ID or --all (not both)", code=2)
    subject = find_subject(target, user)
    state = target.state()
    with aws_errors(target.where):
        grants = state.list_grants(subject)
        if not grants:
            raise AdminError(f"{user} has no grants in {target.where}")
        if every:
            return revoke_all(target, subject)
        revoked = state.revoke_grant(subject, str(client_id))
    if revoked is None:
        clients = ", ".join(f"{g.client_id} ({g.client_name or 'unnamed'})" for g in grants)
        raise AdminError(f"{user} has no grant for client {client_id!r}; their clients: {clients}")
    return [revoked]


def access_token_minutes() -> int:
    """The access-token lifetime the function runs with (its setting's default; 15 minutes at most)."""
    from handlers.settings import Settings

    default = Settings.model_fields["access_token_ttl_seconds"].default
    return int(default) // 60


def human_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def grant_json(grant: GrantRecord) -> dict[str, Any]:
    return {
        "subject": grant.subject,
        "email": grant.email,
        "client_id": grant.client_id,
        "client_name": grant.client_name,
        "scopes": list(grant.scopes),
        "first_used": iso_time(grant.first_used),
        "last_used": iso_time(grant.last_used),
    }
