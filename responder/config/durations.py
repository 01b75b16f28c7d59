"""Prometheus-style durations (``30s``, ``5m``, ``1h30m``, ``500ms``) to seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_WHOLE = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError with a readable reason."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text.strip()):
        raise ValueError(f"invalid duration {text!r} (expected e.g. 30s, 5m, 1h30m)")
    return sum(int(n) * _UNITS[u] for n, u in _PART.findall(text.strip()))


def format_duration(seconds: float) -> str:
    """The shortest Prometheus-style rendering of ``seconds``."""
    if seconds < 1 and seconds > 0:
        return f"{round(seconds * 1000)}ms"
    remaining = round(seconds)
    if remaining == 0:
        return "0s"
    out = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size:
            out.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(out)
