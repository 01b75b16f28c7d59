"""The service's own log lines: one per record, in either format, never megabytes long."""

from __future__ import annotations

import io
import json
import logging

import pytest

from responder.logs import CLIP, MAX_LINE, setup_logging


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_huge_value_is_cut_so_the_line_stays_within_what_log_pipelines_take(
        fmt: str, restore_logging: object) -> None:
    out = io.StringIO()
    setup_logging(fmt, "info", stream=out)
    huge = "w" * 1_000_000
    log = logging.getLogger("responder.test")
    log.warning("alert %s: cannot be planned", huge, extra={"workflow": huge, "n": 3})
    log.info("small %s", "line", extra={"workflow": "etl-1"})
    first, second = out.getvalue().splitlines()
    assert len(first) < MAX_LINE
    assert f"{'w' * CLIP}… ({1_000_000 - CLIP} characters cut)" in first
    if fmt == "json":
        record = json.loads(first)
        assert record["n"] == 3 and record["workflow"].endswith("characters cut)")
        assert json.loads(second)["message"] == "small line"
        assert json.loads(second)["workflow"] == "etl-1"
    else:
        assert second.endswith("info responder.test: small line")
