"""The shipped ``log`` template's Python spelling is used only for the shipped file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

from responder.config.channels import ChannelSpec, LogSettings
from responder.errors import Origin
from responder.model import sample_group
from responder.notify import log_line
from responder.notify.render import Templates, build_context

REPO = Path(__file__).resolve().parents[2]
LOG = ChannelSpec("console", "log", Origin("test"), LogSettings(), 1.0, 1)


def test_the_hash_is_the_shipped_templates_and_the_deployed_copys() -> None:
    for path in (REPO / "templates/log.json.j2", REPO / "deploy/files/templates/log.json.j2"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == log_line.SHIPPED_SHA256, (
            f"{path} changed: change responder/notify/log_line.py with it, then its hash")


def test_an_operators_own_log_template_renders_through_jinja(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    path = templates / "log.json.j2"
    path.write_text(path.read_text().replace('"event": event,', '"event": event, "team": "db",'))
    mine = Templates.load(templates)
    context = build_context(sample_group(), runbook={"name": "r"})
    assert mine._sets["log"].fast is None
    assert mine.render(LOG, context).body["team"] == "db"
    assert "team" not in Templates.load(REPO / "templates").render(LOG, context).body


def test_what_the_function_declines_the_template_renders() -> None:
    shipped = Templates.load(REPO / "templates")
    context = build_context(sample_group(), runbook={"name": "r"})
    odd = dataclasses.replace(context, labels={**context.labels, "namespace": ["db"],
                                               "workflow": "etl"})
    assert log_line.line(odd) is None
    body = shipped.render(LOG, odd).body
    assert body == json.loads(shipped._sets["log"].parts["json"].render(odd.variables()))
    assert body["subject"] == "['db']/etl"
