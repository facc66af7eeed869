"""What a server costs while idle: every resource priced, the defaults within target, the README's table true."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel

from mcpkit.server_config import ServerConfig, ServerConfigError, load_server
from stacks import prices
from stacks.idle_cost import (
    README_END,
    README_START,
    UnpricedResourceError,
    estimate,
    kit_per_call_line,
    readme_block,
    replace_per_call_line,
    report,
    unpriced_types,
)
from tests.stacks.conftest import ROOT

if TYPE_CHECKING:
    from pathlib import Path

    from tests.stacks.conftest import Synth

README = ROOT / "README.md"
# The stacks the README's table is generated from, and what each one stands for.
README_STACKS = {
    "example": '`auth = "none"`, defaults (`servers/example`)',
    "tpl-notes": '`auth = "oauth"`, defaults (`server_templates/notes`)',
    "fixture-full": "every option on (a test fixture: OAuth Plus plan, 1024 MB, SnapStart, dashboard, alarms, X-Ray, "
    "custom domain, no point-in-time recovery)",
    "fixture-stream": '`stream_responses = true`, `auth = "none"`, defaults (a test fixture)',
    "fixture-stream-oauth": '`stream_responses = true`, `auth = "oauth"`, defaults (a test fixture)',
}
TARGET_NONE_USD = 0.10
TARGET_OAUTH_USD = 1.10


def _template(synth: Synth, server: str) -> dict[str, Any]:
    return synth.template(synth.servers[server].stack_name)


@pytest.mark.slow
def test_every_resource_of_every_stack_has_a_price(synth: Synth) -> None:
    templates = sorted(synth.outdir.glob("*.template.json"))
    assert len(templates) == len(synth.servers)
    for path in templates:
        template = json.loads(path.read_text(encoding="utf-8"))
        assert unpriced_types(template) == [], path.name
        assert estimate(template).charges


@pytest.mark.slow
def test_a_resource_added_without_a_price_stops_the_estimate(synth: Synth) -> None:
    template = _template(synth, "example")
    template["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    with pytest.raises(UnpricedResourceError, match=r"no price for AWS::SQS::Queue: add an entry to PRICED or FREE"):
        estimate(template)


@pytest.mark.slow
def test_every_server_with_the_cost_defaults_is_within_target(synth: Synth) -> None:
    checked = set()
    for name, server in synth.servers.items():
        cfg = server.config
        if cfg.snapstart or cfg.dashboard or cfg.alarms.enabled:
            continue
        idle = estimate(synth.template(server.stack_name)).usd_month
        assert idle <= (TARGET_OAUTH_USD if cfg.auth == "oauth" else TARGET_NONE_USD), (name, idle)
        checked.add(cfg.auth)
    assert checked == {"none", "oauth"}


@pytest.mark.slow
def test_each_option_costs_what_the_price_table_says(synth: Synth) -> None:
    default = estimate(_template(synth, "example"))
    assert {c.item for c in default.charges if c.usd_month > 0} == {
        "DynamoDB storage",
        "DynamoDB point-in-time recovery",
        "CloudWatch log storage",
    }
    full = estimate(_template(synth, "fixture-full"))
    by_item: dict[str, float] = {}
    for charge in full.charges:
        by_item[charge.item] = by_item.get(charge.item, 0.0) + charge.usd_month
    # fixture-full: 1024 MB with SnapStart, so one GB cached for the whole month.
    assert by_item["SnapStart snapshot cache, live version"] == pytest.approx(
        1.0 * prices.SNAPSTART_CACHE_USD_PER_GB_SECOND * 730 * 3600
    )
    assert by_item["CloudWatch dashboard"] == prices.CLOUDWATCH_DASHBOARD_USD_PER_MONTH
    assert by_item["CloudWatch alarm"] == pytest.approx(4 * prices.CLOUDWATCH_ALARM_METRIC_USD_PER_MONTH)
    assert by_item["KMS key (signs OAuth tokens)"] == prices.KMS_KEY_USD_PER_MONTH
    assert "DynamoDB point-in-time recovery" not in by_item
    # Within the free tiers the dashboard and the alarms are free; SnapStart and the key never are.
    assert full.usd_month_free_tier == pytest.approx(
        by_item["SnapStart snapshot cache, live version"] + prices.KMS_KEY_USD_PER_MONTH
    )


@pytest.mark.slow
def test_retained_versions_would_be_flagged(synth: Synth) -> None:
    """CDK's default keeps every published version; with SnapStart each keeps a billed snapshot."""
    template = _template(synth, "fixture-full")
    version = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Version")
    (cache,) = [c for c in estimate(template).charges if c.item.startswith("SnapStart")]
    assert "every deploy" not in cache.basis
    version["DeletionPolicy"] = version["UpdateReplacePolicy"] = "Retain"
    (cache,) = [c for c in estimate(template).charges if c.item.startswith("SnapStart")]
    assert "old versions are retained, so every deploy adds as much again" in cache.basis


@pytest.mark.slow
def test_readme_cost_table_is_generated_from_the_templates(synth: Synth) -> None:
    results = json.loads((ROOT / "bench" / "results.json").read_text(encoding="utf-8"))
    block = readme_block(
        ((label, _template(synth, name)) for name, label in README_STACKS.items()), kit_per_call_line(results)
    )
    text = README.read_text(encoding="utf-8")
    assert text.count(README_START) == 1
    assert text.count(README_END) == 1
    current = text[text.index(README_START) : text.index(README_END) + len(README_END)]
    if current != block and os.environ.get("MCPKIT_WRITE_README") == "1":
        README.write_text(text.replace(current, block), encoding="utf-8")
        current = block
    assert current == block, "README.md's cost table is stale: run MCPKIT_WRITE_README=1 pytest " + __file__


@pytest.mark.slow
def test_synth_prints_the_idle_estimate_of_each_stack(tmp_path: Path) -> None:
    """`make synth` runs `cdk synth`, which runs app.py: its stderr is what the user sees."""
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path / "out")}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stderr
    stacks = sorted(p.name.split(".")[0] for p in (tmp_path / "out").glob("*.template.json"))
    assert "McpServer-example" in stacks
    expected = report(
        (name, json.loads((tmp_path / "out" / f"{name}.template.json").read_text(encoding="utf-8"))) for name in stacks
    )
    assert expected in result.stderr
    for name in stacks:
        assert re.search(rf"^{name}: idle \$[0-9.]+ a month at us-east-1 list prices", result.stderr, re.MULTILINE)


def test_cost_options_default_to_the_cheapest_idle_server() -> None:
    cfg = ServerConfig()
    assert cfg.snapstart is False
    assert cfg.dashboard is False
    assert cfg.alarms.enabled is False
    assert cfg.point_in_time_recovery is True
    assert ServerConfig.model_validate({"alarms": {"topic_arn": "arn:aws:sns:us-east-1:1:a"}}).alarms.enabled


def test_alarm_thresholds_without_a_topic_are_refused_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "quiet"
    folder.mkdir()
    (folder / "server.py").write_text("mcp = None\n", encoding="utf-8")
    (folder / "mcpkit.toml").write_text("[alarms]\nerror_threshold = 2\n", encoding="utf-8")
    with pytest.raises(ServerConfigError) as raised:
        load_server(folder)
    message = str(raised.value)
    assert re.match(rf"{re.escape(str(folder / 'mcpkit.toml'))}(:\d+)?: alarms: ", message), message
    assert "error_threshold set but no topic_arn" in message
    assert "\n" not in message


def _field_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _field_names(annotation)
    return names


def test_every_config_field_is_documented() -> None:
    docs = (ROOT / "docs" / "infrastructure.md").read_text(encoding="utf-8")
    reference = docs[docs.index("## `mcpkit.toml` reference") : docs.index("## What the stack creates")]
    missing = sorted(
        n for n in _field_names(ServerConfig) if not re.search(rf"(^(# )?|[\[.]){n}\b", reference, re.MULTILINE)
    )
    assert missing == []


def test_make_bench_keeps_the_per_call_figure_current() -> None:
    """`make bench` (bench/report.py `update_cost_table`) rewrites the per-call line of the cost table."""
    results = json.loads((ROOT / "bench" / "results.json").read_text(encoding="utf-8"))
    kit = next(r for r in results["rows"] if r["subject"] == "kit-example" and r["revision"] == "2026-07-28")
    kit["usd_per_million_calls"] = 9.87
    results["machine"]["date"] = "2027-01-02 03:04 UTC"
    original = README.read_text(encoding="utf-8")
    changed = replace_per_call_line(original, kit_per_call_line(results))
    assert "Per call: $9.87 per million `tools/call` requests" in changed
    assert "from `make bench` of 2027-01-02 03:04 UTC" in changed
    # Only that line moved.
    assert [a for a, b in zip(original.splitlines(), changed.splitlines(), strict=True) if a != b] == [
        next(x for x in original.splitlines() if x.startswith("Per call: "))
    ]


def test_bench_prices_the_function_url_front_without_an_api_charge(monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench` prices a streaming subject with `front="function-url"`: Lambda alone, no $1.00 per million."""
    # bench/ is run from the checkout (`python -m bench`), not installed.
    monkeypatch.syspath_prepend(str(ROOT))
    from bench import costs

    durations, operations = [12_345.0, 20_000.0], {"GetItem/consistent": 1.0, "UpdateItem": 0.5}
    http_api = costs.usd_per_million(durations, operations, 300.0)
    function_url = costs.usd_per_million(durations, operations, 300.0, front="function-url")
    assert http_api - function_url == pytest.approx(1.00)
    assert costs.usd_per_million(durations, operations, 300.0, front="http-api") == http_api
    # A streamed response is free up to 6 MB; beyond, $0.008 per GB (GB = 2^30 bytes).
    six_mb = 6 * 1024 * 1024
    assert costs.usd_per_million(durations, operations, 300.0, front="function-url", response_bytes=six_mb) == (
        function_url
    )
    one_gb_more = costs.usd_per_million(
        durations, operations, 300.0, front="function-url", response_bytes=six_mb + 2**30
    )
    assert one_gb_more - function_url == pytest.approx(0.008 * 1_000_000)
    # The HTTP API buffers: no streaming price on its side, whatever the size.
    assert costs.usd_per_million(durations, operations, 300.0, response_bytes=six_mb + 2**30) == http_api
