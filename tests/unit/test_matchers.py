"""Runbook matchers behave exactly like Alertmanager's: syntax, escapes, anchoring, absence."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from responder.config.runbooks import Matcher, parse_matcher

LABELS = {"alertname": "WorkflowFailed", "namespace": "ci-builds", "workflow": "etl-abc",
          "quote": 'say "hi"', "multi": "line one\nline two", "path": "C:\\temp",
          "case": "TaskMaster", "newline": "end\n"}


@pytest.mark.parametrize(("text", "expected"), [
    ('alertname="WorkflowFailed"', True),
    ('alertname="WorkflowFail"', False),
    ('alertname!="WorkflowFailed"', False),
    ('namespace=~"taskmaster|ci-.*"', True),
    ('namespace!~"taskmaster|ci-.*"', False),
    # Regexes are anchored at both ends: a substring is not a match.
    ('namespace=~"ci"', False),
    ('namespace=~"builds"', False),
    ('namespace=~"ci-build"', False),
    ('namespace=~".*builds"', True),
    ('namespace!~"ci"', True),
    # A missing label is the empty string.
    ('cronworkflow!=""', False),
    ('cronworkflow=""', True),
    ('cronworkflow=~".*"', True),
    ('cronworkflow=~".+"', False),
    ('cronworkflow!~"nightly"', True),
    ('workflow!=""', True),
    # Unquoted values, whitespace around the tokens.
    ("alertname=WorkflowFailed", True),
    ("  alertname =  WorkflowFailed  ", True),
    ("namespace=~ci-.*", True),
    # Escapes inside quotes: \" \\ \n; an unknown escape keeps its backslash.
    ('quote="say \\"hi\\""', True),
    ('multi="line one\\nline two"', True),
    ('path="C:\\\\temp"', True),
    ('path="C:\\temp"', True),
    # Go-style leading flags.
    ('case=~"(?i)taskmaster"', True),
    ('case=~"taskmaster"', False),
    # Go's $ is the end of the text, not before a final newline.
    ('newline=~"end"', False),
    ('newline=~"end\\n"', True),
])
def test_matcher_agrees_with_alertmanager_on(text: str, expected: bool) -> None:
    assert parse_matcher(text).matches(LABELS) is expected


@pytest.mark.parametrize(("text", "name", "op", "value"), [
    ('alertname="WorkflowFailed"', "alertname", "=", "WorkflowFailed"),
    ("a!=b", "a", "!=", "b"),
    ("a=~b", "a", "=~", "b"),
    ("a!~b", "a", "!~", "b"),
    ("a==b", "a", "=", "=b"),
    ('a=""', "a", "=", ""),
    ("a=", "a", "=", ""),
    ("a = b c", "a", "=", "b c"),
    ('a="x\\"y"', "a", "=", 'x"y'),
    ('a="x\\\\"', "a", "=", "x\\"),
    ('a="x\\n"', "a", "=", "x\n"),
    ('a="\\d+"', "a", "=", "\\d+"),
    ("a=x\\", "a", "=", "x\\"),
    ("__name__:x=1", "__name__:x", "=", "1"),
])
def test_parse_matcher_reads_name_operator_and_value(text: str, name: str, op: str,
                                                     value: str) -> None:
    assert parse_matcher(text) == Matcher(name, op, value)


@pytest.mark.parametrize(("text", "reason"), [
    ("alertname", "expected a label name"),
    ('="x"', "expected a label name"),
    ("1abc=x", "expected a label name"),
    ("a-b=x", "expected a label name"),
    ("a<>x", "expected a label name"),
    ('a="x', "missing closing double quote"),
    ('a=x"', "unescaped double quote"),
    ('a="x"y"', "unescaped double quote"),
    ('a=="x"', "unescaped double quote"),
    ('a=~"("', "bad regex '('"),
    ('a!~"[z-a]"', "bad regex"),
])
def test_parse_matcher_rejects_with_a_readable_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_matcher(text)


def test_a_matcher_prints_as_alertmanager_syntax() -> None:
    assert str(Matcher("quote", "=", 'a "b"\\\n')) == 'quote="a \\"b\\"\\\\\\n"'


label_values = st.text(max_size=12)


@given(value=label_values, actual=label_values)
def test_regex_of_an_escaped_literal_matches_like_equality(value: str, actual: str) -> None:
    labels = {"l": actual}
    for candidate in ({"l": value}, labels, {}):
        assert Matcher("l", "=~", re.escape(value)).matches(candidate) == \
            Matcher("l", "=", value).matches(candidate)
        assert Matcher("l", "!~", re.escape(value)).matches(candidate) == \
            Matcher("l", "!=", value).matches(candidate)


@given(value=label_values, actual=label_values)
def test_negated_operators_are_exact_negations(value: str, actual: str) -> None:
    labels = {"l": actual}
    assert Matcher("l", "!=", value).matches(labels) != Matcher("l", "=", value).matches(labels)
    pattern = re.escape(value) + ".*"
    assert Matcher("l", "!~", pattern).matches(labels) != \
        Matcher("l", "=~", pattern).matches(labels)


@given(value=st.text(max_size=20), op=st.sampled_from(["=", "!="]))
def test_printing_then_parsing_gives_the_same_matcher(value: str, op: str) -> None:
    matcher = Matcher("label_1", op, value)
    assert parse_matcher(str(matcher)) == matcher


@given(actual=st.text(max_size=12), pattern=st.sampled_from(
    ["a.*", "(?i)ab|c", "[[:alpha:]]+", r"\pL\d?", "(?s:.)*", "é+", "", r"\Qa.b\E"]))
def test_the_fast_re2_path_agrees_with_the_bindings_public_api(actual: str,
                                                               pattern: str) -> None:
    import re2

    expected = re2.compile(f"^(?:{pattern})$").search(actual) is not None
    assert Matcher("l", "=~", pattern).matches({"l": actual}) is expected
    assert Matcher("l", "=~", pattern).matches({"l": actual}) is expected   # remembered
