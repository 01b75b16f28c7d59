"""The learned model behind the patterns, the corrections in front of them, and bad input.

Through the loaders the service and ``responder analyze`` use (``load_runtime``,
``load_analyzer``), with the shipped patterns and the shipped model.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from responder.analyze import (
    ADVICE,
    CATEGORIES,
    Analyzer,
    Corrections,
    ModelError,
    load_model,
    normalize,
    shipped_model_path,
    text_key,
)
from responder.analyze.corpus import Case
from responder.analyze.train import train
from responder.load import load_analyzer, load_runtime
from tests.conftest import REPO

RESPONDER = str(Path(sys.executable).with_name("responder"))
NO_PATTERN = "the build agent vanished mid-run and the job was lost"


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return load_analyzer(REPO / "responder.yaml")[1]


def test_text_no_pattern_decides_gets_the_models_calibrated_verdict_and_terms(
        analyzer: Analyzer) -> None:
    got = analyzer.analyze(NO_PATTERN)
    assert (got.category, got.pattern, got.source) == ("Infrastructure", None, "model")
    assert 0.5 <= got.confidence <= 1.0 and got.retryable
    assert "agent" in got.terms and "lost" in got.terms
    assert got.recommendations[0] == ADVICE["Infrastructure"]
    assert any("POST /api/v1/alerts/{id}/category" in r for r in got.recommendations)


def test_a_model_verdict_below_min_confidence_is_unknown(
        write_config: Callable[..., Path]) -> None:
    _, strict = load_analyzer(write_config({"analysis": {"min_confidence": 0.999}}))
    got = strict.analyze(NO_PATTERN)
    assert (got.category, got.source, got.retryable) == ("Unknown", "none", False)
    assert got.recommendations


def test_model_false_leaves_the_patterns_alone(write_config: Callable[..., Path]) -> None:
    _, patterns_only = load_analyzer(write_config({"analysis": {"model": False}}))
    assert patterns_only.model is None
    assert patterns_only.analyze(NO_PATTERN).source == "none"
    assert patterns_only.analyze("OOMKilled").pattern == "oom-killed"


def test_text_that_says_nothing_is_unknown_even_with_the_model(analyzer: Analyzer) -> None:
    for text in ["the quick brown fox", "Workflow etl-7 failed in namespace batch", "ok",
                 "the flux capacitor made a noise"]:
        assert analyzer.analyze(text).category == "Unknown", text


@pytest.mark.parametrize("text", [
    "", "\x00" * 1000, "OOM\x00Killed \x00\x00 exit code 137", "\udcff\udcfe broken \ud800",
    "\x89PNG\r\n\x1a\n" + "".join(chr(i) for i in range(256)) * 40,
    "connection refused " * 600_000,            # ~11 MB
    "x" * 10_000_000 + "\nOOMKilled",
])
def test_bad_input_gets_a_verdict_never_an_exception(analyzer: Analyzer, text: str) -> None:
    got = analyzer.analyze(text)
    assert got.category in CATEGORIES and got.recommendations
    got = analyzer.analyze_alert({"reason": text}, {"description": text}, [text])
    assert got.category in CATEGORIES


def test_normalize_masks_what_changes_between_two_occurrences_of_one_failure() -> None:
    one = "2024-05-03T10:11:12.345Z pod etl-7c9f5d8b4-x2k8d on 10.0.3.4:8080 failed after 3 tries"
    two = "2024-06-01T00:00:01Z pod etl-5d2a1f9c3-q9w1z on 10.9.9.9:9090 failed after 12 tries"
    assert normalize(one) == normalize(two)
    assert text_key(one) == text_key(two)
    assert text_key(one) != text_key("pod etl-7c9f5d8b4-x2k8d on 10.0.3.4 succeeded")


def test_a_correction_wins_over_patterns_and_model_for_the_same_text(
        analyzer: Analyzer) -> None:
    corrections = Corrections([(text_key("OOMKilled in pod a-1b2c3d4e5-xyz12"), "Conflict")])
    got = analyzer.analyze("OOMKilled in pod a-9f8e7d6c5-abc98", corrections=corrections)
    assert (got.category, got.source, got.pattern, got.retryable) == (
        "Conflict", "feedback", None, True)
    assert analyzer.analyze("OOMKilled", corrections=corrections).pattern == "oom-killed"


def test_training_is_deterministic() -> None:
    cases = [Case(t, c, False, "t") for t, c in [
        ("connection refused by upstream", "Network"), ("dial tcp: i/o timeout", "Network"),
        ("OOMKilled exit 137", "ResourceExhaustion"), ("no space left on device",
                                                       "ResourceExhaustion"),
        ("assertion failed in test_x", "CodeDefect"), ("panic: nil map", "CodeDefect"),
        ("exit status 1", "Unknown"), ("job failed", "Unknown"),
        ("the object has been modified", "Conflict"), ("database is locked", "Conflict"),
    ] * 2]
    one, two = train(cases), train(cases)
    assert one.keys() == two.keys()
    assert all(np.array_equal(one[k], two[k]) for k in one)


def test_a_corrupt_or_missing_model_is_a_check_error_with_its_path_and_the_service_falls_back(
        tmp_path: Path, write_config: Callable[..., Path],
        caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "broken.npz").write_bytes(b"not a model at all")
    for name in ("broken.npz", "missing.npz"):
        config = write_config({"analysis": {"model": name}})
        result = subprocess.run([RESPONDER, "check", "-c", str(config)], capture_output=True,
                                text=True, timeout=60, check=False)
        assert result.returncode == 1
        assert any(line.startswith(f"{config}:") and f"analysis.model: {name}" in line
                   for line in result.stderr.splitlines()), result.stderr
        with caplog.at_level(logging.WARNING, logger="responder.load"):
            runtime = load_runtime(config)
        assert runtime.analyzer.model is None and runtime.model_error
        assert name in caplog.text and "patterns only" in caplog.text
        assert runtime.analyzer.analyze("OOMKilled").pattern == "oom-killed"


def test_analyze_json_prints_the_verdict_the_service_would_give(analyzer: Analyzer) -> None:
    result = subprocess.run([RESPONDER, "analyze", "--json", NO_PATTERN], capture_output=True,
                            text=True, timeout=60, check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == analyzer.analyze(NO_PATTERN).to_dict()
    binary = subprocess.run([RESPONDER, "analyze", "--json"], input=b"\xff\xfe\x00OOMKilled\x80",
                            capture_output=True, timeout=60, check=False, cwd=REPO)
    assert binary.returncode == 0
    assert json.loads(binary.stdout)["category"] == "ResourceExhaustion"


def test_train_rebuilds_a_model_from_a_corpus_and_reports_holdout_before_and_after(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    corpus = tmp_path / "corpus"
    for split, rows in {"train": [("connection refused", "Network"),
                                  ("no space left on device", "ResourceExhaustion"),
                                  ("exit status 1", "Unknown")] * 4,
                        "holdout": [("ECONNREFUSED 10.0.0.1:5432", "Network")]}.items():
        (corpus / split).mkdir(parents=True)
        (corpus / split / "t.yaml").write_text(json.dumps(
            {"source": "t", "cases": [{"text": t, "category": c} for t, c in rows]}))
    config = write_config()
    out = tmp_path / "model.npz"
    result = subprocess.run([RESPONDER, "train", "-c", str(config), "--corpus", str(corpus),
                             "-o", str(out)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "before:" in result.stdout and "after:" in result.stdout
    assert f"wrote:        {out}" in result.stdout
    model = load_model(out)
    assert set(model.categories) == {"Network", "ResourceExhaustion", "Unknown"}
    assert load_model(shipped_model_path()).categories == tuple(sorted(CATEGORIES))


def test_a_model_file_holding_pickles_is_refused_without_suggesting_to_load_it_unsafely(
        tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(path, format=np.array(["x"], dtype=object))
    with pytest.raises(ModelError) as caught:
        load_model(path)
    message = str(caught.value)
    assert str(path) in message and "pickled objects, which are never loaded" in message
    assert "allow_pickle" not in message and "unsafely" not in message
