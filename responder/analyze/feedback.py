"""Operators' corrections: the same failure text, normalised, gets the corrected category.

"The same text" must survive what changes between two occurrences of one failure: the
pod's generated suffix, ids, hashes, timestamps, IP addresses, numbers. ``normalize`` masks
those and ``text_key`` hashes the result; a correction is stored under that key (in the
journal) and looked up in ``Corrections``, a plain mapping the service keeps in memory.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Mapping

from responder.analyze.patterns import bounded_text

_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\d{4}-\d\d-\d\d[t ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:z|[+-]\d\d:?\d\d)?"), "<ts>"),
    (re.compile(r"\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b"), "<ts>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<id>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{7,}\b"), "<hash>"),
    # generated pod and workflow suffixes: -7c9f5d8b4-x2k8d, -x2k8d, -3307154826
    (re.compile(r"-(?=[a-z0-9]*\d)[a-z0-9]{5,10}\b"), "-<sfx>"),
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def normalize(text: str) -> str:
    """``text`` lower-cased with timestamps, ids, addresses, hashes, suffixes, numbers masked."""
    text = bounded_text(text).lower()
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text.strip()


def text_key(text: str) -> str:
    return hashlib.sha256(normalize(text).encode("utf-8", "surrogatepass")).hexdigest()


class Corrections:
    """text key -> corrected category; shared by the service's analyses and its API."""

    __slots__ = ("_by_key", "_lock")

    def __init__(self, entries: Iterable[tuple[str, str]] = ()) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, str] = dict(entries)

    def get(self, key: str) -> str | None:
        return self._by_key.get(key)

    def add(self, key: str, category: str) -> None:
        with self._lock:
            self._by_key[key] = category

    def update(self, entries: Iterable[tuple[str, str]]) -> None:
        """Add or replace each (key, category): what the journal has now (corrections are
        never deleted, so nothing known is dropped)."""
        with self._lock:
            self._by_key.update(entries)

    def snapshot(self) -> Mapping[str, str]:
        with self._lock:
            return dict(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)
