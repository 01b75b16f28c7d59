"""Durations follow Prometheus' grammar exactly: units largest first, each at most once."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.config.durations import format_duration, parse_duration
from responder.config.main import load_config
from responder.errors import ConfigErrors


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


@pytest.mark.parametrize(("section", "key"), [
    ("limits", "header_timeout"), ("limits", "body_timeout"), ("limits", "idle_timeout"),
    ("argo", "timeout"), ("state", "retention")])
def test_a_zero_timeout_or_retention_in_the_config_is_refused_at_its_line(
        tmp_path: Path, section: str, key: str) -> None:
    path = tmp_path / "responder.yaml"
    path.write_text(f"listen: 127.0.0.1:9095\n{section}:\n  {key}: 0s\n")
    with pytest.raises(ConfigErrors) as refused:
        load_config(path)
    (error,) = [str(e) for e in refused.value.errors]
    assert error.startswith(f"{path}:3: {section}.{key}: must be longer than"), error
