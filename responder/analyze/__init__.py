"""Failure analysis: failure text -> ``Analysis`` (category, confidence, retryable, advice).

Operators' corrections first, exact patterns next, a learned model behind them (see
``analyzer``). Pure: nothing here imports asyncio or aiohttp or does I/O after loading.
"""

from responder.analyze.analyzer import ADVICE, Analyzer, clean
from responder.analyze.feedback import Corrections, normalize, text_key
from responder.analyze.model import Model, ModelError, load_model, shipped_model_path
from responder.analyze.patterns import (
    CATEGORIES,
    DEFAULT_RETRYABLE,
    HEAD_CHARS,
    TAIL_CHARS,
    UNKNOWN,
    Analysis,
    PatternAnalyzer,
    alert_text,
    bounded_text,
    required_literals,
)

__all__ = ["ADVICE", "CATEGORIES", "DEFAULT_RETRYABLE", "HEAD_CHARS", "TAIL_CHARS", "UNKNOWN",
           "Analysis", "Analyzer", "Corrections", "Model", "ModelError", "PatternAnalyzer",
           "alert_text", "bounded_text", "clean", "load_model", "normalize",
           "required_literals", "shipped_model_path", "text_key"]
