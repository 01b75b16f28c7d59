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

from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from responder.analyze.features import model_text, token_grams, tokens

FORMAT = "responder-failure-model/1"
STOP_WORDS = frozenset(
    "a an the in on of to for from by with at as is are was were be been it its this that "
    "and or not no but if then than so do does did has have had can could will would may "
    "into over after before about while".split())
SHIPPED_MODEL = "failure-model.npz"
CACHE_WORDS = 50_000


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

    def vector(self, known: list[int]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(columns, weights) of the known columns seen (one entry per occurrence):
        sublinear tf times idf, l2-normalised, as in training."""
        if not known:
            return np.empty(0, dtype=np.intp), np.empty(0)
        columns, counts = np.unique(np.array(known, dtype=np.intp), return_counts=True)
        weights = (1.0 + np.log(counts)) * self.idf[columns]
        return columns, weights / np.linalg.norm(weights)


class Model:
    """A trained model; ``predict`` is thread-safe (reads only)."""

    __slots__ = ("_chars", "_coef", "_grams_of", "_intercept", "_temperature", "_words",
                 "categories", "path")

    def __init__(self, arrays: dict[str, np.ndarray[Any, Any]], path: str) -> None:
        self.path = path
        self.categories = tuple(str(c) for c in arrays["classes"])
        self._words = _Block(arrays["word_vocab"], arrays["word_idf"])
        self._chars = _Block(arrays["char_vocab"], arrays["char_idf"])
        self._coef = arrays["coef"].astype(np.float64)  # classes x (words + chars)
        self._intercept = arrays["intercept"].astype(np.float64)
        self._temperature = float(arrays["temperature"])
        # word -> the columns of its known character n-grams: words recur from one failure
        # to the next, so each is cut into n-grams once (bounded; cleared when full)
        self._grams_of: dict[str, tuple[int, ...]] = {}
        width = len(self._words.names) + len(self._chars.names)
        if self._coef.shape != (len(self.categories), width) or \
                self._intercept.shape != (len(self.categories),) or self._temperature <= 0:
            raise ModelError(path, "inconsistent arrays (not written by responder train?)")

    def predict(self, text: str) -> Prediction:
        found = tokens(model_text(text))
        index = self._words.index
        known = [index[t] for t in found if t in index]
        known.extend(index[g] for g in map(" ".join, pairwise(found)) if g in index)
        word_cols, word_w = self._words.vector(known)
        char_cols, char_w = self._chars.vector(self._char_columns(set(found)))
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


    def _char_columns(self, distinct: set[str]) -> list[int]:
        cache = self._grams_of
        if len(cache) > CACHE_WORDS:
            cache.clear()
        index = self._chars.index
        out: list[int] = []
        for token in distinct:
            columns = cache.get(token)
            if columns is None:
                columns = tuple(index[g] for g in token_grams(token) if g in index)
                cache[token] = columns
            out.extend(columns)
        return out


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
        # numpy's own text may suggest loading the file with pickles allowed: never.
        why = ("it holds pickled objects, which are never loaded" if "pickle" in str(exc)
               else str(exc))
        raise ModelError(shown, f"not a readable model file ({why}); build one with "
                                "`responder train -o FILE`") from None
    if str(arrays.get("format", "")) != FORMAT:
        raise ModelError(shown, f"not a {FORMAT} model file")
    try:
        return Model(arrays, shown)
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(shown, f"incomplete model file: {exc}") from None
