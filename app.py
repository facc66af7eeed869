"""CDK entry point: one `McpServer-<name>` stack per folder in servers/ (see docs/infrastructure.md).

After synth it prints what each stack costs a month while idle (`stacks/idle_cost.py`), so
`make synth`, `cdk diff` and `cdk deploy` show the bill before it comes.
"""

import sys
from pathlib import Path

from mcpkit.server_config import ServerConfigError, deployable, discover_servers
from stacks.application import build_app
from stacks.github_deploy import GitHubContextError
from stacks.idle_cost import UnpricedResourceError, report

ROOT = Path(__file__).resolve().parent

try:
    # Test fixtures (servers/conformance: `deploy = false`) are served by tests, never deployed.
    app = build_app(ROOT, deployable(discover_servers(ROOT / "servers")))
except (ServerConfigError, GitHubContextError) as exc:
    sys.exit(f"mcpkit: {exc}")
assembly = app.synth()
try:
    print(report((stack.stack_name, stack.template) for stack in assembly.stacks), file=sys.stderr)
except UnpricedResourceError as exc:
    sys.exit(f"mcpkit: {exc}")
