"""The analyzer's contract: most specific match wins, Unknown rather than a guess, alert text
and workflow messages combined, bounded work on huge input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from responder.analyze import (
    CATEGORIES,
    DEFAULT_RETRYABLE,
    HEAD_CHARS,
    TAIL_CHARS,
    UNKNOWN,
    Analysis,
    Analyzer,
    bounded_text,
    required_literals,
)
from responder.config.patterns import PatternSpec, load_patterns
from responder.errors import Origin

REPO = Path(__file__).resolve().parents[2]


def spec(name: str, category: str, *signatures: str, regex: str | None = None,
         confidence: float = 0.8, retryable: bool | None = None) -> PatternSpec:
    return PatternSpec(name=name, category=category, signatures=signatures, regex=regex,
                       confidence=confidence, retryable=retryable,
                       recommendations=(f"do something about {name}",),
                       origin=Origin("test.yaml", 1))


SMALL = (
    spec("oom", "ResourceExhaustion", "OOMKilled", confidence=0.97),
    spec("exit-137", "ResourceExhaustion", regex=r"exit code:?\s*137\b", confidence=0.95),
    spec("refused", "Network", "connection refused", confidence=0.8),
    spec("traceback", "CodeDefect", "Traceback (most recent call last)", confidence=0.5),
    spec("deadline", "Timeout", "DeadlineExceeded", confidence=0.6),
    spec("ctx-deadline", "Network", "context deadline exceeded", confidence=0.6),
    spec("push", "Conflict", "failed to push some refs", confidence=0.9),
    spec("merge", "Conflict", "Merge conflict in", confidence=0.9, retryable=False),
    spec("image", "Configuration", "ImagePullBackOff", confidence=0.8),
    spec("hub-limit", "ExternalDependency", "toomanyrequests", confidence=0.95),
)


@pytest.fixture(scope="module")
def small() -> Analyzer:
    return Analyzer(SMALL)


@pytest.fixture(scope="module")
def shipped() -> Analyzer:
    return Analyzer(load_patterns([REPO / "rules/patterns.yaml"], display_base=REPO))


# -- precedence ------------------------------------------------------------------------
def test_the_more_confident_pattern_wins_wherever_it_appears(small: Analyzer) -> None:
    text = ("Traceback (most recent call last):\n  File \"app.py\", line 3\n"
            "requests.exceptions.ConnectionError: [Errno 111] Connection refused")
    got = small.analyze(text)
    assert (got.category, got.pattern, got.matched) == ("Network", "refused",
                                                        "Connection refused")


def test_rate_limit_inside_an_image_pull_error_beats_the_pull_error(small: Analyzer) -> None:
    got = small.analyze("ImagePullBackOff: 429 Too Many Requests - toomanyrequests: "
                        "You have reached your pull rate limit")
    assert got.category == "ExternalDependency"


def test_on_equal_confidence_the_longer_signature_wins(small: Analyzer) -> None:
    got = small.analyze("rpc error: code = DeadlineExceeded desc = context deadline exceeded")
    assert (got.pattern, got.category) == ("ctx-deadline", "Network")


def test_on_equal_confidence_and_length_the_pattern_written_first_wins() -> None:
    analyzer = Analyzer((spec("first", "Network", "boom!"), spec("second", "Timeout", "boom!")))
    assert analyzer.analyze("it went boom!").pattern == "first"


def test_regex_matches_compete_with_signatures_on_the_same_terms(small: Analyzer) -> None:
    assert small.analyze("Error (exit code 137)").pattern == "exit-137"
    assert small.analyze("OOMKilled (exit code 137)").pattern == "oom"


def test_signatures_are_case_insensitive(small: Analyzer) -> None:
    assert small.analyze("oomkilled").pattern == "oom"
    assert small.analyze("EXIT CODE 137").pattern == "exit-137"


# -- Unknown, retryable, the verdict -----------------------------------------------------
@pytest.mark.parametrize("text", ["", "Error (exit code 1)", "exit code 1", "exit code 1370",
                                  "child 'wf-123' failed", "Back-off restarting failed container"])
def test_text_that_decides_nothing_is_unknown_never_a_guess(small: Analyzer, text: str) -> None:
    assert small.analyze(text) == UNKNOWN


def test_unknown_is_not_retryable_and_has_no_pattern() -> None:
    assert (UNKNOWN.category, UNKNOWN.pattern, UNKNOWN.confidence, UNKNOWN.retryable,
            UNKNOWN.source) == ("Unknown", None, 0.0, False, "none")
    assert UNKNOWN.recommendations


def test_an_analyzer_without_patterns_says_unknown() -> None:
    assert Analyzer(()).analyze("OOMKilled") == UNKNOWN


def test_retryable_comes_from_the_category_unless_the_pattern_overrides_it(
        small: Analyzer) -> None:
    assert small.analyze("! [rejected] main -> main\nerror: failed to push some refs").retryable
    assert not small.analyze("CONFLICT (content): Merge conflict in values.yaml").retryable
    assert small.analyze("OOMKilled").retryable is DEFAULT_RETRYABLE["ResourceExhaustion"]


def test_the_fixed_categories_and_their_retry_defaults_follow_the_spec() -> None:
    assert CATEGORIES == ("ExternalDependency", "Network", "ResourceExhaustion",
                          "Infrastructure", "Timeout", "Configuration", "CodeDefect",
                          "Conflict", "Unknown")
    assert [c for c in CATEGORIES if DEFAULT_RETRYABLE[c]] == [
        "ExternalDependency", "Network", "Infrastructure", "Timeout", "Conflict"]


def test_the_verdict_carries_the_pattern_recommendations_and_matched_text(
        small: Analyzer) -> None:
    got = small.analyze("main: OOMKilled (exit code 137)", evidence="workflow")
    assert got == Analysis(category="ResourceExhaustion", pattern="oom", confidence=0.97,
                           retryable=False, recommendations=("do something about oom",),
                           matched="OOMKilled", source="pattern", evidence="workflow")


def test_to_dict_puts_the_cli_keys_first_then_how_it_was_decided(small: Analyzer) -> None:
    got = small.analyze("connection refused").to_dict()
    assert list(got) == ["category", "pattern", "confidence", "retryable", "recommendations",
                         "matched", "source", "evidence", "terms"]
    assert got["recommendations"] == ["do something about refused"]
    assert (got["source"], got["evidence"]) == ("pattern", "text")


def test_matched_text_keeps_the_original_case_even_after_unusual_lowercasing(
        small: Analyzer) -> None:
    # 'İ' lower-cases to two characters, shifting every offset after it
    got = small.analyze("İİİ pod failed: OOMKilled")
    assert got.pattern == "oom" and got.matched is not None
    assert got.matched.lower() == "oomkilled"


# -- alerts ------------------------------------------------------------------------------
def test_alert_text_comes_from_annotations_and_the_reason_label(small: Analyzer) -> None:
    got = small.analyze_alert({"alertname": "WorkflowFailed"},
                              {"summary": "wf failed", "description": "step hit OOMKilled"})
    assert (got.pattern, got.evidence) == ("oom", "annotations")
    got = small.analyze_alert({"reason": "ImagePullBackOff"}, {"summary": "wf failed"})
    assert (got.pattern, got.evidence) == ("image", "annotations")


def test_an_exit_code_137_label_reads_as_exit_code_137(small: Analyzer) -> None:
    got = small.analyze_alert({"exit_code": "137"}, {"summary": "workflow failed"})
    assert (got.category, got.pattern) == ("ResourceExhaustion", "exit-137")
    assert small.analyze_alert({"exit_code": "1"}, {"summary": "workflow failed"}) == UNKNOWN


def test_workflow_messages_win_over_vaguer_annotations_and_say_so(small: Analyzer) -> None:
    got = small.analyze_alert({}, {"description": "Traceback (most recent call last): ..."},
                              extra=["child 'wf-1' failed", "OOMKilled (exit code 137)"])
    assert (got.pattern, got.evidence, got.matched) == ("oom", "workflow", "OOMKilled")


def test_annotations_win_when_they_are_more_specific_than_the_workflow(
        small: Analyzer) -> None:
    got = small.analyze_alert({}, {"message": "OOMKilled"}, extra=["connection refused"])
    assert (got.pattern, got.evidence) == ("oom", "annotations")


def test_on_a_tie_the_workflow_own_words_win(small: Analyzer) -> None:
    got = small.analyze_alert({}, {"message": "OOMKilled"}, extra=["OOMKilled"])
    assert got.evidence == "workflow"


def test_an_alert_nothing_explains_is_unknown(small: Analyzer) -> None:
    assert small.analyze_alert({"alertname": "WorkflowFailed"}, {"summary": "it failed"},
                               extra=["Error (exit code 1)"]) == UNKNOWN


def test_shipped_patterns_read_argo_status_messages(shipped: Analyzer) -> None:
    expected = {
        "OOMKilled (exit code 137)": "ResourceExhaustion",
        "pod deleted": "Infrastructure",
        "Pod was active on the node longer than the specified deadline": "Timeout",
        "Step exceeded its deadline": "Timeout",
        "Error (exit code 1)": "Unknown",
    }
    assert {t: shipped.analyze(t).category for t in expected} == expected


# -- huge input --------------------------------------------------------------------------
def test_huge_input_is_cut_to_its_head_and_tail() -> None:
    text = "A" * HEAD_CHARS + "B" * 100_000 + "C" * TAIL_CHARS
    cut = bounded_text(text)
    assert cut.startswith("A" * HEAD_CHARS) and cut.endswith("C" * TAIL_CHARS)
    assert "B" not in cut
    assert bounded_text("short") == "short"


def test_a_cause_at_the_end_of_a_huge_log_is_found_and_the_middle_is_not_read(
        small: Analyzer) -> None:
    filler = "INFO processing batch 1234 of 99999, all good\n" * 50_000  # ~2.3 MB
    assert small.analyze(filler + "Killed: OOMKilled").pattern == "oom"
    assert small.analyze("OOMKilled\n" + filler).pattern == "oom"
    middle = filler + "OOMKilled\n" + filler
    assert small.analyze(middle) == UNKNOWN


# -- regex prefilter ---------------------------------------------------------------------
@pytest.mark.parametrize(("regex", "literals"), [
    (r"exit code:?\s*137\b", {"exit code"}),
    (r"\b5\d\d Server Error\b", {" server error"}),
    (r"(?:secrets?|configmaps?) \"[^\"]+\" not found", {"\" not found"}),
    (r"npm ERR! code E5\d\d", {"npm err! code e5"}),
    (r"(?:Timeout|Deadline)Exceeded", {"exceeded"}),
    (r"(?:Timeout|Deadline)\d+", {"timeout", "deadline"}),
    (r"\d+ Insufficient [\w./-]+", {" insufficient "}),
    (r"[0-9]+", None),
    (r"(?:foo|\d+)bar?", {"ba"}),
    (r"(?:foo|\d+)", None),
])
def test_each_regex_yields_the_literals_every_match_must_contain(
        regex: str, literals: set[str] | None) -> None:
    assert required_literals(regex) == (frozenset(literals) if literals else None)


def test_a_regex_without_a_required_literal_still_runs_on_every_text() -> None:
    analyzer = Analyzer((spec("digits", "CodeDefect", regex=r"\d{6}"),))
    assert analyzer.unfiltered_regexes == ("digits",)
    assert analyzer.analyze("build 123456 broke").pattern == "digits"


def test_a_regex_matches_within_one_line_like_grep() -> None:
    analyzer = Analyzer((spec("failed-test", "CodeDefect", regex=r"^FAILED \S+::\w+$"),))
    assert analyzer.analyze("collected 3 items\nFAILED tests/a.py::test_b\n").matched == \
        "FAILED tests/a.py::test_b"
    assert analyzer.analyze("FAILED tests/a.py\n::test_b") == UNKNOWN


def test_the_shipped_regexes_all_have_a_prefilter(shipped: Analyzer) -> None:
    assert shipped.unfiltered_regexes == ()


# -- properties --------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000))
def test_analysis_never_raises_and_always_names_a_known_category(text: str) -> None:
    analyzer = Analyzer(SMALL)
    got = analyzer.analyze(text)
    assert got.category in CATEGORIES
    assert (got.pattern is None) == (got.category == "Unknown")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    "OOMKilled", "exit code 137", "connection refused", "Traceback (most recent call last)",
    "context deadline exceeded", "DeadlineExceeded", "ImagePullBackOff", "toomanyrequests",
    "failed to push some refs", "all good", "exit code 1", "\n", "  ",
]), max_size=8).map("".join))
def test_adding_a_pattern_that_does_not_match_never_changes_the_verdict(text: str) -> None:
    irrelevant = spec("never", "Conflict", "zq-never-seen-zq", confidence=1.0,
                      regex=r"zq-\d+-never")
    before = Analyzer(SMALL).analyze(text)
    after = Analyzer((irrelevant, *SMALL)).analyze(text)
    assert after == before


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200))
def test_surrounding_text_never_hides_a_confident_signature(before: str, after: str) -> None:
    got = Analyzer(SMALL).analyze(f"{before} OOMKilled {after}")
    assert got.category == "ResourceExhaustion"
    assert got.confidence >= 0.95
