"""Strict, error-collecting access to one YAML mapping.

Each getter validates its key and records a ``ConfigError`` at that key's line instead of
raising, so one pass reports every mistake in a file. ``finish()`` reports keys nobody
asked for: unknown keys are errors, never silently ignored.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from responder.config.durations import parse_duration
from responder.config.yamlmarks import MarkedDict, MarkedList
from responder.errors import ConfigError, Origin

T = TypeVar("T")
_MISSING: Any = object()


def origin_of(container: Any, key: str | int | None = None) -> Origin | None:
    """The origin of ``container[key]`` (or of the container) when it is known."""
    if isinstance(container, MarkedDict):
        return container.origin_of(key) if isinstance(key, str) else container.origin
    if isinstance(container, MarkedList):
        return container.origin_of(key) if isinstance(key, int) else container.origin
    return None


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


class Section:
    """A mapping being validated; ``where`` names it in messages (e.g. ``channels.oncall``)."""

    def __init__(
        self,
        data: Any,
        errors: list[ConfigError],
        *,
        where: builtins.str = "",
        origin: Origin | None = None,
        base_dir: Path | None = None,
    ) -> None:
        self.errors = errors
        self.where = where
        self.base_dir = base_dir or Path(".")
        self.origin = origin_of(data) or origin
        self.valid = isinstance(data, dict)
        if data is not None and not self.valid:
            self.error(self.origin,
                       f"{where or 'document'}: expected a mapping, got {type_name(data)}")
        self.data: dict[builtins.str, Any] = data if isinstance(data, dict) else {}
        self._seen: set[builtins.str] = set()

    # -- reporting ---------------------------------------------------------------------
    def error(self, origin: Origin | None, message: builtins.str) -> None:
        self.errors.append(ConfigError(origin, message))

    def at(self, key: builtins.str) -> Origin | None:
        return origin_of(self.data, key) or self.origin

    def name(self, key: builtins.str) -> builtins.str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: builtins.str) -> builtins.bool:
        return key in self.data

    def raw(self, key: builtins.str, default: Any = None) -> Any:
        self._seen.add(key)
        return self.data.get(key, default)

    def finish(self) -> None:
        for key in self.data:
            if key not in self._seen:
                self.error(self.at(key), f"{self.name(key)}: unknown key")

    # -- typed getters -----------------------------------------------------------------
    def _get(self, key: builtins.str, default: Any, check: Callable[[Any], T],
             expected: builtins.str) -> T:
        self._seen.add(key)
        if key not in self.data or self.data[key] is None:
            if default is _MISSING:
                self.error(self.origin, f"{self.name(key)}: required")
                return None  # type: ignore[return-value]
            return default  # type: ignore[no-any-return]
        value = self.data[key]
        try:
            return check(value)
        except (TypeError, ValueError) as exc:
            reason = str(exc) or f"expected {expected}, got {type_name(value)}"
            self.error(self.at(key), f"{self.name(key)}: {reason}")
            return default if default is not _MISSING else None  # type: ignore[return-value]

    def str(self, key: builtins.str, default: Any = _MISSING) -> Any:
        def check(v: Any) -> builtins.str:
            if not isinstance(v, builtins.str):
                raise TypeError(f"expected string, got {type_name(v)}")
            return v

        return self._get(key, default, check, "string")

    def bool(self, key: builtins.str, default: Any = _MISSING) -> Any:
        def check(v: Any) -> builtins.bool:
            if not isinstance(v, builtins.bool):
                raise TypeError(f"expected true or false, got {type_name(v)}")
            return v

        return self._get(key, default, check, "boolean")

    def int(self, key: builtins.str, default: Any = _MISSING, *,
            minimum: builtins.int | None = None) -> Any:
        def check(v: Any) -> builtins.int:
            if isinstance(v, builtins.bool) or not isinstance(v, builtins.int):
                raise TypeError(f"expected integer, got {type_name(v)}")
            if minimum is not None and v < minimum:
                raise ValueError(f"must be at least {minimum}, got {v}")
            return v

        return self._get(key, default, check, "integer")

    def number(
        self, key: builtins.str, default: Any = _MISSING, *, minimum: float | None = None,
        maximum: float | None = None,
    ) -> Any:
        def check(v: Any) -> float:
            if isinstance(v, builtins.bool) or not isinstance(v, (int, float)):
                raise TypeError(f"expected number, got {type_name(v)}")
            if minimum is not None and v < minimum:
                raise ValueError(f"must be at least {minimum}, got {v}")
            if maximum is not None and v > maximum:
                raise ValueError(f"must be at most {maximum}, got {v}")
            return float(v)

        return self._get(key, default, check, "number")

    def duration(self, key: builtins.str, default: Any = _MISSING, *,
                 positive: builtins.bool = False) -> Any:
        def check(v: Any) -> float:
            if isinstance(v, builtins.bool) or not isinstance(v, builtins.str):
                raise TypeError(f"expected a duration string like 30s or 5m, got {type_name(v)}")
            seconds = parse_duration(v)
            if positive and seconds <= 0:
                raise ValueError(f"must be longer than zero, got {v!r}")
            return seconds

        return self._get(key, default, check, "duration")

    def choice(self, key: builtins.str, choices: tuple[builtins.str, ...],
               default: Any = _MISSING) -> Any:
        def check(v: Any) -> builtins.str:
            if not isinstance(v, builtins.str) or v not in choices:
                raise ValueError(f"{v!r} is not one of {', '.join(choices)}")
            return v

        return self._get(key, default, check, "string")

    def str_list(self, key: builtins.str, default: Any = _MISSING) -> Any:
        def check(v: Any) -> list[builtins.str]:
            if isinstance(v, builtins.str):
                return [v]
            if not isinstance(v, list) or not all(isinstance(i, builtins.str) for i in v):
                raise TypeError(f"expected a list of strings, got {type_name(v)}")
            return list(v)

        return self._get(key, default, check, "list of strings")

    def section(self, key: builtins.str, *, required: builtins.bool = False) -> Section | None:
        self._seen.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                self.error(self.origin, f"{self.name(key)}: required")
            return None
        return Section(self.data[key], self.errors, where=self.name(key),
                       origin=self.at(key), base_dir=self.base_dir)

    def path(self, key: builtins.str, default: Any = _MISSING) -> Any:
        """A path relative to the config file's directory (``~`` expanded)."""
        value = self.str(key, default)
        if not isinstance(value, builtins.str):
            return value
        return (self.base_dir / Path(value).expanduser()).resolve()

    def secret(self, key: builtins.str, *, required: builtins.bool = False,
               noun: builtins.str | None = None) -> builtins.str | None:
        """``key`` inline or ``key_file`` read relative to the config file; never echoed.
        A required secret that is empty (an empty mounted Secret) is an error at its line,
        naming it as ``noun`` (by default the key's words), and None."""
        inline = self.str(key, None)
        file_key = f"{key}_file"
        file_value = self.str(file_key, None)
        if inline is not None and file_value is not None:
            self.error(self.at(file_key), f"{self.name(key)}: give {key} or {file_key}, not both")
            return None
        value = inline
        if file_value is not None:
            target = (self.base_dir / Path(file_value).expanduser())
            try:
                value = target.read_text(encoding="utf-8").strip()
            except OSError as exc:
                self.error(self.at(file_key),
                           f"{self.name(file_key)}: cannot read {target}: {exc.strerror or exc}")
                return None
        if value is None and required:
            self.error(self.origin, f"{self.name(key)}: required ({key} or {file_key})")
        elif value == "" and required:
            used = file_key if file_value is not None else key
            self.error(self.at(used),
                       f"{self.name(used)}: the {noun or key.replace('_', ' ')} is empty")
            return None
        return value  # type: ignore[no-any-return]
