"""CDK entry point: one `McpServer-<name>` stack per folder in servers/ (see docs/infrastructure.md)."""

import sys
from pathlib import Path

from mcpkit.server_config import ServerConfigError, deployable, discover_servers
from stacks.application import build_app

ROOT = Path(__file__).resolve().parent

try:
    # Test fixtures (servers/conformance: `deploy = false`) are served by tests, never deployed.
    servers = deployable(discover_servers(ROOT / "servers"))
except ServerConfigError as exc:
    sys.exit(f"mcpkit: {exc}")
build_app(ROOT, servers).synth()
