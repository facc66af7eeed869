"""`mcpkit connect URL`: ready-to-paste set-up for the MCP clients people use.

Each snippet is built as data first (argv lists, JSON objects) and only then rendered, so what
is printed is valid JSON / a shell-safe command by construction, and tests can check it as such.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

# Names as `claude mcp add` and the JSON configs accept them without quoting surprises.
NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class ConnectError(ValueError):
    """A URL or name that cannot be turned into client set-up; the message says why."""


class ClientSetup(BaseModel):
    model_config = ConfigDict(frozen=True)

    client: str
    where: str
    snippet: str
    language: str


def default_name(url: str) -> str:
    host = urlsplit(url).hostname or ""
    label = host.split(".")[0] if host and not host[0].isdigit() and host != "localhost" else "mcpkit-local"
    name = re.sub(r"[^A-Za-z0-9_-]", "-", label).strip("-") or "mcp-server"
    return name[:64]


def validate(url: str, name: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConnectError(f"{url!r} is not an http(s) URL; pass the server's /mcp URL (McpServerUrl output)")
    if not NAME_PATTERN.fullmatch(name):
        raise ConnectError(f"name {name!r}: use letters, digits, '-' and '_' (at most 64, starting alphanumeric)")


def claude_code_argv(name: str, url: str) -> list[str]:
    return ["claude", "mcp", "add", "--transport", "http", name, url]


def vscode_config(name: str, url: str) -> dict[str, Any]:
    return {"servers": {name: {"type": "http", "url": url}}}


def cursor_config(name: str, url: str) -> dict[str, Any]:
    return {"mcpServers": {name: {"url": url}}}


def inspector_cli_argv(url: str) -> list[str]:
    return ["npx", "@modelcontextprotocol/inspector", "--cli", url, "--transport", "http", "--method", "tools/list"]


def unreachable_from_the_cloud(url: str) -> bool:
    """A loopback or private address: only clients on this machine (or network) can reach it."""
    import ipaddress

    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified


def setups(url: str, name: str | None = None) -> list[ClientSetup]:
    name = name or default_name(url)
    validate(url, name)
    # Claude's connectors connect from Anthropic's cloud, even in the desktop app (support article 11503834).
    local = (
        [
            f"Claude cannot use this URL: {urlsplit(url).hostname} is only reachable from this machine or network, "
            "and Claude's connectors connect from Anthropic's cloud (the desktop app too). Deploy "
            "(make deploy SERVER=<name>) and use the https McpServerUrl, or use Claude Code, VS Code, Cursor or the "
            "Inspector below, which run here. With the deployed URL:",
        ]
        if unreachable_from_the_cloud(url)
        else []
    )
    claude = "\n".join(
        [
            *local,
            "1. Open Claude (claude.ai or the desktop app): Settings > Connectors > Add custom connector.",
            f"2. Name: {name}",
            f"3. Remote MCP server URL: {'the deployed https URL (McpServerUrl)' if local else url}",
            "4. Leave Advanced settings empty (the server registers Claude itself), then Add.",
            "5. Click Connect and sign in if the server asks you to; then enable it in a chat's tools menu.",
        ]
    )
    chatgpt = "\n".join(
        [
            "1. Open ChatGPT (chatgpt.com): Settings > Apps & Connectors > Advanced settings: turn on Developer mode.",
            "2. Back in Apps & Connectors: Create.",
            f"3. Name: {name}",
            f"4. MCP Server URL: {url}",
            "5. Authentication: OAuth. Leave client ID and secret empty (ChatGPT identifies itself with a metadata "
            "document and signs its token requests: private_key_jwt).",
            "6. Confirm you trust the app, Create, and sign in when the server asks; then pick it in a chat's tools.",
            "The URL must be public https: ChatGPT connects from OpenAI's servers, not from your machine.",
        ]
    )
    return [
        ClientSetup(client="Claude", where="custom connector", snippet=claude, language="text"),
        ClientSetup(client="ChatGPT", where="connector, developer mode", snippet=chatgpt, language="text"),
        ClientSetup(
            client="Claude Code", where="terminal", snippet=shlex.join(claude_code_argv(name, url)), language="bash"
        ),
        ClientSetup(
            client="VS Code",
            where=".vscode/mcp.json",
            snippet=json.dumps(vscode_config(name, url), indent=2),
            language="json",
        ),
        ClientSetup(
            client="Cursor",
            where="~/.cursor/mcp.json",
            snippet=json.dumps(cursor_config(name, url), indent=2),
            language="json",
        ),
        ClientSetup(
            client="MCP Inspector",
            where="terminal",
            snippet="\n".join(
                [
                    "npx @modelcontextprotocol/inspector   # UI: Transport 'Streamable HTTP', URL " + url,
                    shlex.join(inspector_cli_argv(url)),
                ]
            ),
            language="bash",
        ),
    ]
