"""Failure patterns (``rules/patterns.yaml``) parsed once into frozen ``PatternSpec``s.

The analyzer must never see a pattern it cannot use, so every problem (unknown category,
bad regex, duplicate name across files, a pattern that can match nothing or everything,
confidence outside 0..1, unknown keys, wrong types) is collected and raised together as
``ConfigErrors``, each ``path:line: message``. The fixed category set lives here, below the
analyzer, so the loader can check it without importing upward.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from responder.config.reader import Section, origin_of, type_name
from responder.config.yamlmarks import MarkedList, load_file
from responder.errors import ConfigError, ConfigErrors, Origin

CATEGORIES: tuple[str, ...] = (
    "ExternalDependency",
    "Network",
    "ResourceExhaustion",
    "Infrastructure",
    "Timeout",
    "Configuration",
    "CodeDefect",
    "Conflict",
    "Unknown",
)

# SPEC §7: whether trying again can help when the pattern does not say otherwise.
DEFAULT_RETRYABLE: Mapping[str, bool] = MappingProxyType({
    "ExternalDependency": True,
    "Network": True,
    "ResourceExhaustion": False,
    "Infrastructure": True,
    "Timeout": True,
    "Configuration": False,
    "CodeDefect": False,
    "Conflict": True,
    "Unknown": False,
})

# Regexes are matched case-insensitively, like signatures (``(?-i:...)`` opts a part out),
# and line by line, so ``^`` and ``$`` are line anchors.
REGEX_FLAGS = re.IGNORECASE | re.MULTILINE


@dataclass(frozen=True, slots=True)
class PatternSpec:
    """One failure signature: what text means which category, and what to do about it."""

    name: str
    category: str
    signatures: tuple[str, ...]
    regex: str | None
    confidence: float
    retryable: bool | None
    recommendations: tuple[str, ...]
    origin: Origin


def load_patterns(paths: Sequence[Path], *,
                  display_base: Path | None = None) -> tuple[PatternSpec, ...]:
    """Every pattern of every file, in file order; raises ``ConfigErrors`` listing all problems.

    ``display_base``: paths in messages are shown relative to it when they lie below it.
    """
    errors: list[ConfigError] = []
    specs: list[PatternSpec] = []
    seen: dict[str, Origin] = {}
    for path in paths:
        shown = _display(path, display_base)
        try:
            document = load_file(path, shown)
        except ConfigError as exc:
            errors.append(exc)
            continue
        for spec in _file_patterns(document, shown, errors):
            if spec.name in seen:
                errors.append(ConfigError(
                    spec.origin, f"pattern {spec.name!r}: duplicate name (first defined at "
                                 f"{seen[spec.name]})"))
                continue
            seen[spec.name] = spec.origin
            specs.append(spec)
    if errors:
        raise ConfigErrors(errors)
    return tuple(specs)


def _display(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return str(path)


def _file_patterns(document: Any, shown: str,
                   errors: list[ConfigError]) -> list[PatternSpec]:
    if document is None:
        errors.append(ConfigError(Origin(shown, 1), "empty file: expected a `patterns:` list"))
        return []
    root = Section(document, errors, origin=Origin(shown, 1))
    items = root.raw("patterns")
    root.finish()
    if not root.valid:
        return []
    if items is None:
        if "patterns" not in root.data:
            errors.append(ConfigError(root.origin, "patterns: required"))
        return []
    if not isinstance(items, list):
        errors.append(ConfigError(root.at("patterns"),
                                  f"patterns: expected a list, got {type_name(items)}"))
        return []
    specs: list[PatternSpec] = []
    for index, item in enumerate(items):
        where = origin_of(items, index) or root.at("patterns")
        spec = _pattern(item, index, where, errors)
        if spec is not None:
            specs.append(spec)
    return specs


def _pattern(item: Any, index: int, where: Origin | None,
             errors: list[ConfigError]) -> PatternSpec | None:
    before = len(errors)
    label = f"patterns[{index}]"
    section = Section(item, errors, where=label, origin=where)
    if not section.valid:
        return None
    name = section.str("name")
    if isinstance(name, str):
        if not name.strip():
            section.error(section.at("name"), f"{label}.name: must not be empty")
        label = f"pattern {name!r}"
        section.where = label
    category = section.str("category")
    if isinstance(category, str) and category not in CATEGORIES:
        section.error(section.at("category"),
                      f"{label}.category: unknown category {category!r} "
                      f"(one of {', '.join(CATEGORIES)})")
    signatures = _signatures(section, label)
    regex = section.str("regex", None)
    if isinstance(regex, str):
        _check_regex(section, label, regex)
    confidence = section.number("confidence", minimum=0.0, maximum=1.0)
    retryable = section.bool("retryable", None)
    recommendations = section.str_list("recommendations", [])
    if isinstance(recommendations, list) and any(not r.strip() for r in recommendations):
        section.error(section.at("recommendations"),
                      f"{label}.recommendations: must not contain empty strings")
    section.finish()
    if section.data.get("signatures") is None and section.data.get("regex") is None:
        section.error(section.origin, f"{label}: needs signatures or a regex")
    if len(errors) > before:
        errors[before:] = sorted(errors[before:], key=lambda e: e.origin.line if e.origin else 0)
        return None
    return PatternSpec(
        name=name, category=category, signatures=tuple(signatures), regex=regex,
        confidence=confidence, retryable=retryable,
        recommendations=tuple(recommendations), origin=section.origin or Origin("<unknown>"),
    )


def _signatures(section: Section, label: str) -> list[str]:
    raw = section.raw("signatures")
    if raw is None:
        return []
    values = raw if isinstance(raw, list) else [raw]
    good: list[str] = []
    for index, value in enumerate(values):
        at = (raw.origin_of(index) if isinstance(raw, MarkedList) else None) or \
            section.at("signatures")
        if not isinstance(value, str):
            section.error(at, f"{label}.signatures[{index}]: expected string, "
                              f"got {type_name(value)}")
        elif len(value.strip()) < 3:
            # a one- or two-letter substring matches nearly every log: never specific
            section.error(at, f"{label}.signatures[{index}]: {value!r} is too short "
                              "(at least 3 characters)")
        else:
            good.append(value)
    if not values:
        section.error(section.at("signatures"), f"{label}.signatures: empty list")
    return good


def _check_regex(section: Section, label: str, regex: str) -> None:
    try:
        compiled = re.compile(regex, REGEX_FLAGS)
    except re.error as exc:
        section.error(section.at("regex"), f"{label}.regex: invalid regular expression: {exc}")
        return
    if compiled.search("") is not None:
        section.error(section.at("regex"),
                      f"{label}.regex: matches the empty string, so it would match any text")
