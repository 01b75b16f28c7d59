"""The learned fallback: a linear model over TF-IDF words and character n-grams.

It answers only for text no pattern decides. Trained by ``responder train`` (scikit-learn,
``responder.analyze.train``); what ships is its arrays in one ``.npz`` (vocabularies, idf,
weights, a calibration temperature), read with ``allow_pickle=False`` and served with numpy
alone, so loading costs milliseconds, nothing runs from the file, and nothing is fetched.
Probabilities are the softmax of the linear scores divided by the temperature fitted on
held-out folds (temperature scaling), so ``confidence`` means what it says.

Pure: no event loop, no I/O after ``load_model``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from responder.analyze.features import chars, model_text, words

FORMAT = "responder-failure-model/1"
STOP_WORDS = frozenset(
    "a an the in on of to for from by with at as is are was were be been it its this that "
    "and or not no but if then than so do does did has have had can could will would may "
    "into over after before about while".split())
SHIPPED_MODEL = "failure-model.npz"


class ModelError(Exception):
    """A model file that cannot be used: missing, corrupt, or of another format."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True, slots=True)
class Prediction:
    category: str
    confidence: float
    terms: tuple[str, ...]


class _Block:
    """One feature family: vocabulary -> column, idf per column."""

    __slots__ = ("idf", "index", "names")

    def __init__(self, names: np.ndarray[Any, Any], idf: np.ndarray[Any, Any]) -> None:
        self.names = [str(n) for n in names]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.idf = idf.astype(np.float64)

    def vector(self, grams: list[str]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(columns, weights): sublinear tf times idf, l2-normalised, as in training."""
        counts = Counter(g for g in grams if g in self.index)
        if not counts:
            return np.empty(0, dtype=np.intp), np.empty(0)
        columns = np.fromiter((self.index[g] for g in counts), dtype=np.intp, count=len(counts))
        tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), dtype=np.float64,
                         count=len(counts))
        weights = tf * self.idf[columns]
        return columns, weights / np.linalg.norm(weights)


class Model:
    """A trained model; ``predict`` is thread-safe (reads only)."""

    __slots__ = ("_chars", "_coef", "_intercept", "_temperature", "_words", "categories",
                 "path")

    def __init__(self, arrays: dict[str, np.ndarray[Any, Any]], path: str) -> None:
        self.path = path
        self.categories = tuple(str(c) for c in arrays["classes"])
        self._words = _Block(arrays["word_vocab"], arrays["word_idf"])
        self._chars = _Block(arrays["char_vocab"], arrays["char_idf"])
        self._coef = arrays["coef"].astype(np.float64)  # classes x (words + chars)
        self._intercept = arrays["intercept"].astype(np.float64)
        self._temperature = float(arrays["temperature"])
        width = len(self._words.names) + len(self._chars.names)
        if self._coef.shape != (len(self.categories), width) or \
                self._intercept.shape != (len(self.categories),) or self._temperature <= 0:
            raise ModelError(path, "inconsistent arrays (not written by responder train?)")

    def predict(self, text: str) -> Prediction:
        bounded = model_text(text)
        word_cols, word_w = self._words.vector(words(bounded))
        char_cols, char_w = self._chars.vector(chars(bounded))
        char_cols = char_cols + len(self._words.names)
        columns = np.concatenate([word_cols, char_cols])
        weights = np.concatenate([word_w, char_w])
        scores = self._coef[:, columns] @ weights + self._intercept
        scaled = scores / self._temperature
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        best = int(probs.argmax())
        # the words that pushed the winner most (characters n-grams read poorly to people;
        # stop words say nothing about a failure even when they weigh)
        pushes = self._coef[best, word_cols] * word_w
        terms: list[str] = []
        for i in np.argsort(-pushes):
            if pushes[i] <= 0 or len(terms) == 5:
                break
            term = self._words.names[word_cols[i]]
            if not STOP_WORDS.issuperset(term.split()):
                terms.append(term)
        return Prediction(self.categories[best], float(probs[best]), tuple(terms))


def shipped_model_path() -> Path:
    return Path(str(resources.files("responder.analyze") / SHIPPED_MODEL))


def load_model(path: Path, shown: str | None = None) -> Model:
    """Read a model file; raises ``ModelError`` naming the path when it cannot be used."""
    shown = shown or str(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise ModelError(shown, "model file not found (build one with `responder train`)") \
            from None
    except (OSError, ValueError, EOFError) as exc:
        raise ModelError(shown, f"not a readable model file: {exc}") from None
    if str(arrays.get("format", "")) != FORMAT:
        raise ModelError(shown, f"not a {FORMAT} model file")
    try:
        return Model(arrays, shown)
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(shown, f"incomplete model file: {exc}") from None
