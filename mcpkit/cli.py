"""The `mcpkit` command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

from mcpkit.server_config import ServerConfigError

if TYPE_CHECKING:
    from mcpkit.local_aws import LocalOAuth

app = typer.Typer(help="Serverless remote MCP servers on AWS Lambda.", no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Scaffold, run locally, check and connect MCP servers that deploy to AWS Lambda."""


@app.command()
def dev(
    name: Annotated[str | None, typer.Argument(help="Server folder under servers/ (default: example).")] = None,
    server: Annotated[str | None, typer.Option("--server", "-s", help="Same as NAME.")] = None,
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to listen on (env PORT).")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to bind; loopback by default.")] = "127.0.0.1",
    aws_endpoint: Annotated[
        str | None,
        typer.Option(help="Use this AWS emulator endpoint instead of starting an embedded one."),
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
) -> None:
    """Serve a server locally through the real Lambda handler, with DynamoDB emulated."""
    from mcpkit.dev import DevOptions, serve

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
    )

    def announce(url: str, oauth: LocalOAuth | None) -> None:
        console.print(f"[bold green]MCP server '{chosen}' ready at {url}[/]", highlight=False)
        console.print("  Inspector (UI):  npx @modelcontextprotocol/inspector  → Transport: Streamable HTTP, URL above")
        console.print(
            f"  Inspector (CLI): npx @modelcontextprotocol/inspector --cli {url} --transport http --method tools/list",
            highlight=False,
        )
        console.print(f"  Claude Code:     claude mcp add --transport http {chosen} {url}", highlight=False)
        if oauth is not None:
            console.print("  OAuth:           on; clients are sent to a local sign-in form (emulated user pool)")
            console.print(
                f"  Dev sign-in:     username {oauth.username}  password {oauth.password}",
                highlight=False,
                soft_wrap=True,
            )
        console.print("  Stop with Ctrl+C.")

    try:
        serve(options, announce)
    except ServerConfigError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def templates() -> None:
    """List the server templates that `mcpkit new --template` accepts."""
    from rich.table import Table

    from mcpkit.templates import TemplateError, list_templates

    try:
        found = list_templates()
    except TemplateError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    table = Table("template", "description", box=None, header_style="bold")
    for info in found:
        table.add_row(info.name, info.description)
    console.print(table)


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
    console.print(f"[bold green]Created {dest}[/] from template '{template}'. Next:", highlight=False, soft_wrap=True)
    dev_command = f"mcpkit dev {name}" + ("" if directory == Path("servers") else f" --servers-dir {directory}")
    for command in (dev_command, "make test", f"cdk deploy McpServer-{name}"):
        console.print(f"  {command}", highlight=False, soft_wrap=True)


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

    from mcpkit.connect import ConnectError, setups

    try:
        found = setups(url, name)
    except ConnectError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
    for setup in found:
        console.print(f"[bold]{setup.client}[/] ({setup.where})", highlight=False)
        console.print(escape(setup.snippet), highlight=False, soft_wrap=True)
        console.print()


def main() -> None:
    app()
