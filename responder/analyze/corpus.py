"""The labelled corpus (``rules/corpus/{train,holdout}/*.yaml``) read into ``Case``s.

Shared by ``responder train`` (which learns from ``train`` and measures on ``holdout``) and
the accuracy tests, so both read the same files the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from responder.analyze.patterns import CATEGORIES, DEFAULT_RETRYABLE, Analysis


@dataclass(frozen=True, slots=True)
class Case:
    text: str
    category: str
    retryable: bool
    source: str


def load_split(corpus: Path, split: str) -> list[Case]:
    """Every case of ``corpus/split/*.yaml``, files in name order; ValueError on bad labels."""
    cases: list[Case] = []
    for path in sorted((corpus / split).glob("*.yaml")):
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        source = str(document.get("source", path.stem))
        for index, raw in enumerate(document["cases"]):
            category = raw["category"]
            if category not in CATEGORIES:
                raise ValueError(f"{path}: cases[{index}]: unknown category {category!r}")
            retryable = raw.get("retryable", DEFAULT_RETRYABLE[category])
            cases.append(Case(str(raw["text"]), category, bool(retryable), source))
    return cases


@dataclass(frozen=True, slots=True)
class Score:
    total: int
    right: int
    retry_wrong: int
    misses: tuple[tuple[Case, Analysis], ...]

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0

    @property
    def retry_error(self) -> float:
        return self.retry_wrong / self.total if self.total else 0.0


def score(verdicts: Iterable[tuple[Case, Analysis]]) -> Score:
    """How many verdicts name the labelled category, how many get retry-or-not wrong."""
    total = right = retry_wrong = 0
    misses: list[tuple[Case, Analysis]] = []
    for case, got in verdicts:
        total += 1
        if got.category == case.category:
            right += 1
        else:
            misses.append((case, got))
        if got.retryable != case.retryable:
            retry_wrong += 1
    return Score(total, right, retry_wrong, tuple(misses))


def report(name: str, result: Score, limit: int = 60) -> str:
    lines = [f"{name}: {result.accuracy:.1%} of {result.total} right, retryable wrong on "
             f"{result.retry_error:.1%}; misses:"]
    for case, got in result.misses[:limit]:
        lines.append(f"- [{case.source}] expected {case.category}, got {got.category} "
                     f"({got.source}, pattern {got.pattern}, {got.confidence:.2f})\n"
                     f"    text: {case.text[:240]!r}")
    return "\n".join(lines)


def texts(cases: Sequence[Case]) -> list[str]:
    return [c.text for c in cases]
