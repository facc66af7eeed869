"""The load test's AWS side, in its own process: moto, and the fault proxy in front of it.

Kept out of the load generator's process so the emulator and the proxy do not compete with the
100 clients for one interpreter lock. Prints one JSON line with both endpoints, then obeys
commands on stdin, one per line: `rates <json>` (set fault rates), `counts` (print fault counts
as JSON), `quit`.
"""

from __future__ import annotations

import json
import sys

from mcpkit.fault_proxy import FaultProxy, FaultRates
from mcpkit.local_aws import EmbeddedAws


def main() -> None:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with EmbeddedAws() as aws, FaultProxy(aws.endpoint, seed=seed) as proxy:
        print(json.dumps({"moto": aws.endpoint, "proxy": proxy.endpoint}), flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "rates":
                proxy.set_rates(FaultRates(**json.loads(argument)))
                print(json.dumps({"ok": True}), flush=True)
            elif command == "counts":
                print(json.dumps(dict(proxy.counts())), flush=True)
            elif command == "quit":
                break


if __name__ == "__main__":
    main()
