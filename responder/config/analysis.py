"""The ``analysis:`` section: whether the learned model backs the patterns, and how sure it
must be (SPEC §3).

``model`` is ``true`` (the model shipped in the package), ``false`` (patterns only) or a
path to a model file written by ``responder train -o``, relative to the config file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from responder.config.reader import Section, type_name

DEFAULT_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True, slots=True)
class AnalysisSpec:
    model: bool = True
    model_path: Path | None = None  # None: the shipped model
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    model_line: int | None = None  # where `model:` is written, for check errors


def parse_analysis(section: Section | None) -> AnalysisSpec:
    if section is None:
        return AnalysisSpec()
    raw = section.raw("model", True)
    enabled, path = True, None
    if isinstance(raw, bool):
        enabled = raw
    elif isinstance(raw, str) and raw.strip():
        path = (section.base_dir / Path(raw).expanduser()).resolve()
    else:
        section.error(section.at("model"), f"{section.name('model')}: expected true, false or "
                                           f"the path of a model file, got {type_name(raw)}")
    minimum = section.number("min_confidence", DEFAULT_MIN_CONFIDENCE, minimum=0.0, maximum=1.0)
    at = section.at("model") if section.has("model") else None
    section.finish()
    return AnalysisSpec(model=enabled, model_path=path, min_confidence=minimum,
                        model_line=at.line if at is not None else None)
