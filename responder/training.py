"""``responder train``: rebuild the analysis model from the corpus plus operators' corrections.

Reads ``rules/corpus`` (train split to learn, holdout split to measure) and the corrections
in the journal, trains (``responder.analyze.train``), and reports the holdout accuracy of
the configured analysis before and with the new model after, so an operator sees what the
new model changes before pointing ``analysis.model`` at it. Corrections weigh three times
a corpus message: each is one operator's explicit word on text the model got wrong.
``responder analyze`` reads the corrections through here too, so it answers as the service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from responder.analyze import Analyzer, Corrections, Model, load_model
from responder.analyze.corpus import Case, Score, load_split, score
from responder.analyze.patterns import DEFAULT_RETRYABLE
from responder.config.main import Config
from responder.journal import Journal, JournalUnavailable, JournalVersionError, SqliteJournal

CORRECTION_WEIGHT = 3
log = logging.getLogger("responder.training")


def corpus_dir(config: Config, given: str | None) -> Path:
    """``--corpus``, else ``rules/corpus`` beside the config, else the one in the source tree."""
    if given:
        return Path(given)
    beside = config.base_dir / "rules/corpus"
    if beside.is_dir():
        return beside
    return Path(__file__).resolve().parents[1] / "rules/corpus"


def read_corrections(config: Config) -> list[tuple[str, str, str]]:
    """The journal's corrections, read only (none when there is no journal yet, with a
    warning when it cannot be read)."""
    journal: Journal
    if config.postgres is not None:
        from responder.journal.postgres import PostgresJournal

        journal = PostgresJournal(config.postgres.dsn)
    elif config.state_path.exists():
        journal = SqliteJournal(config.state_path)
    else:
        return []

    async def read() -> list[tuple[str, str, str]]:
        await journal.open_read_only()
        try:
            return await journal.corrections()
        finally:
            await journal.close()

    try:
        return asyncio.run(read())
    except (JournalUnavailable, JournalVersionError) as exc:
        log.warning("operators' corrections not read: %s", exc)
        return []


def corrections_of(config: Config) -> Corrections:
    return Corrections((key, category) for key, category, _ in read_corrections(config))


@dataclass(frozen=True, slots=True)
class TrainReport:
    corpus: Path
    train_cases: int
    corrections: int
    holdout_before: Score
    holdout_after: Score
    corrections_after: Score | None
    seconds: float


def measure(analyzer: Analyzer, cases: list[Case]) -> Score:
    return score((c, analyzer.analyze(c.text)) for c in cases)


def train_model(config: Config, analyzer: Analyzer, output: Path,
                corpus: Path) -> TrainReport:
    from responder.analyze.train import save, train

    started = time.perf_counter()
    learn = load_split(corpus, "train")
    holdout = load_split(corpus, "holdout")
    corrected = [Case(text, category, DEFAULT_RETRYABLE[category], "correction")
                 for _key, category, text in read_corrections(config)]
    arrays = train(learn + corrected * CORRECTION_WEIGHT)
    output.parent.mkdir(parents=True, exist_ok=True)
    save(arrays, output)
    model: Model = load_model(output)
    after = Analyzer(analyzer.patterns, model=model,
                     min_confidence=config.analysis.min_confidence)
    return TrainReport(
        corpus=corpus, train_cases=len(learn), corrections=len(corrected),
        holdout_before=measure(analyzer, holdout), holdout_after=measure(after, holdout),
        corrections_after=measure(after, corrected) if corrected else None,
        seconds=time.perf_counter() - started)
