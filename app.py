"""CDK entry point: one `McpServer-<name>` stack per folder in servers/ (see docs/infrastructure.md)."""

import sys
from pathlib import Path

from mcpkit.server_config import ServerConfigError, discover_servers
from stacks.application import build_app

ROOT = Path(__file__).resolve().parent

try:
    servers = discover_servers(ROOT / "servers")
except ServerConfigError as exc:
    sys.exit(f"mcpkit: {exc}")
build_app(ROOT, servers).synth()
