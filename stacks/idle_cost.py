"""What a synthesized stack costs a month while nobody uses it, resource by resource.

Priced from the template itself, so the figure is for exactly what would be deployed. Every
resource type must have an entry here, free ones included with the reason they are free: a
resource added to the stack without a price stops the estimate (and `make synth`, and the tests)
instead of quietly costing money. Unit prices are `stacks/prices.py`.

Storage is priced at `IDLE_STORED_GB` per table and per log group: an idle server's table holds a
few expired-soon sessions and registered clients, and its logs only what earlier traffic left
within the retention period. The figures are list prices; the account-wide free tiers (first 3
dashboards, first 10 alarm metrics, 25 GB of DynamoDB, 5 GB of logs, 10,000 Cognito MAU) are shown
apart, since whether they are left depends on everything else in the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from mcpkit.messages import MODERN
from stacks import prices

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

Resource = dict[str, Any]
Template = dict[str, Any]

IDLE_STORED_GB: Final = 0.01


@dataclass(frozen=True)
class Charge:
    """One priced line: what, how much a month at list price, and what the free tier changes."""

    logical_id: str
    resource_type: str
    item: str
    usd_month: float
    basis: str
    # What this line costs while the account's free tier for it lasts (0 when the free tier covers it).
    usd_month_free_tier: float
    free_tier: str = ""
    # The mcpkit.toml setting that brings this line, for the README's table.
    when: str = "always"


@dataclass(frozen=True)
class Estimate:
    charges: tuple[Charge, ...]

    @property
    def usd_month(self) -> float:
        return sum(c.usd_month for c in self.charges)

    @property
    def usd_month_free_tier(self) -> float:
        return sum(c.usd_month_free_tier for c in self.charges)


class UnpricedResourceError(ValueError):
    """The template holds a resource type with no entry in `PRICED` or `FREE`."""


# Resource types with no monthly charge of their own, and why.
FREE: Final[dict[str, str]] = {
    "AWS::Lambda::Function": "billed per request and GB-second only; nothing while idle",
    "AWS::Lambda::Alias": "no charge",
    "AWS::Lambda::Permission": "no charge",
    "AWS::Lambda::Url": "function URL: no charge of its own; its requests are billed as Lambda requests and "
    "duration, and a streamed response's bytes beyond its first 6 MB at $0.008 per GB",
    "AWS::ApiGatewayV2::Api": "HTTP API: billed per request only",
    "AWS::ApiGatewayV2::Stage": "no charge",
    "AWS::ApiGatewayV2::Route": "no charge",
    "AWS::ApiGatewayV2::Integration": "no charge",
    "AWS::ApiGatewayV2::DomainName": "no charge for a regional custom domain name",
    "AWS::ApiGatewayV2::ApiMapping": "no charge",
    "AWS::CertificateManager::Certificate": "public ACM certificates are free",
    "AWS::Route53::RecordSet": "an alias record in a zone the stack does not create; alias queries to API Gateway "
    "are free",
    "AWS::IAM::Role": "IAM is free",
    "AWS::IAM::Policy": "IAM is free",
    "AWS::IAM::OIDCProvider": "IAM is free (the deploy pipeline's GitHub provider)",
    "Custom::AWS": "the session key: one GetRandomPassword call by a provider function that runs only during "
    "deploys, billed per request: fractions of a cent",
    "AWS::Cognito::UserPoolClient": "part of the user pool",
    "AWS::Cognito::UserPoolDomain": "part of the user pool",
    "AWS::Cognito::UserPoolResourceServer": "part of the user pool",
    "AWS::Cognito::UserPoolGroup": "part of the user pool",
    "AWS::Cognito::ManagedLoginBranding": "managed login is included in the Essentials and Plus plans",
    "AWS::CDK::Metadata": "CDK's version report, not a billed resource",
}


def _memory_gb(template: Template, function_ref: Any) -> tuple[float, bool]:
    """The memory of the function a version points at, and whether it has SnapStart."""
    function = template["Resources"][function_ref["Ref"]]["Properties"]
    snapstart = function.get("SnapStart", {}).get("ApplyOn") == "PublishedVersions"
    return function.get("MemorySize", 128) / 1024, snapstart


def _version(logical_id: str, resource: Resource, template: Template) -> Charge:
    gb, snapstart = _memory_gb(template, resource["Properties"]["FunctionName"])
    if not snapstart:
        return Charge(logical_id, resource["Type"], "Lambda version", 0.0, "no charge without SnapStart", 0.0)
    amount = gb * prices.SNAPSTART_CACHE_USD_PER_GB_SECOND * prices.SECONDS_PER_MONTH
    retained = resource.get("DeletionPolicy") == "Retain" or resource.get("UpdateReplacePolicy") == "Retain"
    basis = f"{gb * 1024:.0f} MB x {rate(prices.SNAPSTART_CACHE_USD_PER_GB_SECOND)} per GB-second, 730 h"
    if retained:
        basis += "; old versions are retained, so every deploy adds as much again"
    return Charge(
        logical_id,
        resource["Type"],
        "SnapStart snapshot cache, live version",
        amount,
        basis,
        amount,
        "none",
        "`snapstart = true`",
    )


def _kms_key(logical_id: str, resource: Resource, template: Template) -> Charge:
    amount = prices.KMS_KEY_USD_PER_MONTH
    return Charge(
        logical_id,
        resource["Type"],
        "KMS key (signs OAuth tokens)",
        amount,
        f"{rate(amount)} per key a month",
        amount,
        "none",
        '`auth = "oauth"`',
    )


def _dashboard(logical_id: str, resource: Resource, template: Template) -> Charge:
    amount = prices.CLOUDWATCH_DASHBOARD_USD_PER_MONTH
    return Charge(
        logical_id,
        resource["Type"],
        "CloudWatch dashboard",
        amount,
        f"{rate(amount)} per dashboard a month",
        0.0,
        f"the account's first {prices.CLOUDWATCH_FREE_DASHBOARDS} dashboards",
        "`dashboard = true`",
    )


def _alarm_metrics(properties: dict[str, Any]) -> int:
    """Alarms are billed per metric they watch: one, or each metric of a metric-math expression."""
    metrics = properties.get("Metrics")
    if not metrics:
        return 1
    return sum(1 for m in metrics if "MetricStat" in m)


def _alarm(logical_id: str, resource: Resource, template: Template) -> Charge:
    properties = resource["Properties"]
    high_resolution = properties.get("Period", 60) < 60
    each = (
        prices.CLOUDWATCH_HIGH_RESOLUTION_ALARM_METRIC_USD_PER_MONTH
        if high_resolution
        else prices.CLOUDWATCH_ALARM_METRIC_USD_PER_MONTH
    )
    count = _alarm_metrics(properties)
    return Charge(
        logical_id,
        resource["Type"],
        "CloudWatch alarm",
        each * count,
        f"{rate(each)} per alarm metric a month",
        # Only standard-resolution alarm metrics count against the free tier.
        0.0 if not high_resolution else each * count,
        f"the account's first {prices.CLOUDWATCH_FREE_ALARM_METRICS} alarm metrics",
        "`[alarms] topic_arn` set",
    )


def _log_group(logical_id: str, resource: Resource, template: Template) -> Charge:
    amount = IDLE_STORED_GB * prices.CLOUDWATCH_LOGS_USD_PER_GB_MONTH_STORED
    return Charge(
        logical_id,
        resource["Type"],
        "CloudWatch log storage",
        amount,
        f"{IDLE_STORED_GB * 1000:.0f} MB stored x {rate(prices.CLOUDWATCH_LOGS_USD_PER_GB_MONTH_STORED)} per GB-month",
        0.0,
        f"{prices.CLOUDWATCH_LOGS_FREE_GB} GB of logs an account",
    )


def _table(logical_id: str, resource: Resource, template: Template) -> list[Charge]:
    storage = IDLE_STORED_GB * prices.DYNAMODB_USD_PER_GB_MONTH
    charges = [
        Charge(
            logical_id,
            resource["Type"],
            "DynamoDB storage",
            storage,
            f"{IDLE_STORED_GB * 1000:.0f} MB x {rate(prices.DYNAMODB_USD_PER_GB_MONTH)} per GB-month",
            0.0,
            f"{prices.DYNAMODB_FREE_GB} GB an account",
        )
    ]
    pitr = resource["Properties"].get("PointInTimeRecoverySpecification", {})
    if pitr.get("PointInTimeRecoveryEnabled"):
        amount = IDLE_STORED_GB * prices.DYNAMODB_PITR_USD_PER_GB_MONTH
        charges.append(
            Charge(
                logical_id,
                resource["Type"],
                "DynamoDB point-in-time recovery",
                amount,
                f"{IDLE_STORED_GB * 1000:.0f} MB x {rate(prices.DYNAMODB_PITR_USD_PER_GB_MONTH)} per GB-month",
                amount,
                "none",
                "`point_in_time_recovery = true` (default)",
            )
        )
    return charges


def _user_pool(logical_id: str, resource: Resource, template: Template) -> Charge:
    tier = resource["Properties"].get("UserPoolTier", "ESSENTIALS")
    bases = {
        "LITE": "Lite plan, per monthly active user beyond the account's first 10,000",
        "ESSENTIALS": f"Essentials plan: {rate(prices.COGNITO_ESSENTIALS_USD_PER_MAU)} per monthly active user beyond "
        f"the account's first {prices.COGNITO_ESSENTIALS_FREE_MAU:,}",
        "PLUS": f"Plus plan: {rate(prices.COGNITO_PLUS_USD_PER_MAU)} per monthly active user, no free tier",
    }
    if tier not in bases:
        raise UnpricedResourceError(
            f"{logical_id}: no price for the Cognito {tier} plan; add it to stacks/idle_cost.py"
        )
    return Charge(
        logical_id,
        resource["Type"],
        "Cognito user pool (no users active)",
        0.0,
        bases[tier],
        0.0,
        "",
        '`auth = "oauth"`',
    )


def _as_list(charges: Charge | list[Charge]) -> list[Charge]:
    return charges if isinstance(charges, list) else [charges]


PRICED: Final[dict[str, Callable[[str, Resource, Template], Charge | list[Charge]]]] = {
    "AWS::Lambda::Version": _version,
    "AWS::KMS::Key": _kms_key,
    "AWS::CloudWatch::Dashboard": _dashboard,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::DynamoDB::Table": _table,
    "AWS::Cognito::UserPool": _user_pool,
}


def unpriced_types(template: Template) -> list[str]:
    return sorted({r["Type"] for r in template["Resources"].values()} - set(PRICED) - set(FREE))


def estimate(template: Template) -> Estimate:
    missing = unpriced_types(template)
    if missing:
        raise UnpricedResourceError(
            f"no price for {', '.join(missing)}: add an entry to PRICED or FREE in stacks/idle_cost.py "
            "(a free one with the reason it is free)"
        )
    charges: list[Charge] = []
    for logical_id, resource in template["Resources"].items():
        price = PRICED.get(resource["Type"])
        if price is not None:
            charges.extend(_as_list(price(logical_id, resource, template)))
    return Estimate(tuple(charges))


def usd(value: float) -> str:
    """Cents for sums a person reads; below a cent, enough digits not to show $0.00 for a real cost."""
    if value == 0:
        return "$0"
    if value < 0.01:
        return f"${value:.4f}"
    return f"${value:.2f}"


def rate(value: float) -> str:
    """A unit price as the price page writes it: all its digits, at least cents."""
    digits = f"{value:.10f}".rstrip("0")
    whole, _, fraction = digits.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def summary_lines(stack_name: str, result: Estimate) -> list[str]:
    """What `make synth` prints for one stack: the total, then each line that costs something."""
    lines = [
        f"{stack_name}: idle {usd(result.usd_month)} a month at {prices.REGION} list prices "
        f"({prices.PRICES_AS_OF}); {usd(result.usd_month_free_tier)} while the account's free tiers last"
    ]
    grouped: dict[str, list[Charge]] = {}
    for charge in result.charges:
        if charge.usd_month > 0:
            grouped.setdefault(charge.item, []).append(charge)
    for item, charges in sorted(grouped.items(), key=lambda kv: -sum(c.usd_month for c in kv[1])):
        count = f"{len(charges)} x " if len(charges) > 1 else ""
        lines.append(f"  {usd(sum(c.usd_month for c in charges))}  {count}{item} ({charges[0].basis})")
    return lines


def report(stacks: Iterable[tuple[str, Template]]) -> str:
    lines: list[str] = []
    for name, template in stacks:
        lines.extend(summary_lines(name, estimate(template)))
    lines.append('Per-call prices and the defaults\' reasons: README.md, "What a server costs".')
    return "\n".join(lines)


README_START: Final = "<!-- cost:start -->"
README_END: Final = "<!-- cost:end -->"


PER_CALL_PREFIX: Final = "Per call: "


def per_call_line(per_million_calls: float, source: str) -> str:
    """The README's per-call figure; `make bench` rewrites this line in place (bench/report.py)."""
    return f"{PER_CALL_PREFIX}{usd(per_million_calls)} per million `tools/call` requests {source}."


def kit_per_call_line(summary: dict[str, Any]) -> str:
    """The README's per-call line from a `make bench` summary: the example server, stateless revision."""
    row = next(r for r in summary["rows"] if r["subject"] == "kit-example" and r["revision"] == MODERN)
    stream = next(
        (r for r in summary["rows"] if r["subject"] == "kit-example-stream" and r["revision"] == MODERN), None
    )
    streaming = (
        f"; {usd(stream['usd_per_million_calls'])} with `stream_responses = true`, where a function URL "
        "without a charge of its own replaces the HTTP API"
        if stream is not None and stream.get("usd_per_million_calls") is not None
        else ""
    )
    source = (
        f"(revision {MODERN}, `servers/example`, Lambda arm64 at 512 MB + HTTP API + DynamoDB + logs{streaming}), "
        f"from `make bench` of {summary['machine']['date']} (bench/README.md)"
    )
    return per_call_line(row["usd_per_million_calls"], source)


def replace_per_call_line(readme: str, line: str) -> str:
    """`readme` with the cost block's per-call line replaced; unchanged when it has no cost block."""
    start, end = readme.find(README_START), readme.find(README_END)
    if start < 0 or end < start:
        return readme
    block = readme[start:end]
    old = next((x for x in block.splitlines() if x.startswith(PER_CALL_PREFIX)), None)
    if old is None:
        return readme
    return readme[:start] + block.replace(old, line) + readme[end:]


def readme_block(stacks: Iterable[tuple[str, Template]], per_call: str) -> str:
    """The README's cost tables, from synthesized templates labelled by what they configure."""
    estimates = [(label, template, estimate(template)) for label, template in stacks]
    lines = [
        README_START,
        f"Idle means a month without a single request, at {prices.REGION} list prices of {prices.PRICES_AS_OF} "
        "(`stacks/prices.py` names each price page). Generated from the synthesized templates by "
        "`tests/stacks/test_costs.py`, which fails when this block and the stacks disagree.",
        "",
        "| server | idle, list price | idle, within the account's free tiers |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} | {usd(e.usd_month)} | {usd(e.usd_month_free_tier)} |" for label, _, e in estimates]
    lines += [
        "",
        f"Storage is priced at {IDLE_STORED_GB * 1000:.0f} MB per table and per log group.",
        "",
        "| what | when | a month, list price | free tier of the account | basis |",
        "|---|---|---:|---|---|",
    ]
    seen: set[str] = set()
    for _, _, result in estimates:
        for item in dict.fromkeys(c.item for c in result.charges):
            if item in seen:
                continue
            seen.add(item)
            charges = [c for c in result.charges if c.item == item]
            count = f"{len(charges)} x " if len(charges) > 1 else ""
            first = charges[0]
            lines.append(
                f"| {count}{item} | {first.when} | {usd(sum(c.usd_month for c in charges))} | "
                f"{first.free_tier or '-'} | {first.basis} |"
            )
    present = sorted({r["Type"] for _, template, _ in estimates for r in template["Resources"].values()} & set(FREE))
    lines += [
        "",
        "No monthly charge: " + "; ".join(f"`{t}` ({FREE[t]})" for t in present) + ".",
        "",
        per_call,
        README_END,
    ]
    return "\n".join(lines)
