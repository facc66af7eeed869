"""`mcpkit dev`: run a server locally exactly as Lambda runs it, with AWS emulated in-process."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mcpkit import gateway_contract as contract
from mcpkit.local_aws import EmbeddedAws, LocalOAuth, endpoint_environment, ensure_oauth, ensure_table
from mcpkit.server_config import ServerFolder, load_server

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_TABLE = "mcpkit-local"
LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
# Only `mcpkit dev` routes the sign-in form; the deployed API has no such route (gateway_contract).
DEV_LOGIN_ROUTES: tuple[tuple[str, str], ...] = (("GET", "/oauth/dev-login"), ("POST", "/oauth/dev-login"))


@dataclass(frozen=True)
class DevOptions:
    server: str = "example"
    host: str = "127.0.0.1"
    port: int = 8000
    aws_endpoint: str | None = None  # an already-running emulator (another `mcpkit dev`, DynamoDB Local)
    servers_dir: Path = PROJECT_ROOT / "servers"
    auth: Literal["none", "oauth"] | None = None  # overrides the server's mcpkit.toml
    # Warm Lambda instances (processes) behind the gateway; more than one lets requests run concurrently.
    instances: int = 1


def dev_environment(folder: ServerFolder, options: DevOptions, aws_endpoint: str) -> dict[str, str]:
    """The deployed function's environment, adjusted only where a laptop differs from AWS."""
    env = folder.runtime_environment(root=PROJECT_ROOT, table_name=LOCAL_TABLE)
    origins = [*folder.config.allowed_origins, *(f"http://{h}:{options.port}" for h in LOOPBACK_HOSTS)]
    hosts = [*json.loads(env.get("MCPKIT_ALLOWED_HOSTS", "[]")), *LOOPBACK_HOSTS]
    env |= {
        "MCPKIT_ALLOWED_ORIGINS": json.dumps(origins),
        "MCPKIT_ALLOWED_HOSTS": json.dumps(hosts),
        # EMF metrics are JSON lines on stdout; on a laptop they only bury the log.
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        **endpoint_environment(aws_endpoint),
    }
    return env


def serve(options: DevOptions, announce: Callable[[str, LocalOAuth | None], None]) -> None:
    """Serve until interrupted; `announce` receives the URL (and the dev sign-in) once requests are accepted."""
    import uvicorn

    from mcpkit.local_gateway import LambdaInstance, LambdaPool, LocalGateway

    folder = load_server(options.servers_dir / options.server)
    url = f"http://{options.host}:{options.port}/mcp"

    with _aws(options.aws_endpoint) as endpoint:
        ensure_table(LOCAL_TABLE, endpoint)
        os.environ.update(dev_environment(folder, options, endpoint))
        oauth: LocalOAuth | None = None
        routes = contract.MCP_ROUTES
        if (options.auth or folder.config.auth) == "oauth":
            callback = f"http://{options.host}:{options.port}/oauth/callback"
            oauth = ensure_oauth(endpoint, options.server, callback, folder.config.oauth.required_group)
            os.environ.update({"MCPKIT_AUTH_MODE": "oauth", **oauth.environment()})
            routes = routes + contract.OAUTH_ROUTES + DEV_LOGIN_ROUTES
        elif options.auth == "none":
            os.environ["MCPKIT_AUTH_MODE"] = "none"
        instance = LambdaInstance() if options.instances <= 1 else LambdaPool(options.instances)
        gateway = LocalGateway(
            instance,
            routes=routes,
            allowed_origins=json.loads(os.environ["MCPKIT_ALLOWED_ORIGINS"]),
            domain_name=options.host,
            on_startup=lambda: announce(url, oauth),
        )
        uvicorn.run(gateway, host=options.host, port=options.port, log_level="warning", lifespan="on")


@contextlib.contextmanager
def _aws(endpoint: str | None) -> Iterator[str]:
    if endpoint is not None:
        yield endpoint
        return
    with EmbeddedAws() as aws:
        yield aws.endpoint
