"""The analysis in its order: an operator's correction, then patterns, then the model.

1. ``feedback``: an operator corrected the same (normalised) text: their category wins.
2. ``pattern``: exact and explainable; the most specific match decides.
3. ``model``: for text no pattern decides, the learned model's category, its calibrated
   confidence and the words that weighed most; below ``min_confidence``, or when the
   model itself says Unknown, the verdict is Unknown (``source: none``).

Recommendations for a model or feedback verdict come from the category, plus those of the
nearest pattern of that category when the text shares most of one of its signatures' words.
Pure: no event loop, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from responder.analyze.feedback import Corrections, text_key
from responder.analyze.model import Model
from responder.analyze.patterns import (
    DEFAULT_RETRYABLE,
    HEAD_CHARS,
    TAIL_CHARS,
    UNKNOWN,
    Analysis,
    PatternAnalyzer,
    alert_text,
    bounded_text,
)
from responder.config.patterns import PatternSpec

ADVICE: Mapping[str, str] = {
    "ExternalDependency": "A third-party service failed or throttled the request: retrying "
                          "with backoff usually helps; check the provider's status page if it "
                          "persists.",
    "Network": "A connection-level failure (DNS, refused, reset, TLS, i/o timeout): check the "
               "target service and the network path, then retry.",
    "ResourceExhaustion": "The work ran out of a resource (memory, disk, quota, connections, "
                          "processes): raise the limit or reduce the load before retrying.",
    "Infrastructure": "The platform lost the work (node, pod, runtime, control plane): a "
                      "retry normally succeeds; check the node and cluster health if it "
                      "recurs.",
    "Timeout": "The work ran past its time limit: look for the slow or hung step before "
               "raising the limit.",
    "Configuration": "This will fail the same way until the configuration changes (image, "
                     "secret, permissions, spec, credentials): fix it, then re-run.",
    "CodeDefect": "The workload's own code failed (tests, compile, exception): fix the code; "
                  "retrying will not help.",
    "Conflict": "A concurrent change or a held lock got in the way: retrying usually "
                "succeeds once the other writer is done.",
}
MODEL_NOTE = ("Classified by the learned model, not by a pattern: if this is wrong, correct "
              "it (POST /api/v1/alerts/{id}/category) so the same text is classified right.")
_TOKEN = re.compile(r"[a-z][a-z0-9_]+")
# Patterns below this are last-resort hints (a bare traceback, "context deadline exceeded"):
# they say little about the cause, so a model surer than the hint decides instead.
HINT_CONFIDENCE = 0.65
MIN_TERMS = 2


class Analyzer:
    """Classifies failure text; build once per configuration (corrections are passed in)."""

    __slots__ = ("_min_confidence", "_model", "_patterns", "_signature_words")

    def __init__(self, patterns: Sequence[PatternSpec], *, model: Model | None = None,
                 min_confidence: float = 0.5) -> None:
        self._patterns = PatternAnalyzer(patterns)
        self._model = model
        self._min_confidence = min_confidence
        by_category: dict[str, list[tuple[frozenset[str], PatternSpec]]] = {}
        for spec in patterns:
            for signature in spec.signatures:
                tokens = frozenset(_TOKEN.findall(signature.lower()))
                if len(tokens) >= 2:
                    by_category.setdefault(spec.category, []).append((tokens, spec))
        self._signature_words = by_category

    @property
    def patterns(self) -> tuple[PatternSpec, ...]:
        return self._patterns.patterns

    @property
    def unfiltered_regexes(self) -> tuple[str, ...]:
        return self._patterns.unfiltered_regexes

    @property
    def model(self) -> Model | None:
        return self._model

    def analyze(self, text: str, *, corrections: Corrections | None = None,
                evidence: str = "text") -> Analysis:
        """The verdict on one failure text."""
        text = clean(text)
        corrected = self._corrected(text, corrections, evidence)
        if corrected is not None:
            return corrected
        return self._decide(self._patterns.analyze(text, evidence=evidence), text, evidence)

    def analyze_alert(self, labels: Mapping[str, str], annotations: Mapping[str, str],
                      extra: Sequence[str] = (), *,
                      corrections: Corrections | None = None) -> Analysis:
        """The verdict on an alert: its own text and, when given, the workflow's messages.

        A correction is keyed by the alert's own text (``alert_text``), which the journal
        keeps; the workflow's messages are read live and are not.
        """
        labels = {k: clean(v) for k, v in labels.items()}
        annotations = {k: clean(v) for k, v in annotations.items()}
        extra = [clean(m) for m in extra]
        own = alert_text(labels, annotations)
        corrected = self._corrected(own, corrections, "annotations")
        if corrected is not None:
            return corrected
        found = self._patterns.analyze_alert(labels, annotations, extra)
        evidence = "workflow" if any(extra) else "annotations"
        return self._decide(found, "\n".join([own, *extra]), evidence)

    # -- the floors below patterns -------------------------------------------------------
    def _decide(self, found: Analysis, text: str, evidence: str) -> Analysis:
        """A decisive pattern stands; a last-resort hint yields to a surer model."""
        if found.pattern is not None and found.confidence >= HINT_CONFIDENCE:
            return found
        learned = self._learned(text, evidence)
        if found.pattern is None:
            return learned
        if learned.source == "model" and learned.confidence > found.confidence:
            return learned
        return found


    def _corrected(self, text: str, corrections: Corrections | None,
                   evidence: str) -> Analysis | None:
        if corrections is None or not len(corrections) or not text:
            return None
        category = corrections.get(text_key(text))
        if category is None:
            return None
        return Analysis(category=category, pattern=None, confidence=1.0,
                        retryable=DEFAULT_RETRYABLE.get(category, False),
                        recommendations=self._advice(category, text, note=False),
                        source="feedback", evidence=evidence)

    def _learned(self, text: str, evidence: str) -> Analysis:
        if self._model is None or not text.strip():
            return UNKNOWN
        got = self._model.predict(text)
        # fewer than two known words for the winner: the model would be guessing from
        # character fragments and its prior, so it does not decide
        if got.category == "Unknown" or got.confidence < self._min_confidence or \
                len(got.terms) < MIN_TERMS:
            return Analysis(category="Unknown", pattern=None,
                            confidence=round(got.confidence, 3), retryable=False,
                            recommendations=UNKNOWN.recommendations, source="none",
                            evidence=evidence, terms=got.terms)
        return Analysis(category=got.category, pattern=None,
                        confidence=round(got.confidence, 3),
                        retryable=DEFAULT_RETRYABLE.get(got.category, False),
                        recommendations=self._advice(got.category, text),
                        source="model", evidence=evidence, terms=got.terms)

    def _advice(self, category: str, text: str, *, note: bool = True) -> tuple[str, ...]:
        advice = [ADVICE.get(category, UNKNOWN.recommendations[0])]
        nearest = self._nearest(category, text)
        if nearest is not None:
            advice.extend(r for r in nearest.recommendations if r not in advice)
        if note:
            advice.append(MODEL_NOTE)
        return tuple(advice)

    def _nearest(self, category: str, text: str) -> PatternSpec | None:
        """The pattern of ``category`` most of one of whose signature words are in ``text``."""
        candidates = self._signature_words.get(category)
        if not candidates:
            return None
        present = set(_TOKEN.findall(text[-2048:].lower()))
        best: tuple[float, PatternSpec] | None = None
        for tokens, spec in candidates:
            share = len(tokens & present) / len(tokens)
            if share >= 0.6 and (best is None or share > best[0]):
                best = (share, spec)
        return None if best is None else best[1]


def clean(text: object) -> str:
    """Any input as text the analysis can read, bounded first (``bounded_text``: the first
    and last 8 KiB of a longer text), NULs as spaces, undecodable bytes and lone
    surrogates replaced; never raises."""
    if isinstance(text, bytes):
        if len(text) > 4 * (HEAD_CHARS + TAIL_CHARS):
            text = text[:4 * HEAD_CHARS] + b"\n" + text[-4 * TAIL_CHARS:]
        text = text.decode("utf-8", "replace")
    elif not isinstance(text, str):
        text = "" if text is None else str(text)
    text = bounded_text(text)
    if "\x00" in text:
        text = text.replace("\x00", " ")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from surrogateescape-decoded input
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
