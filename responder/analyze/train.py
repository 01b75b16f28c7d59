"""Training the model (``responder train``): scikit-learn, deterministic, from the corpus.

TF-IDF over the words and character n-grams of ``features`` (the very functions inference
uses), a multinomial logistic regression, and temperature scaling fitted on five held-out
folds so the probabilities are calibrated. Deterministic: fixed folds, a deterministic
solver, no random state, one BLAS thread. Only this module imports scikit-learn; serving needs numpy alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from responder.analyze.corpus import Case
from responder.analyze.features import chars, model_text, words
from responder.analyze.model import FORMAT

C = 20.0  # weak regularisation: the corpus is clean, the features many and sparse


def _vectorizers() -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return (TfidfVectorizer(analyzer=words, sublinear_tf=True, min_df=1, dtype=np.float64),
            TfidfVectorizer(analyzer=chars, sublinear_tf=True, min_df=2, dtype=np.float64))


def _fit(docs: Sequence[str], labels: Sequence[str]) -> tuple[Any, Any, Any]:
    from scipy.sparse import hstack
    from sklearn.linear_model import LogisticRegression

    word_vec, char_vec = _vectorizers()
    x = hstack([word_vec.fit_transform(docs), char_vec.fit_transform(docs)]).tocsr()
    clf = LogisticRegression(C=C, max_iter=5000, tol=1e-6)
    clf.fit(x, list(labels))
    return word_vec, char_vec, clf


def _scores(fitted: tuple[Any, Any, Any], docs: Sequence[str]) -> np.ndarray[Any, Any]:
    from scipy.sparse import hstack

    word_vec, char_vec, clf = fitted
    x = hstack([word_vec.transform(docs), char_vec.transform(docs)]).tocsr()
    return np.asarray(clf.decision_function(x))


def _temperature(docs: Sequence[str], labels: Sequence[str], classes: Sequence[str]) -> float:
    """The temperature that minimises the log loss of held-out folds (grid, deterministic)."""
    from sklearn.model_selection import StratifiedKFold

    order = {c: i for i, c in enumerate(classes)}
    y = np.array([order[label] for label in labels])
    folds = min(5, int(np.bincount(y).min()))
    if folds < 2:  # a class too small to hold any out: leave the scores as they are
        return 1.0
    held = np.zeros((len(docs), len(classes)))
    for train_idx, test_idx in StratifiedKFold(n_splits=folds).split(docs, y):
        fitted = _fit([docs[i] for i in train_idx], [labels[i] for i in train_idx])
        fold_classes = list(fitted[2].classes_)
        scores = _scores(fitted, [docs[i] for i in test_idx])
        for j, c in enumerate(fold_classes):
            held[test_idx, order[c]] = scores[:, j]
    best, best_loss = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.05), np.log(5.0), 120)):
        scaled = held / t
        scaled -= scaled.max(axis=1, keepdims=True)
        log_probs = scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))
        loss = -float(log_probs[np.arange(len(y)), y].mean())
        if loss < best_loss:
            best, best_loss = float(t), loss
    return best


def train(cases: Sequence[Case]) -> dict[str, np.ndarray[Any, Any]]:
    """The arrays of a model trained on ``cases`` (what ``save`` writes), bit for bit the
    same on every run: one BLAS thread, so sums are never reordered."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _train(cases)


def _train(cases: Sequence[Case]) -> dict[str, np.ndarray[Any, Any]]:
    docs = [model_text(c.text) for c in cases]
    labels = [c.category for c in cases]
    word_vec, char_vec, clf = _fit(docs, labels)
    classes = [str(c) for c in clf.classes_]
    temperature = _temperature(docs, labels, classes)

    def names(vec: Any) -> np.ndarray[Any, Any]:
        vocab = vec.vocabulary_
        ordered = sorted(vocab, key=vocab.__getitem__)
        return np.array(ordered, dtype=str)

    return {
        "format": np.array(FORMAT),
        "classes": np.array(classes, dtype=str),
        "word_vocab": names(word_vec), "word_idf": word_vec.idf_.astype(np.float32),
        "char_vocab": names(char_vec), "char_idf": char_vec.idf_.astype(np.float32),
        "coef": clf.coef_.astype(np.float32), "intercept": clf.intercept_.astype(np.float32),
        "temperature": np.array(temperature),
    }


def save(arrays: dict[str, np.ndarray[Any, Any]], path: Path) -> None:
    """Write atomically: a reader never sees half a model."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        np.savez_compressed(out, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)
