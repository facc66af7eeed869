"""Regression guard for the cold path and the per-request cost: operation counts, never times.

`make bench` measures milliseconds on whatever machine runs it; these tests pin down what makes
those milliseconds, so a later change cannot silently undo them:
- which modules `import handlers.lambda_handler` loads in a fresh interpreter (what Lambda's
  init phase pays for, and what lands in a SnapStart snapshot);
- how many DynamoDB calls each kind of request makes, through the real handler, per revision.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from handlers.settings import Settings
from mcpkit.messages import rpc
from tests.conftest import LAMBDA_ENV, ROOT, TEST_TABLE, Invoker, load_event, recording_dynamodb_calls
from tests.test_handler import HANDSHAKE_REVISIONS, initialize, modern, session_headers

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mcpkit.local_aws import EmbeddedAws

# Never imported by `import handlers.lambda_handler`: each belongs to a path that touches AWS or
# checks auth, and costs tens to hundreds of milliseconds on a cold start that may not need it.
# Not listed on purpose: the bare `botocore` package (Powertools imports it, ~1 ms, for its
# user-agent hook; the client machinery below is what costs) and `cryptography`'s symmetric
# ciphers (the SDK's `mcp.server.request_state` imports them, so the naive baseline pays them too).
FORBIDDEN_ON_COLD_PATH = (
    "boto3",
    "botocore.session",
    "botocore.client",
    "httpx",
    "jwt",
    "cryptography.x509",
    "cryptography.hazmat.primitives.asymmetric",
    # Settings read the environment themselves: pydantic-settings (with dotenv, argparse) was ~20 ms.
    "pydantic_settings",
    "dotenv",
)
# Ceilings, measured with the example server and a small margin. When a change legitimately
# raises one, run this file, read the counts in the failure message, check with `make bench` that
# `first_response_ms` still meets its target, and raise the ceiling in the same commit saying why.
# handlers.sdk_adapter and handlers.request_state import nothing at module level: each costs what handlers.errors costs.
MAX_OWN_MODULES = 16  # handlers.* and the server module: 16 today
MAX_TOTAL_MODULES = 750  # everything in sys.modules, interpreter and SDK included: 716 today

PROBE = """
import json, sys
import handlers.lambda_handler
print(json.dumps(sorted(sys.modules)))
"""


def _run_probe(probe: str, aws_environment: dict[str, str], *args: str) -> Any:
    """The JSON that `probe` prints last, run in a fresh interpreter with the deployed env shape."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPKIT_", "POWERTOOLS_", "AWS_"))}
    env.update({**LAMBDA_ENV, **aws_environment})
    result = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _modules_after(probe: str, aws_environment: dict[str, str]) -> list[str]:
    """`sys.modules` after `probe`."""
    modules: list[str] = _run_probe(probe, aws_environment)
    return modules


@pytest.fixture(scope="module")
def cold_modules() -> list[str]:
    # No DynamoDB endpoint and no credentials: an import that reached for AWS would show here too.
    return _modules_after(PROBE, {})


# A session request of a handshake revision on a fresh instance must read DynamoDB; what it loads
# for that is botocore's client, not boto3 (whose import pulls in s3transfer, ~90 ms).
SESSION_PROBE = """
import json, sys
from handlers.lambda_handler import lambda_app
lambda_app.runtime.table.call("get_item", Key={"pk": {"S": "SESSION#0"}, "sk": {"S": "META"}}, ConsistentRead=True)
print(json.dumps(sorted(sys.modules)))
"""


def test_first_dynamodb_call_loads_botocore_but_not_boto3(aws: EmbeddedAws) -> None:
    modules = _modules_after(SESSION_PROBE, {k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    assert _loaded(modules, "botocore.client")
    assert [name for name in ("boto3", "s3transfer") if _loaded(modules, name)] == []


# A second client of an instance (the after-restore rebuild, or KMS and Cognito beside DynamoDB
# for OAuth) must not re-list botocore's data directories: ~900 listings, 60-100 ms a client.
LOADER_PROBE = """
import json, os
from botocore.config import Config
from handlers.store import aws_client
aws_client("dynamodb", Config(region_name="us-east-1"))
listed = []
real_listdir = os.listdir
os.listdir = lambda path=".": listed.append(path) or real_listdir(path)
aws_client("dynamodb", Config(region_name="us-east-1"))
aws_client("kms", Config(region_name="us-east-1"))
print(json.dumps(listed))
"""


def test_later_aws_clients_reuse_what_the_first_one_loaded() -> None:
    result = subprocess.run(
        [sys.executable, "-c", LOADER_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    listed: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(listed) <= 2, f"{len(listed)} directory listings for two more clients"  # KMS's own versions


# The first request of a fresh instance, carrying the id of a session another instance opened
# seconds ago (the usual connect: `initialize` on one instance, the next requests on a new one).
# The event is built here, not by tests.conftest's Invoker: importing conftest loads httpx, a forbidden module.
FRESH_SESSION_PROBE = """
import json, sys
from pathlib import Path
import handlers.lambda_handler as module
from mcpkit.local_gateway import LambdaContext
event = json.loads(Path("tests/events/http_api_post_mcp.json").read_text())
event["body"] = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                            "params": {"name": "add", "arguments": {"a": 2, "b": 40}}})
event["headers"]["content-length"] = str(len(event["body"]))
event["headers"].update(json.loads(sys.argv[1]))
response = module.handler(event, LambdaContext())
print(json.dumps({"response": response, "modules": sorted(sys.modules)}))
"""


def test_a_fresh_instance_serves_a_just_opened_session_without_aws(aws: EmbeddedAws) -> None:
    from handlers.sessions import SessionStore
    from handlers.store import Table

    key = LAMBDA_ENV["MCPKIT_SESSION_KEY"].encode()
    session = SessionStore(Table(TEST_TABLE), Settings().session_ttl_seconds, 30, key=key).create("2025-11-25")
    # No endpoint and no credentials: reaching for DynamoDB would fail the request, not just show in the modules.
    probe = _run_probe(FRESH_SESSION_PROBE, {}, json.dumps(session_headers(session.id, "2025-11-25")))
    assert probe["response"]["statusCode"] == 200, probe["response"]
    assert json.loads(probe["response"]["body"])["result"]["structuredContent"] == {"result": 42}
    loaded = [name for name in FORBIDDEN_ON_COLD_PATH if _loaded(probe["modules"], name)]
    assert loaded == [], f"imported by the first request of a just-opened session: {loaded}"


def _loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(f"{name}.") for m in modules)


def test_cold_import_loads_none_of_the_forbidden_modules(cold_modules: list[str]) -> None:
    loaded = [name for name in FORBIDDEN_ON_COLD_PATH if _loaded(cold_modules, name)]
    assert loaded == [], f"imported on the cold path: {loaded}; import them inside the function that needs them"


def test_cold_import_stays_under_the_module_ceilings(cold_modules: list[str]) -> None:
    own = [m for m in cold_modules if m.split(".")[0] == "handlers" or m.startswith("mcpkit_server_")]
    assert len(own) <= MAX_OWN_MODULES, f"{len(own)} of our modules on the cold path: {own}"
    assert len(cold_modules) <= MAX_TOTAL_MODULES, f"{len(cold_modules)} modules on the cold path"


def _call(arguments: dict[str, Any]) -> dict[str, Any]:
    return rpc("tools/call", {"name": "add", "arguments": arguments})


@dataclass
class Instance:
    """Another Lambda instance of the same function: its own app, cache and DynamoDB client."""

    invoke: Invoker
    dynamodb_calls: list[str]
    runtime: Any


@pytest.fixture
def another_instance(lambda_module: Any) -> Iterator[Callable[..., Instance]]:
    with contextlib.ExitStack() as recordings:

        def build(**settings: Any) -> Instance:
            app = lambda_module.LambdaApp(Settings(**settings))  # the deployed environment, plus `settings`
            calls = recordings.enter_context(recording_dynamodb_calls(app.runtime.table.client))
            return Instance(Invoker(app, load_event("http_api_post_mcp")), calls, app.runtime)

        yield build


@pytest.mark.parametrize("version", HANDSHAKE_REVISIONS)
def test_handshake_revision_costs_at_most_one_dynamodb_read_per_instance_and_trust_window(
    invoke: Invoker, dynamodb_calls: list[str], another_instance: Callable[..., Instance], version: str
) -> None:
    # initialize opens the session: one conditional PutItem.
    session_id = initialize(invoke, version)
    assert dynamodb_calls == ["PutItem"]
    headers = session_headers(session_id, version)

    # Every later request of the session on the instance that opened it, notifications included:
    # no call at all while the instance trusts what it wrote (`session_cache_seconds`, 30 by default).
    requests = [rpc("notifications/initialized", id_=None), _call({"a": 1, "b": 2}), _call({"a": 3, "b": 4})]
    for message in requests:
        response = invoke(message, headers=headers)
        assert response["statusCode"] in {200, 202}, response
    assert dynamodb_calls == ["PutItem"]

    # On another instance, within the trust window after opening: none either, the signed id suffices.
    fresh = another_instance()
    for message in requests[1:]:
        assert fresh.invoke(message, headers=headers)["statusCode"] == 200
    assert fresh.dynamodb_calls == []

    # Past the window (here: an id it cannot verify), one read, then none (the expiry is only
    # written when it runs low, below).
    other = another_instance(session_key="another-session-key-of-at-least-32-characters")
    for message in requests[1:]:
        assert other.invoke(message, headers=headers)["statusCode"] == 200
    assert other.dynamodb_calls == ["GetItem"]


def test_session_ended_on_one_instance_is_404_there_at_once_and_elsewhere_within_the_trust_window(
    invoke: Invoker, another_instance: Callable[..., Instance]
) -> None:
    # GIVEN a session that another instance trusts for 1 s after its opening
    session_id = initialize(invoke, "2025-11-25")
    headers = session_headers(session_id, "2025-11-25")
    other = another_instance(session_cache_seconds=1)
    assert other.invoke(_call({"a": 1, "b": 1}), headers=headers)["statusCode"] == 200

    # WHEN the first instance ends it
    assert invoke(method="DELETE", headers=headers)["statusCode"] == 204

    # THEN the first instance answers 404 at once; the other serves it until its trust runs out
    assert invoke(_call({"a": 1, "b": 1}), headers=headers)["statusCode"] == 404
    assert other.invoke(_call({"a": 1, "b": 1}), headers=headers)["statusCode"] == 200
    time.sleep(1.1)
    assert other.invoke(_call({"a": 1, "b": 1}), headers=headers)["statusCode"] == 404
    # Trusted on its signature, read once the window ran out (and once more first if the clock's
    # second turned between opening and first use: the window counts whole seconds).
    assert other.dynamodb_calls in (["GetItem"], ["GetItem", "GetItem"])


def _expiry(runtime: Any, session_id: str) -> int:
    item = runtime.table.call(
        "get_item", Key={"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": "META"}}, ConsistentRead=True
    )["Item"]
    return int(item["ttl"]["N"])


def _set_expiry(runtime: Any, session_id: str, expiry: int) -> None:
    runtime.table.call(
        "update_item",
        Key={"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": "META"}},
        UpdateExpression="SET #ttl = :ttl",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={":ttl": {"N": str(expiry)}},
    )


def test_session_expiry_is_written_only_when_it_runs_low(
    invoke: Invoker, another_instance: Callable[..., Instance]
) -> None:
    # GIVEN a session, created with 1.5 idle lifetimes ahead of it, used on an instance that
    # trusts nothing it has read (so that each use below reads what the test wrote)
    ttl = Settings().session_ttl_seconds  # what the instance was built with (same environment)
    session_id = initialize(invoke, "2025-11-25")
    other = another_instance(session_cache_seconds=0)
    created = _expiry(other.runtime, session_id)
    assert created - time.time() > ttl
    headers = session_headers(session_id, "2025-11-25")
    calls = other.dynamodb_calls
    calls.clear()

    # WHEN it is used with more than one idle lifetime left: a read only, the expiry unchanged
    other.invoke(rpc("ping"), headers=headers)
    assert calls == ["GetItem"]
    assert _expiry(other.runtime, session_id) == created

    # WHEN it is used with less than one idle lifetime left: the read, then one conditional write
    _set_expiry(other.runtime, session_id, int(time.time()) + ttl // 3)
    calls.clear()
    assert other.invoke(rpc("ping"), headers=headers)["statusCode"] == 200
    assert calls == ["GetItem", "UpdateItem"]
    # THEN it is alive for at least another idle lifetime after this use
    assert _expiry(other.runtime, session_id) - time.time() >= ttl

    # AND an item past its expiry that DynamoDB's lazy sweep has not removed yet is already 404
    _set_expiry(other.runtime, session_id, int(time.time()) - 1)
    calls.clear()
    assert other.invoke(rpc("ping"), headers=headers)["statusCode"] == 404
    assert calls == ["GetItem"]


def test_modern_revision_costs_no_dynamodb_call(invoke: Invoker, dynamodb_calls: list[str]) -> None:
    for i in range(3):
        response = modern(invoke, "tools/call", {"name": "add", "arguments": {"a": i, "b": 1}})
        assert response["statusCode"] == 200, response
    assert dynamodb_calls == []


def test_request_without_a_session_id_costs_no_dynamodb_call(invoke: Invoker, dynamodb_calls: list[str]) -> None:
    # Clients that never echo Mcp-Session-Id (claude-ai-mcp #975) are served without a lookup.
    response = invoke(_call({"a": 1, "b": 1}), headers={"mcp-protocol-version": "2025-11-25"})
    assert response["statusCode"] == 200, response
    assert dynamodb_calls == []


def test_the_forbidden_list_really_detects_an_import(cold_modules: list[str]) -> None:
    # Guards the guard: the check works on sub-packages as well as on top-level names.
    assert _loaded([*cold_modules, "botocore.client"], "botocore.client")
    assert _loaded(["boto3.session"], "boto3")
    assert not _loaded(["botocore"], "botocore.client")
