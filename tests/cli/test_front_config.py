"""`stream_responses` in mcpkit.toml: what each front accepts, refused in one line that says why and what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from mcpkit.server_config import ServerConfigError, load_server

if TYPE_CHECKING:
    from pathlib import Path

TOPIC = 'topic_arn = "arn:aws:sns:us-east-1:123456789012:alerts"'


def _server(tmp_path: Path, config: str) -> Path:
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "server.py").write_text("mcp = None\n")
    (folder / "mcpkit.toml").write_text(config)
    return folder


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"timeout_seconds": 300, "stream_responses": True}, 300),
        ({"timeout_seconds": 900, "stream_responses": True}, 900),
        ({"timeout_seconds": 28}, 28),
    ],
)
def test_the_timeout_each_front_allows(tmp_path: Path, config: dict[str, Any], expected: int) -> None:
    text = "\n".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in config.items())
    assert load_server(_server(tmp_path, text)).config.timeout_seconds == expected


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("timeout_seconds = 29", ["at most 28", "stream_responses = true"]),
        ("timeout_seconds = 901\nstream_responses = true", ["less than or equal to 900"]),
        ("stream_responses = true\n[throttling]\nrate_limit = 5", ["throttling", "reserved_concurrency"]),
        (
            'stream_responses = true\n[custom_domain]\ndomain_name = "mcp.example.com"\n'
            'certificate_arn = "arn:aws:acm:us-east-1:1:certificate/x"',
            ["custom_domain", "CloudFront"],
        ),
        ("stream_responses = true\nsnapstart = true", ["snapstart", "streaming runtime"]),
        (f"timeout_seconds = 10\n[alarms]\n{TOPIC}\np99_latency_ms = 20000", ["p99_latency_ms = 20000", "could never"]),
    ],
)
def test_a_setting_the_front_cannot_honour_is_refused_with_the_reason(
    tmp_path: Path, config: str, words: list[str]
) -> None:
    with pytest.raises(ServerConfigError) as refused:
        load_server(_server(tmp_path, config))
    message = str(refused.value)
    assert "mcpkit.toml" in message
    assert "\n" not in message.strip()
    for word in words:
        assert word in message


def test_a_streaming_server_may_alarm_on_minutes_and_keeps_the_default_alarm_below_a_short_timeout(
    tmp_path: Path,
) -> None:
    long = load_server(
        _server(tmp_path, f"stream_responses = true\ntimeout_seconds = 600\n[alarms]\n{TOPIC}\np99_latency_ms = 300000")
    )
    assert long.config.alarms.p99_latency_ms == 300_000
    # The default threshold (5 s) is not the author's choice: a 3 s function keeps it without complaint.
    (tmp_path / "probe").rename(tmp_path / "earlier")
    assert load_server(_server(tmp_path, "timeout_seconds = 3")).config.timeout_seconds == 3


def test_a_rule_across_settings_points_at_the_line_of_the_setting_it_names(tmp_path: Path) -> None:
    config = 'description = "probe"\nstream_responses = true\n\n[throttling]\nrate_limit = 5\n'
    with pytest.raises(ServerConfigError) as refused:
        load_server(_server(tmp_path, config))
    assert str(refused.value).startswith(f"{tmp_path / 'probe' / 'mcpkit.toml'}:4: throttling: throttling cannot")
