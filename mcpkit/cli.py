"""The `mcpkit` command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

from mcpkit.server_config import ServerConfigError

if TYPE_CHECKING:
    from handlers.auth.state import GrantRecord
    from mcpkit.admin import AdminError, Target

app = typer.Typer(help="Serverless remote MCP servers on AWS Lambda.", no_args_is_help=True, add_completion=False)
# soft_wrap: a line is never broken at the terminal's (or a log file's assumed 80-column) width, so every
# URL, command and id prints whole and can be copied; tables are rendered as plain columns for the same reason.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"mcpkit {version('mcpkit')}")
        except PackageNotFoundError:
            typer.echo("mcpkit (not installed: run make dev)")
        raise typer.Exit


@app.callback()
def _root(
    _: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Scaffold, run locally, check and connect MCP servers that deploy to AWS Lambda."""


def plain_table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded with spaces, never truncated or wrapped: every cell (an id a later command needs) copies whole."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines)


@app.command()
def dev(
    name: Annotated[str | None, typer.Argument(help="Server folder under servers/ (default: example).")] = None,
    server: Annotated[str | None, typer.Option("--server", "-s", help="Same as NAME.")] = None,
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to listen on (env PORT).")] = 8000,
    host: Annotated[
        str, typer.Option(help="Interface to bind; loopback by default, 0.0.0.0 to answer the LAN too.")
    ] = "127.0.0.1",
    aws_endpoint: Annotated[
        str | None,
        typer.Option(help="Use this AWS emulator endpoint instead of starting an embedded one (its state is its own)."),
    ] = None,
    servers_dir: Annotated[Path, typer.Option(help="Folder that holds the server folders.")] = Path("servers"),
    auth: Annotated[
        str | None,
        typer.Option(help="Override the server's auth: 'oauth' (sign-in, tokens) or 'none'."),
    ] = None,
    instances: Annotated[
        int,
        typer.Option(min=1, max=64, help="Warm Lambda instances (processes) serving requests concurrently."),
    ] = 1,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload/--no-reload",
            help="Replace the Lambda instances when a file under the server's folder changes; emulated AWS stays.",
        ),
    ] = True,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start with empty dev state: no table items, users, grants or keys.")
    ] = False,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where the dev state is kept between runs (default: .mcpkit/dev/NAME, git-ignored)."),
    ] = None,
) -> None:
    """Serve a server locally through the real Lambda handler, with AWS emulated; state is kept between runs."""
    from mcpkit.dev import DevOptions, DevReady, DevStartError, serve

    chosen = name or server or "example"
    if auth not in {None, "none", "oauth"}:
        err.print(f"[red]error:[/] --auth must be 'oauth' or 'none', not {auth!r}")
        raise typer.Exit(2)
    auth_mode: Literal["none", "oauth"] | None = "oauth" if auth == "oauth" else "none" if auth == "none" else None
    options = DevOptions(
        server=chosen,
        host=host,
        port=port,
        aws_endpoint=aws_endpoint,
        servers_dir=servers_dir.resolve(),
        auth=auth_mode,
        instances=instances,
        reload=reload,
        fresh=fresh,
        state_dir=state_dir.resolve() if state_dir is not None else None,
    )

    def announce(ready: DevReady) -> None:
        from mcpkit.banner import banner_lines

        for line in banner_lines(chosen, ready, reload=reload):
            console.print(line, highlight=False, markup=False)

    def report(message: str) -> None:
        err.print(message, highlight=False, markup=False)

    try:
        serve(options, announce, report)
    except DevStartError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None


@app.command()
def templates() -> None:
    """List the server templates that `mcpkit new --template` accepts."""
    from mcpkit.templates import TemplateError, list_templates

    try:
        found = list_templates()
    except TemplateError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    typer.echo(plain_table(["template", "description"], [[i.name, i.description] for i in found]))


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="Server name: lowercase letters, digits, single hyphens.")],
    template: Annotated[str, typer.Option("--template", "-t", help="Template name (see `mcpkit templates`).")] = (
        "minimal"
    ),
    directory: Annotated[Path, typer.Option("--dir", help="Folder that holds the server folders.")] = Path("servers"),
    description: Annotated[str | None, typer.Option(help="One-line description of the server.")] = None,
) -> None:
    """Create servers/NAME from a template; never overwrites an existing folder."""
    from mcpkit.templates import TemplateError, render

    try:
        dest = render(template, name, directory / name, description=description)
    except (TemplateError, ServerConfigError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    console.print(
        f"[bold green]Created {dest}[/] from template '{template}'. Next, from the repository root:",
        highlight=False,
    )
    # Each runs as printed from the repository root, venv activated or not (README "Two commands").
    in_servers = directory == Path("servers")
    dev_command = f".venv/bin/mcpkit dev {name}" + ("" if in_servers else f" --servers-dir {directory}")
    test_command = f"make test SERVER={name}" if in_servers else f".venv/bin/pytest {directory / name / 'tests'}"
    for command in (dev_command, test_command, f"make deploy SERVER={name}"):
        console.print(f"  {command}", highlight=False, markup=False)


@app.command()
def check(
    url: Annotated[str, typer.Argument(help="The server's MCP URL, e.g. https://…/mcp or http://127.0.0.1:8000/mcp.")],
    token: Annotated[
        str | None, typer.Option(help="An access token: also lists the tools as a signed-in client.")
    ] = None,
    origin: Annotated[str, typer.Option(help="Browser origin for the CORS checks (MCP Inspector's by default).")] = (
        "http://localhost:6274"
    ),
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each request.")] = 10.0,
) -> None:
    """Check a URL the way Claude's custom-connector dialog does; exit 0 only if a connector would connect."""
    from mcpkit.check import print_report, run_check

    with err.status(f"Checking {url} …"):
        report = run_check(url, token=token, origin=origin, timeout=timeout)
    print_report(report, console)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def connect(
    url: Annotated[str, typer.Argument(help="The server's MCP URL (the McpServerUrl stack output).")],
    name: Annotated[str | None, typer.Option(help="Name the clients show (default: from the host).")] = None,
) -> None:
    """Print ready-to-paste set-up for Claude, Claude Code, VS Code, Cursor and the MCP Inspector."""
    from rich.markup import escape

    from mcpkit.connect import ConnectError, setups, unreachable_from_the_cloud

    try:
        found = setups(url, name)
    except ConnectError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
    if unreachable_from_the_cloud(url):
        err.print(
            f"warning: {url} is reachable only from this machine or network: claude.ai (and Claude Desktop) "
            "cannot connect to it; the other clients below run here and can.",
            highlight=False,
            markup=False,
        )
    for setup in found:
        console.print(f"[bold]{setup.client}[/] ({setup.where})", highlight=False)
        console.print(escape(setup.snippet), highlight=False, soft_wrap=True)
        console.print()


@app.command()
def token(
    url: Annotated[
        str | None, typer.Argument(help="The server's MCP URL (deployed: the browser flow). Omit with --dev.")
    ] = None,
    dev: Annotated[
        bool, typer.Option("--dev", help="The running `mcpkit dev`: sign the dev user in, no browser.")
    ] = False,
    server: Annotated[
        str | None, typer.Option("--server", "-s", help="With --dev: the server (default: the one running).")
    ] = None,
    servers_dir: Annotated[Path, typer.Option(help="Folder that holds the server folders.")] = Path("servers"),
    scope: Annotated[
        list[str] | None,
        typer.Option(help="A scope to ask for (repeatable); default: what the server's 401 names, else all it lists."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The whole token response (with the refresh token).")] = False,
) -> None:
    """Sign in through the real OAuth flow and print an access token (for curl, scripts, `check --token`)."""
    import json

    from mcpkit.token import TokenError, browser_token, dev_token

    try:
        if dev:
            from mcpkit.admin import AdminError, choose_server
            from mcpkit.dev import DevNotRunningError, read_discovery

            try:
                found = read_discovery(choose_server(servers_dir, server, dev=True))
            except (AdminError, DevNotRunningError) as exc:
                err.print(f"error: {exc}", highlight=False, markup=False)
                raise typer.Exit(1) from None
            if found.dev_username is None or found.dev_password is None:
                err.print(f"error: {found.url} does not use OAuth (start it with --auth oauth)", markup=False)
                raise typer.Exit(1)
            response = dev_token(url or found.url, found.dev_username, found.dev_password, scope or None)
        elif url is None:
            err.print("error: give the server's URL, or --dev for the running `mcpkit dev`", markup=False)
            raise typer.Exit(2)
        else:
            response = browser_token(url, scope or None)
    except TokenError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(response, indent=2) if as_json else response["access_token"])


@app.command()
def validate(
    names: Annotated[list[str] | None, typer.Argument(help="Server folders (default: every one in servers/).")] = None,
    servers_dir: Annotated[Path, typer.Option(help="Folder that holds the server folders.")] = Path("servers"),
) -> None:
    """Load each server as Lambda's init phase would (config, server.py, [permissions]); one line per mistake."""
    from mcpkit.diagnose import ServerProblemError, check_server
    from mcpkit.server_config import SERVER_FILE

    folders = (
        [servers_dir / n for n in names]
        if names
        else sorted(p for p in servers_dir.iterdir() if (p / SERVER_FILE).is_file())
    )
    failed = False
    for folder in folders:
        try:
            check_server(folder)
        except ServerProblemError as exc:
            err.print(f"error: {exc}", highlight=False, markup=False)
            failed = True
    if failed:
        raise typer.Exit(2)


users_app = typer.Typer(help="Who may sign in: the server's Cognito user pool.", no_args_is_help=True)
grants_app = typer.Typer(help="What each person allowed which client; revoke it.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(grants_app, name="grants")

ServerOption = Annotated[
    str | None,
    typer.Option("--server", "-s", help="Server folder (default: the one server using OAuth, or running in dev)."),
]
ServersDirOption = Annotated[Path, typer.Option(help="Folder that holds the server folders.")]
DevOption = Annotated[bool, typer.Option("--dev", help="The running `mcpkit dev` instead of the deployed stack.")]
RegionOption = Annotated[str | None, typer.Option(help="AWS region of the stack (default: AWS_REGION / profile).")]


def _target(server: str | None, servers_dir: Path, dev: bool, region: str | None) -> Target:
    from mcpkit.admin import choose_server, connect

    return connect(choose_server(servers_dir, server, dev=dev), dev=dev, region=region)


def _fail(exc: AdminError) -> typer.Exit:
    from rich.markup import escape

    err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(exc.code)


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Argument(help="The person's email address; it is their sign-in name.")],
    group: Annotated[
        str | None,
        typer.Option(help="Also add them to this Cognito group (created if missing); the required group is implied."),
    ] = None,
    server: ServerOption = None,
    servers_dir: ServersDirOption = Path("servers"),
    dev: DevOption = False,
    region: RegionOption = None,
) -> None:
    """Invite a person: Cognito emails them a temporary password (in dev: a password is printed)."""
    from rich.markup import escape

    from mcpkit.admin import AdminError, add_user

    try:
        target = _target(server, servers_dir, dev, region)
        added = add_user(target, email, group)
    except AdminError as exc:
        raise _fail(exc) from exc
    where = escape(target.where)
    if added.existed:
        console.print(f"{escape(email)} was already a user of {where}.", highlight=False)
    elif added.password is not None:
        console.print(f"[bold green]Added {escape(email)}[/] to {where}.", highlight=False)
        console.print(f"  Dev sign-in:  username {escape(email)}  password {added.password}", highlight=False)
    else:
        console.print(
            f"[bold green]Invited {escape(email)}[/] to {where}: Cognito emails them a temporary password, "
            "valid for 3 days; they choose their own at first sign-in.",
            highlight=False,
            soft_wrap=True,
        )
    for name in added.groups:
        created = " (group created)" if name in added.created_groups else ""
        required = " (required to sign in)" if name == target.required_group else ""
        console.print(f"  Group:        {escape(name)}{required}{created}", highlight=False)
    console.print(f"  Subject:      {added.subject}", highlight=False)


@users_app.command("list")
def users_list(
    server: ServerOption = None,
    servers_dir: ServersDirOption = Path("servers"),
    dev: DevOption = False,
    region: RegionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines for scripts.")] = False,
) -> None:
    """Every account in the server's user pool, with its status and groups."""
    import json

    from mcpkit.admin import AdminError, list_users

    try:
        users = list_users(_target(server, servers_dir, dev, region))
    except AdminError as exc:
        raise _fail(exc) from exc
    if as_json:
        rows = [
            {
                "email": u.email,
                "subject": u.subject,
                "status": u.status,
                "enabled": u.enabled,
                "groups": list(u.groups),
                "created": u.created.isoformat() if u.created else None,
            }
            for u in users
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table_rows = [
        [
            u.email or "",
            u.status if u.enabled else f"{u.status} (disabled)",
            ",".join(u.groups),
            u.created.strftime("%Y-%m-%d") if u.created else "",
            u.subject,
        ]
        for u in users
    ]
    typer.echo(plain_table(["email", "status", "groups", "created", "subject"], table_rows))


@users_app.command("remove")
def users_remove(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    server: ServerOption = None,
    servers_dir: ServersDirOption = Path("servers"),
    dev: DevOption = False,
    region: RegionOption = None,
) -> None:
    """Delete an account and revoke every grant it gave."""
    from rich.markup import escape

    from mcpkit.admin import AdminError, access_token_minutes, remove_user

    try:
        target = _target(server, servers_dir, dev, region)
        _, revoked = remove_user(target, email)
    except AdminError as exc:
        raise _fail(exc) from exc
    console.print(f"[bold]Removed {escape(email)}[/] from {escape(target.where)}.", highlight=False)
    _print_revoked(revoked, access_token_minutes())


@grants_app.command("list")
def grants_list(
    user: Annotated[str | None, typer.Option(help="Only this person's grants (email or subject).")] = None,
    server: ServerOption = None,
    servers_dir: ServersDirOption = Path("servers"),
    dev: DevOption = False,
    region: RegionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts.")] = False,
) -> None:
    """Every live grant: who allowed which client what, first and last use (UTC)."""
    import json

    from rich.markup import escape

    from mcpkit.admin import AdminError, grant_json, human_time, list_grants

    try:
        target = _target(server, servers_dir, dev, region)
        grants = list_grants(target, user)
    except AdminError as exc:
        raise _fail(exc) from exc
    if as_json:
        typer.echo(json.dumps([grant_json(g) for g in grants], indent=2))
        return
    if not grants:
        console.print(f"No grants in {escape(target.where)}.", highlight=False)
        return
    rows = [
        [
            g.email or g.subject,
            g.client_name or "(unnamed)",
            " ".join(g.scopes),
            human_time(g.first_used),
            human_time(g.last_used),
            g.client_id,
        ]
        for g in grants
    ]
    # The client id last: it is what `grants revoke --client` takes, and the longest (a CIMD URL).
    typer.echo(plain_table(["user", "client", "scopes", "first use", "last use", "client id"], rows))


@grants_app.command("revoke")
def grants_revoke(
    user: Annotated[str, typer.Option(help="The person (email or subject).")],
    client: Annotated[str | None, typer.Option(help="The client id (see `mcpkit grants list`).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every client this person allowed.")] = False,
    server: ServerOption = None,
    servers_dir: ServersDirOption = Path("servers"),
    dev: DevOption = False,
    region: RegionOption = None,
) -> None:
    """End a grant: its refresh tokens stop at once, its access tokens when they expire (15 minutes at most)."""
    from mcpkit.admin import AdminError, access_token_minutes, revoke

    try:
        target = _target(server, servers_dir, dev, region)
        revoked = revoke(target, user, client, every=every)
    except AdminError as exc:
        raise _fail(exc) from exc
    _print_revoked(revoked, access_token_minutes())


def _print_revoked(revoked: list[GrantRecord], minutes: int) -> None:
    from rich.markup import escape

    from mcpkit.admin import human_time

    if not revoked:
        console.print("No grants to revoke.")
        return
    for g in revoked:
        console.print(
            f"Revoked: {escape(g.email or g.subject)} → {escape(g.client_name or '(unnamed)')} "
            f"({escape(g.client_id)}), scopes {escape(' '.join(g.scopes))}, last used {human_time(g.last_used)}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"Refresh tokens of {'this grant' if len(revoked) == 1 else 'these grants'} stopped working now; "
        f"access tokens already issued stay valid until they expire, within {minutes} minutes "
        "(the server's access-token lifetime).",
        highlight=False,
        soft_wrap=True,
    )


def main() -> None:
    app()
