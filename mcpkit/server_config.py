"""A server's deployment settings: `servers/<name>/mcpkit.toml`, validated.

The same model feeds the CDK stack (`stacks/`) and the local runner (`mcpkit dev`), and
`runtime_environment()` is the one place where config becomes the Lambda's environment, so
a server behaves the same on a laptop and in AWS.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path  # noqa: TC003 - pydantic resolves field annotations at run time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CONFIG_FILE = "mcpkit.toml"
SERVER_FILE = "server.py"
SERVER_ATTRIBUTE = "mcp"
# A CloudFormation stack name allows letters, digits and hyphens; the folder name becomes part of it.
SERVER_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
SERVER_NAME_MAX = 40
# API Gateway cuts every integration off at 29 s; leave the function a second to answer first.
API_GATEWAY_TIMEOUT_SECONDS = 29
# Lambda's own ceiling, which is all that bounds a request through a function URL.
LAMBDA_TIMEOUT_SECONDS = 900


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Throttling(_Strict):
    rate_limit: Annotated[float, Field(gt=0, description="Steady-state requests per second for the stage.")] = 50
    burst_limit: Annotated[int, Field(gt=0, description="Requests allowed in a burst.")] = 100


class CustomDomain(_Strict):
    domain_name: Annotated[str, Field(min_length=3, description="e.g. mcp.example.com")]
    hosted_zone_name: str | None = Field(default=None, description="Route 53 zone to create the record and cert in.")
    hosted_zone_id: str | None = None
    certificate_arn: str | None = Field(default=None, description="Existing ACM certificate (same region).")

    @model_validator(mode="after")
    def _needs_zone_or_certificate(self) -> CustomDomain:
        if self.certificate_arn is None and self.hosted_zone_name is None:
            raise ValueError("give either certificate_arn or hosted_zone_name (to issue a DNS-validated certificate)")
        # A zone lookup by name needs AWS credentials at synth; synth must work offline.
        if (self.hosted_zone_name is None) != (self.hosted_zone_id is None):
            raise ValueError("give hosted_zone_name and hosted_zone_id together (synth does not look zones up)")
        if self.hosted_zone_name is not None and not _in_zone(self.domain_name, self.hosted_zone_name):
            raise ValueError(f"{self.domain_name!r} is not inside the hosted zone {self.hosted_zone_name!r}")
        return self


def _in_zone(domain: str, zone: str) -> bool:
    domain, zone = domain.lower().rstrip("."), zone.lower().rstrip(".")
    return domain == zone or domain.endswith(f".{zone}")


class OAuthSettings(_Strict):
    """The Cognito user pool behind `auth = "oauth"` (users sign in there; the function issues the tokens)."""

    feature_plan: Literal["essentials", "plus"] = Field(
        default="essentials",
        description="Cognito feature plan; 'plus' adds threat protection (enforced) at a higher price per user.",
    )
    mfa: Literal["off", "optional", "required"] = Field(
        default="optional", description="TOTP second factor in managed login."
    )
    self_sign_up: bool = Field(
        default=False, description="Let anyone create an account; off: `mcpkit users add EMAIL` invites people."
    )
    required_group: str | None = Field(
        default=None,
        pattern=r"^[\w+=,.@-]{1,128}$",
        description="Only members of this Cognito group get tokens (the stack creates the group).",
    )
    redirect_schemes: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9+-]{0,40}$")]] = Field(
        default_factory=list,
        max_length=20,
        description=(
            "Native apps' redirect URI schemes to accept besides https, loopback http, reverse-domain schemes "
            "(com.example.app) and the known clients' (cursor)."
        ),
    )

    @field_validator("redirect_schemes")
    @classmethod
    def _no_browser_or_web_schemes(cls, schemes: list[str]) -> list[str]:
        # Schemes a browser acts on itself, or plain web ones (whose rules are fixed), are never redirect schemes.
        refused = sorted(set(schemes) & _NOT_REDIRECT_SCHEMES)
        if refused:
            raise ValueError(f"{', '.join(refused)} cannot be a native app's redirect scheme")
        return schemes


_NOT_REDIRECT_SCHEMES = frozenset(
    {"http", "https", "javascript", "data", "file", "blob", "about", "vbscript", "ftp", "ws", "wss", "filesystem"}
)
# RFC 6749 §3.3 scope-token characters; ":" and "." keep names like `notes:read` readable.
_SCOPE_NAME = r"^[\x21\x23-\x5b\x5d-\x7e]{1,64}$"
DEFAULT_SCOPE = "mcp:tools"
# Of Lambda's 4 KB environment, what the permissions JSON may take; the rest is the kit's own variables.
PERMISSIONS_MAX_BYTES = 2560


class ScopeConfig(_Strict):
    description: Annotated[str, Field(min_length=1, max_length=200, description="Plain words for the consent page.")]
    tools: list[str] = Field(default_factory=list)
    prompts: list[str] = Field(default_factory=list)
    resources: list[str] = Field(
        default_factory=list,
        description="Resource URIs or patterns such as notes://*, matched against URI templates too.",
    )


class Permissions(_Strict):
    """Which OAuth scope each tool, resource and prompt needs (auth = "oauth" only)."""

    default_scope: str = Field(default=DEFAULT_SCOPE, description="Needed by everything not listed under a scope.")
    scopes: dict[str, ScopeConfig] = Field(
        default_factory=lambda: {
            DEFAULT_SCOPE: ScopeConfig(description="Use this server's tools, resources and prompts")
        }
    )

    @model_validator(mode="after")
    def _consistent(self) -> Permissions:
        for name in self.scopes:
            if not re.fullmatch(_SCOPE_NAME, name):
                raise ValueError(
                    f"scope name {name!r} must be 1-64 printable characters without spaces, quotes or '\\'"
                )
        if self.default_scope not in self.scopes:
            raise ValueError(
                f"default_scope {self.default_scope!r} must be one of the scopes: {', '.join(self.scopes)}"
            )
        seen: dict[str, str] = {}
        for name, scope in self.scopes.items():
            for kind, items in (("tool", scope.tools), ("prompt", scope.prompts), ("resource", scope.resources)):
                for item in items:
                    earlier = seen.setdefault(f"{kind} {item}", name)
                    if earlier != name:
                        raise ValueError(
                            f"{kind} {item!r} is listed under both {earlier!r} and {name!r}; give it one scope"
                        )
        size = len(self.model_dump_json())
        if size > PERMISSIONS_MAX_BYTES:
            # It travels in the function's environment, which Lambda caps at 4 KB for all variables.
            raise ValueError(
                f"the permissions table is {size} bytes as JSON, over {PERMISSIONS_MAX_BYTES}: Lambda's environment "
                "holds 4 KB in all; use resource patterns, fewer scopes or shorter descriptions"
            )
        return self


class Alarms(_Strict):
    """Four alarms, created only with a topic to notify: an alarm that tells nobody costs $0.10 a month for nothing."""

    topic_arn: str | None = Field(
        default=None, description="SNS topic that receives alarm and OK notifications; unset: no alarms."
    )
    p99_latency_ms: Annotated[int, Field(ge=100, le=LAMBDA_TIMEOUT_SECONDS * 1000)] = 5000
    error_threshold: Annotated[int, Field(ge=1, description="Function errors per 5 minutes that raise the alarm.")] = 5

    @model_validator(mode="after")
    def _thresholds_need_a_topic(self) -> Alarms:
        unused = sorted(self.model_fields_set - {"topic_arn"})
        if self.topic_arn is None and unused:
            raise ValueError(
                f"{', '.join(unused)} set but no topic_arn: the stack creates alarms only when they notify "
                'someone; add topic_arn = "arn:aws:sns:..." or remove the threshold'
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.topic_arn is not None


class IamStatement(_Strict):
    actions: Annotated[list[str], Field(min_length=1)]
    resources: Annotated[list[str], Field(min_length=1)]

    @field_validator("actions")
    @classmethod
    def _no_admin(cls, actions: list[str]) -> list[str]:
        if any(a.strip() == "*" for a in actions):
            raise ValueError("'*' grants every AWS action; list the actions the tools need")
        return actions


class SecretRef(_Strict):
    """A secret by reference: the Lambda gets the name in its environment, never the value."""

    ssm_parameter: str | None = None
    secrets_manager: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.ssm_parameter is None) == (self.secrets_manager is None):
            raise ValueError("set exactly one of ssm_parameter or secrets_manager")
        return self


class ServerConfig(_Strict):
    """Everything a server folder can set; every field has a safe default."""

    description: str = ""
    memory_mb: Annotated[int, Field(ge=128, le=10240)] = 512
    timeout_seconds: Annotated[
        int,
        Field(
            ge=1,
            le=LAMBDA_TIMEOUT_SECONDS,
            description="The function's timeout: under 29 s behind the HTTP API, up to 900 with stream_responses.",
        ),
    ] = 28
    stream_responses: bool = Field(
        default=False,
        description="Serve through a Lambda function URL that streams responses (progress and log messages "
        "reach the client while a tool runs) instead of the buffered HTTP API; see docs/infrastructure.md.",
    )
    architecture: Literal["arm64", "x86_64"] = "arm64"
    auth: Literal["none", "oauth"] = "none"
    stage: Literal["dev", "prod"] = "prod"
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:6274", "http://127.0.0.1:6274"],
        description="Browser origins allowed to call the server (the MCP Inspector's by default).",
    )
    session_ttl_seconds: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 24 * 3600
    session_cache_seconds: Annotated[
        int,
        Field(
            ge=0,
            le=300,
            description="How long every instance trusts a session after its opening (its id is signed), "
            "and an instance a session it has read; a DELETE on another instance reaches it within this "
            "time. 0: one DynamoDB read per request.",
        ),
    ] = 30
    request_state_ttl_seconds: Annotated[
        int,
        Field(
            ge=10,
            le=24 * 3600,
            description="How long a client has to answer what a tool asked (2026-07-28 elicitation, sampling, "
            "roots) before that round's sealed requestState is refused as expired.",
        ),
    ] = 600
    throttling: Throttling = Throttling()
    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653] = 30
    custom_domain: CustomDomain | None = None
    iam_statements: list[IamStatement] = Field(default_factory=list)
    environment: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    xray: bool = False
    reserved_concurrency: Annotated[int, Field(ge=1)] | None = None
    # Off by default: its snapshot cache costs ~$2 a month per 512 MB, a server used now and then does
    # not pay that back (README, "Decisions worth knowing").
    snapstart: bool = False
    dashboard: bool = Field(
        default=False, description="A CloudWatch dashboard ($3 a month beyond the account's first 3)."
    )
    point_in_time_recovery: bool = Field(
        default=True, description="DynamoDB continuous backups ($0.20 per GB-month of table size)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    oauth: OAuthSettings = OAuthSettings()
    permissions: Permissions = Permissions()
    alarms: Alarms = Alarms()
    deploy: bool = Field(
        default=True,
        description="false: a test fixture (servers/conformance); `make synth`/`cdk deploy` make no stack for it.",
    )

    @model_validator(mode="after")
    def _permissions_need_oauth(self) -> ServerConfig:
        if self.auth != "oauth" and "permissions" in self.model_fields_set:
            raise ValueError('the permissions table maps tools to OAuth scopes: it needs auth = "oauth"')
        if self.auth != "oauth" and self.oauth.required_group is not None:
            raise ValueError('oauth.required_group needs auth = "oauth"')
        return self

    @model_validator(mode="after")
    def _fits_the_front(self) -> ServerConfig:
        if (
            "p99_latency_ms" in self.alarms.model_fields_set
            and self.alarms.p99_latency_ms > self.timeout_seconds * 1000
        ):
            raise ValueError(
                f"alarms.p99_latency_ms = {self.alarms.p99_latency_ms} is longer than timeout_seconds = "
                f"{self.timeout_seconds}: no request can take that long, so the alarm could never fire"
            )
        if not self.stream_responses:
            if self.timeout_seconds >= API_GATEWAY_TIMEOUT_SECONDS:
                raise ValueError(
                    f"timeout_seconds = {self.timeout_seconds}: the HTTP API ends every request at "
                    f"{API_GATEWAY_TIMEOUT_SECONDS} s; use at most {API_GATEWAY_TIMEOUT_SECONDS - 1}, or set "
                    "stream_responses = true (a function URL, up to 900 s)"
                )
            return self
        # A function URL is not an API Gateway stage: these settings would have nothing to act on.
        unsupported = {
            "throttling": "a function URL has no request throttling; cap concurrency with reserved_concurrency",
            "custom_domain": "a function URL has no custom domain of its own (it needs CloudFront in front)",
            "snapstart": "the streaming runtime replaces the managed runtime, which SnapStart restores",
        }
        for name, why in unsupported.items():
            if name in self.model_fields_set and (name != "snapstart" or self.snapstart):
                raise ValueError(f"{name} cannot be used with stream_responses = true: {why}")
        return self

    @field_validator("allowed_origins")
    @classmethod
    def _origins_are_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin == "*" or not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com (no path, no '*')")
        return origins

    @field_validator("environment", "secrets")
    @classmethod
    def _env_names(cls, values: dict[str, object]) -> dict[str, object]:
        for key in values:
            if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key) or key.startswith(("AWS_", "MCPKIT_", "POWERTOOLS_")):
                raise ValueError(f"{key!r} must be UPPER_SNAKE_CASE and not start with AWS_, MCPKIT_ or POWERTOOLS_")
        return values


class ServerConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the field."""


class ServerFolder(BaseModel):
    """A server folder on disk with its validated config."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: Path
    config: ServerConfig

    @property
    def stack_name(self) -> str:
        return f"McpServer-{self.name}"

    def server_spec(self, root: Path) -> str:
        """The `MCPKIT_SERVER` value: `<path relative to root>/server.py:mcp`.

        In the Lambda zip the server always sits under the code root; locally (`mcpkit dev
        --servers-dir /elsewhere`) it may not, and the loader takes an absolute path as well.
        """
        module, root = (self.path / SERVER_FILE).resolve(), root.resolve()
        location = module.relative_to(root).as_posix() if module.is_relative_to(root) else module.as_posix()
        return f"{location}:{SERVER_ATTRIBUTE}"

    def runtime_environment(self, *, root: Path, table_name: str) -> dict[str, str]:
        """The environment the handler runs with, in Lambda and under `mcpkit dev` alike."""
        cfg = self.config
        env = {
            "MCPKIT_SERVER": self.server_spec(root),
            "MCPKIT_TABLE_NAME": table_name,
            "MCPKIT_AUTH_MODE": cfg.auth,
            "MCPKIT_ALLOWED_ORIGINS": json.dumps(cfg.allowed_origins),
            "MCPKIT_SESSION_TTL_SECONDS": str(cfg.session_ttl_seconds),
            "MCPKIT_SESSION_CACHE_SECONDS": str(cfg.session_cache_seconds),
            "MCPKIT_REQUEST_STATE_TTL_SECONDS": str(cfg.request_state_ttl_seconds),
            "MCPKIT_STREAM_RESPONSES": "true" if cfg.stream_responses else "false",
            "POWERTOOLS_SERVICE_NAME": self.name,
            "POWERTOOLS_METRICS_NAMESPACE": "McpKit",
        }
        if cfg.auth == "oauth":
            env["MCPKIT_PERMISSIONS"] = cfg.permissions.model_dump_json()
            if cfg.oauth.required_group is not None:
                env["MCPKIT_REQUIRED_GROUP"] = cfg.oauth.required_group
            if cfg.oauth.redirect_schemes:
                env["MCPKIT_REDIRECT_SCHEMES"] = json.dumps(cfg.oauth.redirect_schemes)
        if cfg.custom_domain is not None:
            env["MCPKIT_ALLOWED_HOSTS"] = json.dumps([cfg.custom_domain.domain_name])
        for key, ref in cfg.secrets.items():
            env[f"{key}_SSM_PARAMETER" if ref.ssm_parameter else f"{key}_SECRET_NAME"] = (
                ref.ssm_parameter or ref.secrets_manager or ""
            )
        env.update(cfg.environment)
        return env


def validate_server_name(name: str) -> str:
    if len(name) > SERVER_NAME_MAX or not SERVER_NAME_PATTERN.fullmatch(name):
        raise ServerConfigError(
            f"server name {name!r} must be lowercase letters and digits, optionally joined by single hyphens, "
            f"start with a letter and be at most {SERVER_NAME_MAX} characters (it becomes part of the stack name)"
        )
    return name


def load_server(path: Path) -> ServerFolder:
    """Load and validate one server folder; a bad folder raises `ServerConfigError` naming file and field."""
    name = validate_server_name(path.name)
    if not (path / SERVER_FILE).is_file():
        raise ServerConfigError(f"{path / SERVER_FILE}: missing; a server folder needs a server.py defining `mcp`")
    config_path = path / CONFIG_FILE
    raw: dict[str, object] = {}
    if config_path.is_file():
        try:
            raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            # Python 3.12's TOMLDecodeError has the position only in its message.
            found = re.search(r"^(?P<what>.*) \(at line (?P<line>\d+), column \d+\)$", str(exc))
            what, line = (found.group("what"), f":{found.group('line')}") if found else (str(exc), "")
            raise ServerConfigError(
                f'{config_path}{line}: not valid TOML: {what} (strings need quotes: key = "value")'
            ) from None
    try:
        config = ServerConfig.model_validate(raw)
    except ValidationError as exc:
        text = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
        problems = [_problem(config_path, text, err["loc"], err["msg"], err["type"]) for err in exc.errors()]
        raise ServerConfigError("\n".join(problems[:2])) from None
    return ServerFolder(name=name, path=path, config=config)


def _problem(config_path: Path, text: str, loc: tuple[int | str, ...], message: str, kind: str) -> str:
    """`file:line: field: what (how to fix)` for one validation error."""
    keys = [str(p) for p in loc if isinstance(p, str)]
    if not keys:
        # A rule across settings (e.g. the front's): point at the first setting its message names.
        message = message.removeprefix("Value error, ")
        named = (n.split(".") for n in re.findall(r"\b[a-z_]+(?:\.[a-z0-9_]+)*\b", message))
        keys = next((n for n in named if n[0] in ServerConfig.model_fields), [])
        loc = tuple(keys)
    dotted = ".".join(str(p) for p in loc) or "(file)"
    line = _line_of(text, keys)
    where = f"{config_path}:{line}" if line else str(config_path)
    if kind == "extra_forbidden":
        parent = ".".join(keys[:-1]) or "the top level"
        return f"{where}: {dotted}: unknown setting {keys[-1]!r} in {parent} (a typo? see docs/infrastructure.md)"
    return f"{where}: {dotted}: {message}"


def _line_of(text: str, keys: list[str]) -> int | None:
    """The line that sets the innermost of `keys` (as `key =` or in a `[table]` header), 1-based."""
    lines = text.splitlines()
    for key in reversed(keys):
        quoted = re.escape(key)
        pattern = re.compile(rf'^\s*(?:"{quoted}"|\'{quoted}\'|{quoted})\s*=|^\s*\[[^\]]*\b{quoted}\b[^\]]*\]')
        for number, line in enumerate(lines, 1):
            if pattern.search(line.split("#", 1)[0]):
                return number
    return None


def deployable(servers: list[ServerFolder]) -> list[ServerFolder]:
    """The servers that get a stack: all but test fixtures (`deploy = false`)."""
    return [s for s in servers if s.config.deploy]


def discover_servers(servers_dir: Path) -> list[ServerFolder]:
    """Every server folder (a folder with a server.py) below `servers_dir`, sorted by name."""
    if not servers_dir.is_dir():
        return []
    return [load_server(p) for p in sorted(servers_dir.iterdir()) if (p / SERVER_FILE).is_file()]
