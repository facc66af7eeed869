"""What `mcpkit dev` prints once it listens: every line is copyable and runs as printed from the repo root."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcpkit.dev import DevReady


def banner_lines(name: str, ready: DevReady, *, reload: bool) -> list[str]:
    url = ready.urls[0]
    lines = [f"MCP server '{name}' ready at {url}"]
    if ready.bind_host in {"0.0.0.0", "::", "[::]"}:  # noqa: S104 - comparing names
        lan = [u for u in ready.urls[1:] if "localhost" not in u and "127.0.0.1" not in u and "[::1]" not in u]
        for other in lan:
            lines.append(f"  Also on the LAN:  {other}")
        if not lan:
            lines.append("  Also on the LAN:  no non-loopback address found on this machine")
    inspector = ["make", "inspector", f"ARGS=--cli {url} --transport http --method tools/list"]
    lines.append("  Inspector (UI):  make inspector   → Transport: Streamable HTTP, URL above")
    if ready.oauth is None:
        lines.append(f"  Inspector (CLI): {shlex.join(inspector)}")
    else:
        token = "Authorization: Bearer $(.venv/bin/mcpkit token --dev --server " + name + ")"
        with_token = f"ARGS=--cli {url} --transport http --method tools/list --header '{token}'"
        lines.append(f'  Inspector (CLI): make inspector "{with_token}"')
        lines.append("                   (the token comes from the dev sign-in; without it the CLI needs a terminal)")
    lines.append(f"  Claude Code:     claude mcp add --transport http {name} {url}")
    if ready.oauth is not None:
        lines.append("  OAuth:           on; clients are sent to a local sign-in form (emulated user pool)")
        lines.append(f"  Dev sign-in:     username {ready.oauth.username}  password {ready.oauth.password}")
        lines.append(f"  Access token:    .venv/bin/mcpkit token --dev --server {name}")
    lines.append(
        "  Reload:          on: saving a file under the server's folder replaces the Lambda instance"
        if reload
        else "  Reload:          off (--no-reload): restart to pick up changes"
    )
    lines.append("  Stop with Ctrl+C; the dev state (.mcpkit/dev/) is kept for the next run (--fresh: start empty).")
    return lines
