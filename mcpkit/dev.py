"""`mcpkit dev`: run a server locally exactly as Lambda runs it, with AWS emulated in-process."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mcpkit import gateway_contract as contract
from mcpkit.local_aws import EmbeddedAws, LocalOAuth, endpoint_environment, ensure_oauth, ensure_table
from mcpkit.server_config import ServerConfigError, ServerFolder, load_server

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
        # The stack draws one at deploy; a local one per run (another run's ids are only read).
        "MCPKIT_SESSION_KEY": secrets.token_hex(32),
        **endpoint_environment(aws_endpoint),
    }
    return env


class DevDiscovery(BaseModel):
    """What a running `mcpkit dev` leaves for `mcpkit users/grants --dev`: where its emulator and data are."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    server: str
    server_path: str
    pid: int
    url: str
    aws_endpoint: str
    table_name: str
    user_pool_id: str | None = None
    required_group: str | None = None


class DevNotRunningError(Exception):
    """No live `mcpkit dev` for this server folder."""


def discovery_dir() -> Path:
    """A directory only this user can write: a file there decides which endpoint the CLI talks to."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    return base / f"mcpkit-dev-{uid}"


def discovery_path(folder: ServerFolder) -> Path:
    # Keyed by the folder's real path as well as its name: two checkouts may both run `example`.
    digest = hashlib.sha256(str(folder.path.resolve()).encode()).hexdigest()[:12]
    return discovery_dir() / f"{folder.name}-{digest}.json"


def write_discovery(folder: ServerFolder, record: DevDiscovery) -> Path:
    directory = discovery_dir()
    directory.mkdir(mode=0o700, exist_ok=True)
    path = discovery_path(folder)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(record.model_dump_json(indent=2), encoding="utf-8")
    # Readers never see half a file.
    partial.replace(path)
    return path


def remove_discovery(folder: ServerFolder, pid: int) -> None:
    """Remove the file if it is still this process's (another `mcpkit dev` of the same folder may own it now)."""
    path = discovery_path(folder)
    with contextlib.suppress(FileNotFoundError, ValidationError, ValueError):
        if DevDiscovery.model_validate_json(path.read_text(encoding="utf-8")).pid == pid:
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_discovery(folder: ServerFolder) -> DevDiscovery:
    """The running `mcpkit dev` of this folder; a file left by a killed one is removed and not trusted."""
    path = discovery_path(folder)
    not_running = DevNotRunningError(
        f"mcpkit dev is not running for {folder.name} (start it with: mcpkit dev {folder.name} --auth oauth)"
    )
    try:
        stat = path.stat()
        record = DevDiscovery.model_validate_json(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValidationError):
        raise not_running from None
    if hasattr(os, "getuid") and stat.st_uid != os.getuid():
        raise DevNotRunningError(f"{path} belongs to another user; not trusting it")
    if not _alive(record.pid):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise not_running
    return record


def serve(options: DevOptions, announce: Callable[[str, LocalOAuth | None], None]) -> None:
    """Serve until interrupted; `announce` receives the URL (and the dev sign-in) once requests are accepted."""
    import uvicorn

    from mcpkit.local_gateway import InstanceInitError, LambdaPool, LocalGateway

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
        try:
            instances = LambdaPool(options.instances, timeout_seconds=folder.config.timeout_seconds)
        except InstanceInitError as exc:
            raise ServerConfigError(f"{folder.path / 'server.py'}: the function's init phase failed: {exc}") from None
        gateway = LocalGateway(
            instances,
            routes=routes,
            allowed_origins=json.loads(os.environ["MCPKIT_ALLOWED_ORIGINS"]),
            domain_name=options.host,
            on_startup=lambda: announce(url, oauth),
        )
        record = DevDiscovery(
            server=folder.name,
            server_path=str(folder.path.resolve()),
            pid=os.getpid(),
            url=url,
            aws_endpoint=endpoint,
            table_name=LOCAL_TABLE,
            user_pool_id=oauth.user_pool_id if oauth is not None else None,
            required_group=folder.config.oauth.required_group if oauth is not None else None,
        )
        write_discovery(folder, record)
        try:
            with _on_sigterm(lambda: remove_discovery(folder, record.pid)):
                # proxy_headers off: the stand-in is the edge, like API Gateway, so no client's
                # X-Forwarded-Proto/-For may become the request's scheme or source address.
                uvicorn.run(
                    gateway,
                    host=options.host,
                    port=options.port,
                    log_level="warning",
                    lifespan="on",
                    proxy_headers=False,
                )
        finally:
            remove_discovery(folder, record.pid)


@contextlib.contextmanager
def _on_sigterm(cleanup: Callable[[], None]) -> Iterator[None]:
    """Run `cleanup` before SIGTERM ends the process.

    uvicorn shuts down gracefully on SIGTERM, then re-raises the signal against the handler that was
    there before it ran: by default that ends the process with no `finally` run. Ending it the same
    way here, after the cleanup, keeps the exit quick (stopping the emulator cleanly takes seconds).
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        cleanup()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _aws(endpoint: str | None) -> Iterator[str]:
    if endpoint is not None:
        yield endpoint
        return
    with EmbeddedAws() as aws:
        yield aws.endpoint
