"""Property-based: whatever a webhook body holds, the decoder and the HTTP endpoint answer
with a verdict (200, 400, 413; 503 only for the journal) and never lose a valid alert that
shares a payload with invalid ones."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from responder.app import create_app
from responder.load import load_runtime
from responder.model import DecodeError, decode_group
from tests.conftest import TOKEN

PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1,
                max_size=20)
# Ordinary label sets, and huge ones (built, not drawn one by one: drawing 2,000 keys
# would make generation, not the responder, the thing being measured).
label_sets = st.dictionaries(names, text, max_size=6) | st.integers(200, 2000).map(
    lambda n: {f"label_{i}": f"value-{i}-ü\u2028" for i in range(n)})
json_scalars = (st.none() | st.booleans() | st.integers()
                | st.floats(allow_nan=False, allow_infinity=False) | text)
wrong = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(text, inner, max_size=3), max_leaves=6)
not_a_string_map = (st.none() | st.booleans() | st.integers() | text | st.lists(text, max_size=2)
                    | st.dictionaries(names, st.integers() | st.none() | st.lists(text),
                                      min_size=1, max_size=2))
WRONG_FIELDS = {
    "labels": not_a_string_map,
    "annotations": not_a_string_map,
    "status": st.sampled_from(["Firing", "", "pending", "FIRING"]) | st.integers() | st.none(),
    "startsAt": st.integers() | st.none() | st.sampled_from(["yesterday", "", "2026-13-01"]),
    "endsAt": st.integers() | st.sampled_from(["soon", "2026-02-30T00:00:00Z"]),
}


@st.composite
def valid_alerts(draw: st.DrawFn) -> dict[str, Any]:
    labels = dict(draw(label_sets))
    labels["alertname"] = draw(names)
    return {"status": draw(st.sampled_from(["firing", "resolved"])), "labels": labels,
            "annotations": draw(st.dictionaries(names, text, max_size=4)),
            "startsAt": draw(st.sampled_from(["2026-11-28T10:00:00Z",
                                              "2026-11-28T10:00:00.123456789+02:00"])),
            "generatorURL": draw(text), "fingerprint": draw(st.text("0123456789abcdef",
                                                                    min_size=16, max_size=16))}


@st.composite
def invalid_alerts(draw: st.DrawFn) -> Any:
    """Alerts that are structured but wrong: each breaks one field's type or value."""
    field = draw(st.sampled_from([*WRONG_FIELDS, "whole"]))
    if field == "whole":
        return draw(json_scalars | st.lists(wrong, max_size=2))
    alert = draw(valid_alerts())
    alert[field] = draw(WRONG_FIELDS[field])
    return alert


@st.composite
def mixed_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], list[int]]:
    """A payload mixing valid and invalid alerts, and the indices of the valid ones."""
    kinds = draw(st.lists(st.booleans(), min_size=1, max_size=6))
    alerts = [draw(valid_alerts() if ok else invalid_alerts()) for ok in kinds]
    status = draw(st.sampled_from(["firing", "resolved"]))
    envelope = {"version": "4", "groupKey": draw(text), "status": status, "receiver": draw(text),
                "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                "externalURL": draw(text), "alerts": alerts}
    # An unknown extra key is ignored; one named like a field would replace that field.
    envelope[draw(names.filter(lambda n: n not in envelope and n != "truncatedAlerts"))] = \
        draw(wrong)
    return envelope, [i for i, ok in enumerate(kinds) if ok]


bodies = (st.binary(max_size=300)
          | wrong.map(lambda v: json.dumps(v).encode())
          | mixed_payloads().map(lambda p: json.dumps(p[0]).encode())
          | mixed_payloads().map(lambda p: json.dumps(p[0]).encode().replace(b"a", b"\\u0000", 3)))


@PROPERTY
@given(bodies)
def test_the_decoder_answers_every_body_with_a_group_or_a_decode_error(body: bytes) -> None:
    try:
        _, rejected = decode_group(body)
    except DecodeError as exc:
        assert exc.path.startswith("$") and exc.message
        return
    assert all(r.path.startswith(f"$.alerts[{r.index}]") for r in rejected)


@PROPERTY
@given(mixed_payloads())
def test_every_valid_alert_of_a_mixed_payload_is_kept(
        payload: tuple[dict[str, Any], list[int]]) -> None:
    envelope, valid = payload
    group, rejected = decode_group(json.dumps(envelope).encode())
    assert len(group.alerts) == len(valid)
    assert sorted(r.index for r in rejected) == sorted(
        set(range(len(envelope["alerts"]))) - set(valid))


@pytest.fixture
def client(write_config: Callable[..., Path]) -> Iterator[tuple[asyncio.Runner, TestClient[Any, Any]]]:
    with asyncio.Runner() as runner:
        async def make() -> TestClient[Any, Any]:
            app = create_app(load_runtime(write_config()), registry=CollectorRegistry(),
                             journal_synchronous="OFF")
            test_client: TestClient[Any, Any] = TestClient(TestServer(app))
            await test_client.start_server()
            return test_client

        made = runner.run(make())
        yield runner, made
        runner.run(made.close())


@PROPERTY
@given(st.one_of(bodies, mixed_payloads()))
def test_the_webhook_never_answers_5xx_nor_logs_a_traceback(
        client: tuple[asyncio.Runner, TestClient[Any, Any]], caplog: pytest.LogCaptureFixture,
        body: bytes | tuple[dict[str, Any], list[int]]) -> None:
    runner, http = client
    raw = json.dumps(body[0]).encode() if isinstance(body, tuple) else body

    async def post() -> tuple[int, Any]:
        resp = await http.post("/webhook", data=raw, headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        answer = await resp.json(content_type=None)
        await asyncio.sleep(0)      # let the pipeline take what was accepted
        return resp.status, answer

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        status, answer = runner.run(post())
    assert status in (200, 400, 413), (status, answer)
    if isinstance(body, tuple) and body[1]:
        assert status == 200
        assert answer["accepted"] + answer["duplicates"] == len(body[1]), answer
    problems = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert problems == [], [r.getMessage() for r in problems]
