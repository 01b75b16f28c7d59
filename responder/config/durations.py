"""Prometheus durations (``30s``, ``5m``, ``1h30m``, ``500ms``) to seconds, and back.

The grammar is Prometheus' own (``model.ParseDuration``): units from largest to smallest,
``y w d h m s ms``, each at most once, so ``1h30m`` is a duration and ``30m1h`` or
``30s30s`` are not; a bare ``0`` is zero. What Prometheus refuses is refused here too, so a
duration that works in a rule file works in a runbook.
"""

from __future__ import annotations

import re

_UNITS = (("y", 31536000.0), ("w", 604800.0), ("d", 86400.0), ("h", 3600.0), ("m", 60.0),
          ("s", 1.0), ("ms", 0.001))
_GRAMMAR = re.compile("".join(rf"(?:(?P<{'ms' if u == 'ms' else u}>[0-9]+){u})?"
                              for u, _ in _UNITS))
#: Prometheus keeps durations as int64 nanoseconds.
_MAX_SECONDS = (2**63 - 1) / 1e9


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError with a readable reason."""
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r} (expected e.g. 30s, 5m, 1h30m)")
    if text == "0":
        return 0.0
    found = _GRAMMAR.fullmatch(text) if text else None
    if found is None:
        raise ValueError(f"invalid duration {text!r}: expected numbers with units y, w, d, "
                         f"h, m, s, ms, largest first and each once (e.g. 30s, 5m, 1h30m)")
    seconds = sum(int(found[u]) * size for u, size in _UNITS if found[u] is not None)
    if seconds > _MAX_SECONDS:
        raise ValueError(f"invalid duration {text!r}: too long")
    return seconds


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
