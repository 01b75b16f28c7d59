"""Durations follow Prometheus' grammar exactly: units largest first, each at most once."""

from __future__ import annotations

import pytest

from responder.config.durations import format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1d", 86400.0),
    ("2w", 1209600.0), ("1y", 31536000.0), ("1h0m", 3600.0), ("0", 0.0), ("0s", 0.0),
    ("1y2w3d4h5m6s7ms", 31536000 + 2 * 604800 + 3 * 86400 + 4 * 3600 + 5 * 60 + 6.007),
])
def test_prometheus_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [
    "5m1h", "30s30s", "1ms1s", "1h1h", "", "1.5h", "5", "5M", "-5m", " 5m", "5m ", "1h 30m",
    "1hour", "ms", "10000000000000y",
])
def test_what_prometheus_refuses_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [0.25, 1, 59, 60, 61, 3600, 5400, 86399])
def test_a_formatted_duration_parses_back(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
