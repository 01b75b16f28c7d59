"""Patterns, the first and exact floor of the analysis: failure text -> ``Analysis``.

Runbooks decide on the category and the retryable flag, so the same text must always give
the same answer and nothing may be guessed: when no pattern matches the answer is
``UNKNOWN``. When several patterns match, the most specific wins: highest confidence, then
the longest matched signature (or regex match), then the pattern written first.

Cost does not grow with the number of patterns: every literal signature (lower-cased) sits
in one Aho-Corasick automaton, walked once per text. Each regex contributes its required
literal (a substring every match must contain, found from the parsed regex) to the same
automaton and is tried only on the lines where that literal occurs. So, as with grep, a
regex matches within one line (the line's own newline included); a regex without a
required literal is tried on every line. Case-insensitive regexes get no literal-prefix
fast path in ``re``, so trying them on whole texts cost ~300 µs per regex per 4 KB; on
lines it is a few µs.

Pure: no event loop, no I/O, safe to share between tasks and threads once built.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick

from responder.config.patterns import CATEGORIES, DEFAULT_RETRYABLE, REGEX_FLAGS, PatternSpec

__all__ = ["CATEGORIES", "DEFAULT_RETRYABLE", "UNKNOWN", "Analysis", "PatternAnalyzer",
           "alert_text", "bounded_text", "required_literals"]

# Long logs: the cause is usually at the end (traceback, last error) and sometimes at the
# start (Argo's status line), so the first and last 8 KiB are kept and the middle dropped.
HEAD_CHARS = 8 * 1024
TAIL_CHARS = 8 * 1024
MAX_MATCHED_CHARS = 200
_MIN_PREFILTER = 3  # shorter literals would wake the regex on nearly every text

_SIGNATURE = 0
_REGEX_TRIGGER = 1

_re_parser: Any = importlib.import_module("re._parser")
_NEWLINE = re.compile("\n")


@dataclass(frozen=True, slots=True)
class Analysis:
    """The verdict on one failure.

    ``source`` says what decided it: ``pattern``, ``model``, ``feedback`` (an operator's
    correction of the same text) or ``none`` (nothing did: Unknown). ``matched`` is the
    text a pattern matched; ``terms`` the words that weighed most in a model's verdict;
    ``evidence`` which text was read: ``annotations``, ``workflow``, ``text`` or ``none``.
    """

    category: str
    pattern: str | None
    confidence: float
    retryable: bool
    recommendations: tuple[str, ...]
    matched: str | None = None
    source: str = "none"
    evidence: str = "none"
    terms: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """SPEC §2 keys first (``responder analyze --json``), then how it was decided."""
        return {
            "category": self.category,
            "pattern": self.pattern,
            "confidence": self.confidence,
            "retryable": self.retryable,
            "recommendations": list(self.recommendations),
            "matched": self.matched,
            "source": self.source,
            "evidence": self.evidence,
            "terms": list(self.terms),
        }


UNKNOWN = Analysis(
    category="Unknown", pattern=None, confidence=0.0, retryable=False,
    recommendations=(
        "No known failure signature matched: read the failed step's logs "
        "(argo logs <workflow> -n <namespace>) before retrying.",
        "If this failure recurs, add a pattern for it to rules/patterns.yaml.",
    ),
)

# (confidence, specificity, -declaration index): bigger wins
_Score = tuple[float, int, int]


def bounded_text(text: str) -> str:
    """``text`` itself, or its first and last 8 KiB (characters) joined when it is longer."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return f"{text[:HEAD_CHARS]}\n...\n{text[-TAIL_CHARS:]}"


class PatternAnalyzer:
    """Classifies failure text with a fixed set of patterns; build once per configuration."""

    __slots__ = ("_always", "_automaton", "_patterns", "_regexes")

    def __init__(self, patterns: Sequence[PatternSpec]) -> None:
        self._patterns = tuple(patterns)
        self._regexes: dict[int, re.Pattern[str]] = {}
        always: list[int] = []
        keys: dict[str, list[tuple[int, int]]] = {}
        for index, spec in enumerate(self._patterns):
            for signature in spec.signatures:
                keys.setdefault(signature.lower(), []).append((index, _SIGNATURE))
            if spec.regex is None:
                continue
            self._regexes[index] = re.compile(spec.regex, REGEX_FLAGS)
            literals = required_literals(spec.regex)
            if literals is None or min(map(len, literals)) < _MIN_PREFILTER:
                always.append(index)
                continue
            for literal in literals:
                keys.setdefault(literal, []).append((index, _REGEX_TRIGGER))
        self._always = tuple(always)
        self._automaton: Any = None
        if keys:
            automaton = ahocorasick.Automaton()
            for key, entries in keys.items():
                automaton.add_word(key, (len(key), tuple(entries)))
            automaton.make_automaton()
            self._automaton = automaton

    @property
    def patterns(self) -> tuple[PatternSpec, ...]:
        return self._patterns

    @property
    def unfiltered_regexes(self) -> tuple[str, ...]:
        """Names of patterns whose regex has no required literal and so runs on every text."""
        return tuple(self._patterns[i].name for i in self._always)

    def analyze(self, text: str, *, evidence: str = "text") -> Analysis:
        """Classify ``text`` (only its first and last 8 KiB when longer than 16 KiB)."""
        found = self._best(text)
        return UNKNOWN if found is None else self._verdict(found, evidence)

    def analyze_alert(self, labels: Mapping[str, str], annotations: Mapping[str, str],
                      extra: Sequence[str] = ()) -> Analysis:
        """Classify an alert from its own text and, when given, the workflow's messages.

        The alert's text is its ``description``, ``message`` and ``summary`` annotations and
        its ``reason`` and ``exit_code`` labels (``exit_code: "137"`` reads as ``exit code
        137``). ``extra`` holds failure messages read from the workflow itself
        (``status.message``, failed nodes' messages). The more specific match wins; on a tie
        the workflow's own words win, and the verdict says ``evidence="workflow"``.
        """
        own = self._best(alert_text(labels, annotations))
        workflow = self._best("\n".join(m for m in extra if m)) if extra else None
        if workflow is not None and (own is None or workflow[0][:2] >= own[0][:2]):
            return self._verdict(workflow, "workflow")
        return UNKNOWN if own is None else self._verdict(own, "annotations")

    # -- matching ------------------------------------------------------------------------
    def _best(self, text: str) -> tuple[_Score, int, str] | None:
        """(score, pattern index, matched text) of the most specific match, if any."""
        if not text or not self._patterns:
            return None
        text = bounded_text(text)
        lowered = text.lower()
        # lower() may change the length of a few non-ASCII characters; then cut from lowered
        cut_from = text if len(lowered) == len(text) else lowered
        patterns = self._patterns
        best: _Score | None = None
        best_index = -1
        best_span = (0, 0)
        # regex index -> start offsets of the lines where its required literal occurs
        triggered: dict[int, set[int]] = {}
        if self._automaton is not None:
            for end, (length, entries) in self._automaton.iter(lowered):
                for index, kind in entries:
                    if kind == _REGEX_TRIGGER:
                        triggered.setdefault(index, set()).add(
                            lowered.rfind("\n", 0, end - length + 1) + 1)
                        continue
                    score = (patterns[index].confidence, length, -index)
                    if best is None or score > best:
                        best, best_index, best_span = score, index, (end - length + 1, end + 1)
        if self._always:
            every_line = _line_starts(text)
            for index in self._always:
                triggered[index] = every_line
        same_offsets = cut_from is text
        # most confident first: once one matches, the less confident need not run at all
        for index in sorted(triggered, key=lambda i: (-patterns[i].confidence, i)):
            starts = triggered[index]
            confidence = patterns[index].confidence
            if best is not None and confidence < best[0]:
                continue  # cannot win, so not worth running
            match = self._search_lines(index, text, starts if same_offsets else None)
            if match is None:
                continue
            score = (confidence, match.end() - match.start(), -index)
            if best is None or score > best:
                best, best_index, best_span = score, index, match.span()
                cut_from = text
        if best is None:
            return None
        return best, best_index, cut_from[best_span[0]:best_span[1]].strip()[:MAX_MATCHED_CHARS]

    def _search_lines(self, index: int, text: str,
                      starts: set[int] | None) -> re.Match[str] | None:
        """The first match of regex ``index`` on the given lines (all lines when None)."""
        regex = self._regexes[index]
        for start in sorted(starts) if starts is not None else _line_starts(text):
            stop = text.find("\n", start)
            match = regex.search(text, start, len(text) if stop < 0 else stop + 1)
            if match is not None:
                return match
        return None

    def _verdict(self, found: tuple[_Score, int, str], evidence: str) -> Analysis:
        _, index, matched = found
        spec = self._patterns[index]
        retryable = spec.retryable if spec.retryable is not None else \
            DEFAULT_RETRYABLE.get(spec.category, False)
        return Analysis(
            category=spec.category, pattern=spec.name, confidence=spec.confidence,
            retryable=retryable, recommendations=spec.recommendations, matched=matched,
            source="pattern", evidence=evidence,
        )


def alert_text(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    """An alert's own failure text: its annotations and its ``reason``/``exit_code`` labels."""
    parts = [annotations.get(key, "") for key in ("description", "message", "summary")]
    parts.append(labels.get("reason", ""))
    code = labels.get("exit_code", "").strip()
    if code:
        parts.append(f"exit code {code}")
    return "\n".join(p for p in parts if p)


def _line_starts(text: str) -> set[int]:
    return {0, *(m.end() for m in _NEWLINE.finditer(text))}


def required_literals(regex: str) -> frozenset[str] | None:
    """Lower-cased literals of which every match of ``regex`` contains at least one.

    None when no such set can be read from the regex (it then runs on every text). Found
    from the parsed regex: runs of literal characters in sequence, alternations (each
    branch must yield some), groups and repeats of at least one.
    """
    try:
        parsed = _re_parser.parse(regex, REGEX_FLAGS)
    except re.error:
        return None
    return _required(list(parsed))


def _required(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            candidates.append(frozenset(["".join(run).lower()]))
            run.clear()

    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(arg))
        elif name == "AT":
            continue  # zero-width anchor (\b, ^, $): neighbouring literals stay adjacent
        elif name == "SUBPATTERN":
            flush()
            inner = _required(list(arg[-1]))
            if inner is not None:
                candidates.append(inner)
        elif name == "BRANCH":
            flush()
            alternatives = [_required(list(branch)) for branch in arg[1]]
            if all(a is not None for a in alternatives):
                candidates.append(frozenset().union(*alternatives))  # type: ignore[arg-type]
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            flush()
            low, _high, body = arg
            if low >= 1:
                inner = _required(list(body))
                if inner is not None:
                    candidates.append(inner)
        else:
            flush()
    flush()
    if not candidates:
        return None
    return max(candidates, key=lambda c: (min(map(len, c)), -len(c)))
