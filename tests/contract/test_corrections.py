"""Operators' corrections are journal state: every owner reads them, retention keeps them."""

from __future__ import annotations

from tests.contract.conftest import Backend


async def test_a_correction_is_read_by_every_owner_and_replaced_not_duplicated(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    await a.record_correction(text_key="k1", category="Network", text="dial tcp: refused",
                              receipt_id=7, by="alice", previous="Unknown")
    await a.record_correction(text_key="k2", category="Timeout", text="ran too long",
                              receipt_id=8, by="bob", previous=None)
    backend.now += 1
    await b.record_correction(text_key="k1", category="Infrastructure",
                              text="dial tcp: refused", receipt_id=9, by="carol",
                              previous="Network")
    assert await a.corrections() == [("k2", "Timeout", "ran too long"),
                                     ("k1", "Infrastructure", "dial tcp: refused")]
    assert await b.correction_categories() == [("k2", "Timeout"), ("k1", "Infrastructure")]
    events = await b.events(kind="correction")
    assert sorted((e["receipt_id"], e["outcome"], e["detail"]["by"]) for e in events) == [
        (7, "Network", "alice"), (8, "Timeout", "bob"), (9, "Infrastructure", "carol")]


async def test_retention_keeps_corrections(backend: Backend) -> None:
    a = await backend.open("a")
    await a.record_correction(text_key="k", category="Conflict", text="database is locked",
                              receipt_id=1, by="alice", previous="Unknown")
    backend.now += 365 * 86400
    while await a.prune(backend.now - 86400):
        pass
    assert await a.corrections() == [("k", "Conflict", "database is locked")]


async def test_the_alert_of_an_unknown_receipt_is_none(backend: Backend) -> None:
    a = await backend.open("a")
    assert await a.receipt_alert(12345) is None
