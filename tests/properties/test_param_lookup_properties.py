"""Property-based: a runbook parameter made of plain text and ``{{ labels.X }}`` /
``{{ annotations.X }}`` is looked up without Jinja (``plan._render``); for any such source
and any labels, what it gives, or the plan error it raises, is what Jinja gives."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from responder.act.plan import PlanError, _lookups, _render
from responder.config.runbooks import Param
from responder.templating import new_environment

ENV = new_environment()
NAMES = st.sampled_from(["namespace", "workflow", "cronworkflow", "items", "keys", "x_1"])
TEXT = st.sampled_from(["", "cronworkflow:", "/", " ", "  a b ", "}}", "{", "%}", "{{",
                        "{%", "{#", "ünï", "\n", "-"])
LOOKUP = st.builds(lambda scope, name, pad: f"{{{{{pad}{scope}.{name}{pad}}}}}",
                   st.sampled_from(["labels", "annotations"]), NAMES,
                   st.sampled_from(["", " ", "  "]))
SOURCES = st.lists(st.one_of(TEXT, LOOKUP), min_size=1, max_size=6).map("".join)
VALUES = st.one_of(st.sampled_from(["", "taskmaster", " padded ", "a/b", "{{ 1 }}", "ü"]),
                   st.integers(0, 3))
MAPS = st.dictionaries(NAMES, VALUES, max_size=4)
RUNBOOK: Any = SimpleNamespace(name="rb")


def jinja(source: str, context: dict[str, Any]) -> str | None:
    try:
        return ENV.from_string(source).render(context).strip()
    except Exception:
        return None


@settings(max_examples=400, deadline=None)
@given(SOURCES, MAPS, MAPS)
def test_a_looked_up_parameter_renders_as_jinja_does(
        source: str, labels: dict[str, Any], annotations: dict[str, Any]) -> None:
    try:
        template = ENV.from_string(source)
    except Exception:
        return   # not a template at all: the config reader refuses it at load
    context = {"labels": labels, "annotations": annotations}
    expected = jinja(source, context)
    try:
        got: str | None = _render(RUNBOOK, "actions[0].argo.retry.workflow",
                                  Param(source, template), context)
    except PlanError:
        got = None
    assert got == expected


def test_only_text_and_lookups_are_looked_up() -> None:
    assert _lookups("cronworkflow:{{ labels.namespace }}/{{labels.cronworkflow}}") == (
        "cronworkflow:", ("labels", "namespace"), "/", ("labels", "cronworkflow"))
    assert _lookups("{{ labels.workflow | lower }}") is None
    assert _lookups("{{ labels.items }}") is None          # a dict method: Jinja's answer
    assert _lookups("plain text") is None                   # nothing to look up
    assert _lookups("{% if x %}{{ labels.a }}{% endif %}") is None
