"""Property-based: a runbook file mutated at random loads, or fails with errors that are
each one line ``file:line: message``; never an exception of another kind."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from responder.config.runbooks import load_runbooks_text
from responder.errors import ConfigErrors

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "rules/runbooks").glob("*.yaml"))
CHANNELS = {"console", "oncall", "pager"}
ONE_LINE = re.compile(r"^rb\.yaml:[1-9][0-9]*: [^\n]+$")
# What hands and editors put into YAML files by mistake.
NOISE = st.sampled_from(["\t", "\x07", "\x00", "\x1b", ":", "- ", "{", "}", "[", "]", "'",
                         '"', "&a", "*a", "!!int ", "? ", "|", ">", "#", "%", "@", "`",
                         "{{", "}}", "{% if %}", "| nope }}", "\u2028", "\ufeff", "é", "  ",
                         "\n", "2001-02-30", "~", "<<: *a"])


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SHIPPED)).read_text()
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "duplicate", "swap", "indent"]))
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        if kind == "insert":
            at = draw(st.integers(0, len(line)))
            lines[i] = line[:at] + draw(NOISE) + line[at:]
        elif kind == "delete" and len(line) > 1:
            at = draw(st.integers(0, len(line) - 2))
            lines[i] = line[:at] + line[at + draw(st.integers(1, 3)):]
        elif kind == "duplicate":
            lines.insert(i, line)
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "indent":
            lines[i] = draw(st.sampled_from(["  ", "\t", " "])) + line
    return "".join(lines)


@settings(max_examples=200, deadline=None)
@given(mutated())
def test_a_mutated_runbook_file_loads_or_fails_with_file_line_errors(text: str) -> None:
    try:
        load_runbooks_text(text, channels=CHANNELS, path="rb.yaml")
    except ConfigErrors as exc:
        assert exc.errors
        for error in exc.errors:
            assert ONE_LINE.match(str(error)), repr(str(error))
