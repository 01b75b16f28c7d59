"""Loading rules/patterns.yaml: every mistake reported at once, each with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.config.patterns import CATEGORIES, PatternSpec, load_patterns
from responder.errors import ConfigErrors, Origin

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
patterns:
  - name: oom
    category: ResourceExhaustion
    confidence: 0.95
    signatures: [OOMKilled]
    recommendations: [raise the memory limit]
  - name: refused
    category: Network
    confidence: 0.8
    regex: 'dial tcp \\S+: connect: connection refused'
    retryable: false
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(paths: list[Path], base: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        load_patterns(paths, display_base=base)
    return [str(e) for e in caught.value.errors]


def test_a_valid_file_loads_into_frozen_specs_with_their_origin(tmp_path: Path) -> None:
    path = write(tmp_path, "patterns.yaml", GOOD)
    specs = load_patterns([path], display_base=tmp_path)
    assert specs == (
        PatternSpec(name="oom", category="ResourceExhaustion", signatures=("OOMKilled",),
                    regex=None, confidence=0.95, retryable=None,
                    recommendations=("raise the memory limit",),
                    origin=Origin("patterns.yaml", 2)),
        PatternSpec(name="refused", category="Network", signatures=(),
                    regex="dial tcp \\S+: connect: connection refused", confidence=0.8,
                    retryable=False, recommendations=(), origin=Origin("patterns.yaml", 7)),
    )


def test_paths_are_shown_in_full_without_a_display_base(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "patterns:\n  - name: x\n    category: Nope\n"
                                     "    confidence: 1\n    signatures: [abc]\n")
    with pytest.raises(ConfigErrors) as caught:
        load_patterns([path])
    assert str(caught.value).startswith(f"{path}:3: ")


def test_every_error_of_a_file_is_reported_at_once_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "patterns.yaml", """\
patterns:
  - name: bad-category
    category: Flaky
    confidence: 0.5
    signatures: [abc]
  - name: bad-regex
    category: Network
    confidence: 0.5
    regex: 'connect(ion refused'
  - name: too-sure
    category: Network
    confidence: 1.5
    signatures: [abc]
  - name: nothing-to-match
    category: Network
    confidence: 0.5
    recommendations: [x]
  - name: typo
    category: Network
    confidence: 0.5
    signatures: [abc]
    recomendations: [x]
  - name: wrong-types
    category: Network
    confidence: high
    retryable: "yes"
    signatures: [abc, 42]
""")
    got = errors_of([path], tmp_path)
    assert got == [
        "patterns.yaml:3: pattern 'bad-category'.category: unknown category 'Flaky' "
        f"(one of {', '.join(CATEGORIES)})",
        "patterns.yaml:9: pattern 'bad-regex'.regex: invalid regular expression: "
        "missing ), unterminated subpattern at position 7",
        "patterns.yaml:12: pattern 'too-sure'.confidence: must be at most 1.0, got 1.5",
        "patterns.yaml:14: pattern 'nothing-to-match': needs signatures or a regex",
        "patterns.yaml:22: pattern 'typo'.recomendations: unknown key",
        "patterns.yaml:25: pattern 'wrong-types'.confidence: expected number, got string",
        "patterns.yaml:26: pattern 'wrong-types'.retryable: expected true or false, got string",
        "patterns.yaml:27: pattern 'wrong-types'.signatures[1]: expected string, got number",
    ]


def test_duplicate_names_across_files_name_both_places(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", GOOD)
    second = write(tmp_path, "b.yaml", "patterns:\n  - name: other\n    category: Timeout\n"
                                       "    confidence: 0.9\n    signatures: [deadline]\n"
                                       "  - name: oom\n    category: Timeout\n"
                                       "    confidence: 0.9\n    signatures: [deadline]\n")
    assert errors_of([first, second], tmp_path) == [
        "b.yaml:6: pattern 'oom': duplicate name (first defined at a.yaml:2)"]


def test_errors_from_several_files_are_all_reported(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "patterns:\n  - name: a\n    category: Network\n"
                                      "    signatures: [abc]\n")
    second = write(tmp_path, "b.yaml", "patterns: [\n")
    got = errors_of([first, second], tmp_path)
    assert got[0] == "a.yaml:2: pattern 'a'.confidence: required"
    assert got[1].startswith("b.yaml:2: YAML syntax:")
    assert len(got) == 2


def test_patterns_that_would_match_everything_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", """\
patterns:
  - name: empty-regex
    category: Network
    confidence: 0.5
    regex: '(timeout)?'
  - name: short-signature
    category: Network
    confidence: 0.5
    signatures:
      - connection refused
      - "e"
  - name: empty-list
    category: Network
    confidence: 0.5
    signatures: []
""")
    assert errors_of([path], tmp_path) == [
        "p.yaml:5: pattern 'empty-regex'.regex: matches the empty string, so it would "
        "match any text",
        "p.yaml:11: pattern 'short-signature'.signatures[1]: 'e' is too short "
        "(at least 3 characters)",
        "p.yaml:15: pattern 'empty-list'.signatures: empty list",
    ]


def test_the_file_must_hold_a_patterns_list_and_nothing_else(tmp_path: Path) -> None:
    wrong_top = write(tmp_path, "a.yaml", "pattern:\n  - name: x\n")
    not_a_list = write(tmp_path, "b.yaml", "patterns:\n  name: x\n")
    empty = write(tmp_path, "c.yaml", "")
    assert errors_of([wrong_top, not_a_list, empty], tmp_path) == [
        "a.yaml:1: pattern: unknown key",
        "a.yaml:1: patterns: required",
        "b.yaml:1: patterns: expected a list, got mapping",
        "c.yaml:1: empty file: expected a `patterns:` list",
    ]


def test_an_unreadable_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    got = errors_of([tmp_path / "missing.yaml"], tmp_path)
    assert len(got) == 1 and got[0].startswith("missing.yaml: cannot read")


def test_the_shipped_library_loads_and_every_pattern_has_recommendations() -> None:
    specs = load_patterns([REPO / "rules/patterns.yaml"], display_base=REPO)
    assert 80 <= len(specs) <= 150
    assert {s.category for s in specs} == set(CATEGORIES) - {"Unknown"}
    assert [s.name for s in specs if not s.recommendations] == []
