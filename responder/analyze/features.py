"""The words and character n-grams the model reads, shared by training and inference.

One function for both, so a model can never be served with features it was not trained
on. Text is bounded first (the model reads at most ``MODEL_HEAD + MODEL_TAIL`` characters:
causes sit at the end of logs, sometimes in a status line at the start), lower-cased, and
its volatile parts masked (numbers, hashes, ids), so that ``pod-7f9c-x2k8d`` and
``pod-5d2a-q9w1z`` read the same and the model learns wording, not names.
"""

from __future__ import annotations

import re
from itertools import pairwise

MODEL_HEAD = 256
MODEL_TAIL = 1024

_HEXISH = re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{7,}\b")
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"[a-z][a-z0-9_]*(?:[.'][a-z0-9_]+)*")
CHAR_SIZES = (3, 4, 5)


def model_text(text: str) -> str:
    """``text`` bounded to what the model reads, lower-cased, hashes and numbers masked."""
    if len(text) > MODEL_HEAD + MODEL_TAIL:
        text = f"{text[:MODEL_HEAD]}\n{text[-MODEL_TAIL:]}"
    text = _HEXISH.sub("h", text.lower())
    return _DIGITS.sub("0", text)


def tokens(text: str) -> list[str]:
    """The words of already ``model_text``-ed text, in order."""
    return _WORD.findall(text)


def words(text: str) -> list[str]:
    """Word unigrams and bigrams of already ``model_text``-ed text."""
    found = tokens(text)
    return found + [f"{a} {b}" for a, b in pairwise(found)]


def token_grams(token: str) -> list[str]:
    """Character 3- to 5-grams of one word padded with spaces (like char_wb)."""
    padded = f" {token} "
    return [padded[i:i + size] for size in CHAR_SIZES for i in range(len(padded) - size + 1)]


def chars(text: str) -> list[str]:
    """The character n-grams of each distinct word of already ``model_text``-ed text."""
    grams: list[str] = []
    for token in sorted(set(tokens(text))):  # sorted: the same matrix under any hash seed
        grams.extend(token_grams(token))
    return grams
