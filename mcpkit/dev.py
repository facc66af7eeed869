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
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mcpkit import gateway_contract as contract
from mcpkit.dev_state import DevState, new_password, state_folder
from mcpkit.local_aws import EmbeddedAws, LocalOAuth, endpoint_environment, ensure_oauth, ensure_table
from mcpkit.server_config import ServerConfigError, ServerFolder, load_server

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mcpkit.local_gateway import Lambda, LambdaPool

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_TABLE = "mcpkit-local"
LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]"})  # noqa: S104 - names, not a bind
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
    # A change under the server's folder replaces the Lambda instances (fresh processes).
    reload: bool = True
    # Start with empty dev state (table, users, keys) instead of the one kept in `state_dir`.
    fresh: bool = False
    state_dir: Path | None = None  # default: <project>/.mcpkit/dev/<server>


def dev_environment(
    folder: ServerFolder,
    options: DevOptions,
    aws_endpoint: str,
    *,
    names: list[str] | None = None,
    session_key: str | None = None,
) -> dict[str, str]:
    """The deployed function's environment, adjusted only where a laptop differs from AWS."""
    env = folder.runtime_environment(root=PROJECT_ROOT, table_name=LOCAL_TABLE)
    served = names or LOOPBACK_HOSTS
    origins = [*folder.config.allowed_origins, *(f"http://{_url_host(h)}:{options.port}" for h in served)]
    hosts = [*json.loads(env.get("MCPKIT_ALLOWED_HOSTS", "[]")), *(_url_host(h) for h in served)]
    env |= {
        "MCPKIT_ALLOWED_ORIGINS": json.dumps(origins),
        "MCPKIT_ALLOWED_HOSTS": json.dumps(hosts),
        # EMF metrics are JSON lines on stdout; on a laptop they only bury the log.
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        # The stack draws one at deploy; locally it is kept with the dev state, so sessions survive a restart.
        "MCPKIT_SESSION_KEY": session_key or secrets.token_hex(32),
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
    # The dev user (the file is in a 0700 folder of this user's): `mcpkit token --dev` signs in with it.
    dev_username: str | None = None
    dev_password: str | None = None


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


class DevStartError(Exception):
    """`mcpkit dev` cannot start; str() is the one- or two-line reason and fix."""


def serve(options: DevOptions, announce: Callable[[DevReady], None], report: Callable[[str], None]) -> None:
    """Serve until interrupted; `announce` is called once requests are accepted, `report` for later news."""
    import uvicorn

    from mcpkit.diagnose import ServerProblemError, check_server
    from mcpkit.local_gateway import InstanceInitError, LocalGateway, plain_root_logging
    from mcpkit.ports import PortBusyError, bind
    from mcpkit.reload import ReloadingInstance

    folder_path = options.servers_dir / options.server
    try:
        folder = load_server(folder_path)
    except ServerConfigError as exc:
        raise DevStartError(str(exc)) from None
    # The port first: a busy one stops start-up before any emulator, state or discovery file is touched.
    try:
        sock = bind(options.host, options.port)
    except PortBusyError as exc:
        raise DevStartError(str(exc)) from None
    names = served_names(options.host)
    urls = [f"http://{_url_host(n)}:{options.port}/mcp" for n in names]

    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        state = _open_state(options, report) if options.aws_endpoint is None else None
        if state is not None:
            stack.callback(state.close)
        endpoint = stack.enter_context(_aws(options.aws_endpoint))
        if state is not None:
            problem = state.restore()
            if problem:
                report(problem)
        ensure_table(LOCAL_TABLE, endpoint)
        session_key = state.secret("session_key", lambda: secrets.token_hex(32)) if state else secrets.token_hex(32)
        os.environ.update(dev_environment(folder, options, endpoint, names=names, session_key=session_key))
        oauth: LocalOAuth | None = None
        routes = contract.MCP_ROUTES
        auth = options.auth or folder.config.auth
        if auth == "oauth":
            callback = f"{urls[0].removesuffix('/mcp')}/oauth/callback"
            password = state.secret("dev_password", new_password) if state else new_password()
            oauth = ensure_oauth(endpoint, options.server, callback, folder.config.oauth.required_group, password)
            os.environ.update({"MCPKIT_AUTH_MODE": "oauth", **oauth.environment()})
            routes = routes + contract.OAUTH_ROUTES + DEV_LOGIN_ROUTES
        elif options.auth == "none":
            os.environ["MCPKIT_AUTH_MODE"] = "none"
        if state is not None:
            state.autosave(report)

        instance: Lambda
        plain_root_logging()
        try:
            if options.reload:
                instance = ReloadingInstance(
                    lambda: _generation(options, endpoint, names, session_key, folder.config.stream_responses),
                    folder_path,
                    report,
                )
            else:
                check_server(folder_path, auth=auth)
                instance = _pool(folder, options.instances)
        except (InstanceInitError, ServerProblemError) as exc:
            raise DevStartError(str(exc)) from None
        origins = json.loads(os.environ["MCPKIT_ALLOWED_ORIGINS"])

        def on_startup() -> None:
            _started(folder, record, DevReady(urls, oauth, options.host), announce, report)

        gateway: LocalGateway
        if folder.config.stream_responses:
            from mcpkit.function_url import FunctionUrl

            # The deployed front is a function URL: every path reaches the function, no route table.
            gateway = FunctionUrl(
                instance, allowed_origins=origins, domain_name=names[0], served_names=names, on_startup=on_startup
            )
        else:
            gateway = LocalGateway(
                instance,
                routes=routes,
                allowed_origins=origins,
                domain_name=names[0],
                served_names=names,
                on_startup=on_startup,
            )
        record = DevDiscovery(
            server=folder.name,
            server_path=str(folder.path.resolve()),
            pid=os.getpid(),
            url=urls[0],
            aws_endpoint=endpoint,
            table_name=LOCAL_TABLE,
            user_pool_id=oauth.user_pool_id if oauth is not None else None,
            required_group=folder.config.oauth.required_group if oauth is not None else None,
            dev_username=oauth.username if oauth is not None else None,
            dev_password=oauth.password if oauth is not None else None,
        )
        # The discovery file is written once this process listens (on_startup), and removed only if it is ours.
        stack.callback(remove_discovery, folder, record.pid)

        def on_sigterm() -> None:
            if state is not None:
                state.close()
            remove_discovery(folder, record.pid)

        # proxy_headers off: the stand-in is the edge, like API Gateway, so no client's
        # X-Forwarded-Proto/-For may become the request's scheme or source address.
        server = uvicorn.Server(uvicorn.Config(gateway, log_level="warning", lifespan="on", proxy_headers=False))
        with _on_sigterm(on_sigterm):
            server.run(sockets=[sock])


@dataclass(frozen=True)
class DevReady:
    """What the banner prints: every URL the server answers on (the first is canonical) and the dev sign-in."""

    urls: list[str]
    oauth: LocalOAuth | None
    bind_host: str


def _started(
    folder: ServerFolder,
    record: DevDiscovery,
    ready: DevReady,
    announce: Callable[[DevReady], None],
    report: Callable[[str], None],
) -> None:
    try:
        other = read_discovery(folder)
    except DevNotRunningError:
        other = None
    if other is None or other.pid == record.pid:
        write_discovery(folder, record)
    else:
        # Another live `mcpkit dev` of this folder keeps its file: `mcpkit users/grants --dev` stay with it.
        report(f"another mcpkit dev of {folder.name} (pid {other.pid}, {other.url}) is what `--dev` commands reach")
    announce(ready)


def _open_state(options: DevOptions, report: Callable[[str], None]) -> DevState | None:
    state = DevState(options.state_dir or state_folder(options.servers_dir, options.server))
    if state.acquire(fresh=options.fresh):
        return state
    report(
        f"another mcpkit dev (pid {state.holder()}) uses {state.folder}; this one starts empty and keeps nothing "
        "(stop the other to share its state)"
    )
    return None


def _generation(
    options: DevOptions, endpoint: str, names: list[str], session_key: str, streaming: bool
) -> LambdaPool[Any]:
    """A new generation of instances from the folder as it is now (config re-read, as a deploy would)."""
    from mcpkit.local_gateway import InstanceInitError

    try:
        folder = load_server(options.servers_dir / options.server)
    except ServerConfigError as exc:
        raise InstanceInitError(str(exc)) from None
    if folder.config.stream_responses != streaming:
        # The front (HTTP API or function URL) is chosen at start, as a deploy replaces it.
        raise InstanceInitError(
            f"{folder.path / 'mcpkit.toml'}: stream_responses changed; restart mcpkit dev to serve the other front"
        )
    auth_mode = os.environ.get("MCPKIT_AUTH_MODE", "none")
    kept = {k: v for k, v in os.environ.items() if k.startswith(("MCPKIT_KMS", "MCPKIT_COGNITO", "MCPKIT_DEV_LOGIN"))}
    os.environ.update(dev_environment(folder, options, endpoint, names=names, session_key=session_key))
    os.environ.update({"MCPKIT_AUTH_MODE": auth_mode, **kept})
    if auth_mode != "oauth":
        os.environ.pop("MCPKIT_PERMISSIONS", None)
    return _pool(folder, options.instances)


def _pool(folder: ServerFolder, instances: int) -> LambdaPool[Any]:
    """The instances as the deployed front runs them: the managed runtime's buffered handler, or the
    kit's streaming Runtime API client (`stream_responses = true`)."""
    if folder.config.stream_responses:
        from mcpkit.function_url import streaming_pool

        return streaming_pool(instances, timeout_seconds=folder.config.timeout_seconds, server_dir=folder.path)
    from mcpkit.local_gateway import buffered_pool

    return buffered_pool(instances, timeout_seconds=folder.config.timeout_seconds, server_dir=folder.path)


def served_names(host: str) -> list[str]:
    """Host names the dev server answers to: the bound one, the loopback names, and with a wildcard bind
    the machine's own addresses (a request from the LAN names one of those)."""
    names = [host if host not in WILDCARD_HOSTS else "127.0.0.1"]
    for name in LOOPBACK_HOSTS:
        if name not in names:
            names.append(name)
    if host in WILDCARD_HOSTS:
        names += [a for a in machine_addresses() if a not in names]
    return names


def machine_addresses() -> list[str]:
    """This machine's non-loopback addresses (no packet is sent: a UDP connect only picks a route)."""
    import socket

    found: list[str] = []
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(str(info[4][0]))
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere
        found.append(str(probe.getsockname()[0]))
    return [a for a in dict.fromkeys(found) if not a.startswith("127.") and a != "0.0.0.0"]  # noqa: S104


def _url_host(name: str) -> str:
    return f"[{name.strip('[]')}]" if ":" in name else name


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
