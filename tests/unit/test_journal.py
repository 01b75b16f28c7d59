"""The SQLite backend: group commit, checkpoints, a full disk, slices of pending work.

What every backend guarantees is in ``tests/contract/``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from responder.journal import JournalUnavailable, SqliteJournal
from responder.model import decode_group

PAYLOAD = (
    b'{"version":"4","status":"firing","groupKey":"g1","alerts":['
    b'{"status":"firing","labels":{"alertname":"A","n":"1"},"startsAt":"2026-01-01T00:00:00Z"},'
    b'{"status":"firing","labels":{"alertname":"A","n":"2"},"startsAt":"2026-01-01T00:00:00Z"},'
    b'{"status":"firing","labels":"oops","startsAt":"2026-01-01T00:00:00Z"}]}'
)


async def test_a_delivery_is_journaled_with_its_valid_alerts_and_rejections(journal: SqliteJournal) -> None:
    group, rejected = decode_group(PAYLOAD)
    result = await journal.record_delivery(group, rejected)
    assert (result.accepted, result.duplicates) == (2, 0)
    pending = await journal.pending_deliveries()
    assert [r.alert["labels"]["n"] for r in pending[0].new] == ["1", "2"]
    rejections = await journal.events(kind="rejected")
    assert rejections[0]["detail"]["path"] == "$.alerts[2].labels"


async def test_the_same_alert_delivered_twice_is_one_receipt_and_one_duplicate(
        journal: SqliteJournal) -> None:
    group, rejected = decode_group(PAYLOAD)
    await journal.record_delivery(group, rejected)
    second = await journal.record_delivery(group, [])
    assert (second.accepted, second.duplicates) == (0, 2)
    recent = await journal.recent(10)
    assert sorted(a["deliveries"] for a in recent["alerts"]) == [2, 2]


async def test_concurrent_deliveries_are_group_committed_and_each_gets_its_own_answer(
        journal: SqliteJournal) -> None:
    bodies = [
        b'{"version":"4","status":"firing","alerts":[{"status":"firing","labels":'
        b'{"alertname":"A","i":"%d"},"startsAt":"2026-01-01T00:00:00Z"}]}' % i
        for i in range(200)
    ]
    results = await asyncio.gather(*(journal.record_delivery(*decode_group(b)) for b in bodies))
    assert all(r.accepted == 1 for r in results)
    assert len({r.delivery_id for r in results}) == 200


async def test_pending_work_survives_reopening_the_journal(tmp_path: Path) -> None:
    j = SqliteJournal(tmp_path / "state.db")
    await j.open()
    await j.record_delivery(*decode_group(PAYLOAD))
    await j.close()
    again = SqliteJournal(tmp_path / "state.db")
    await again.open()
    try:
        assert len((await again.pending_deliveries())[0].new) == 2
        assert await again.pending_count() == 1
    finally:
        await again.close()


async def test_an_attempt_is_created_once_whatever_the_number_of_requests(journal: SqliteJournal) -> None:
    kwargs = dict(instance="fp@t", runbook="r", target="workflow:ns/wf", n=1,
                  action="argo.retry", params={"namespace": "ns"}, due_at=5.0, receipt_id=None,
                  context={})
    first, second = await asyncio.gather(journal.schedule_attempt(**kwargs),  # type: ignore[arg-type]
                                         journal.schedule_attempt(**kwargs))  # type: ignore[arg-type]
    assert [first is None, second is None].count(True) == 1
    assert [a.id for a in await journal.due_attempts(10.0)] == [(first or second).id]  # type: ignore[union-attr]
    assert await journal.due_attempts(1.0) == []


async def test_an_outbox_message_is_queued_once_per_dedup_key(journal: SqliteJournal) -> None:
    args = dict(channel="c", dedup="k", message={"body": {}}, fallback=None, receipt_id=None)
    assert await journal.enqueue(**args) is True  # type: ignore[arg-type]
    assert await journal.enqueue(**args) is False  # type: ignore[arg-type]
    (item,) = await journal.due_outbox(2000.0)
    await journal.update_outbox(item.id, state="sent", tries=1)
    assert await journal.due_outbox(2000.0) == []


async def test_a_full_disk_makes_the_journal_unavailable_instead_of_losing_alerts(
        journal: SqliteJournal) -> None:
    journal._conn().execute("PRAGMA max_page_count = 1")   # the disk is full now
    big = decode_group(
        b'{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"'
        + b"x" * 20000 + b'"},"startsAt":"2026-01-01T00:00:00Z"}]}')
    with pytest.raises(JournalUnavailable):
        await journal.record_delivery(*big)


async def test_flags_persist(journal: SqliteJournal) -> None:
    assert await journal.get_flag("paused") is None
    await journal.set_flag("paused", True)
    assert await journal.get_flag("paused") is True


def _big_delivery(i: int) -> bytes:
    return (b'{"version":"4","status":"firing","groupKey":"g","alerts":[{"status":"firing",'
            b'"labels":{"alertname":"A","n":"%d"},"annotations":{"description":"%s"},'
            b'"startsAt":"2026-01-01T00:00:00Z"}]}' % (i, b"x" * 4000))


async def test_checkpoints_move_the_wal_into_the_database_off_the_write_path(
        tmp_path: Path) -> None:
    j = SqliteJournal(tmp_path / "state.db")
    j.CHECKPOINT_EVERY = 3600.0       # none yet: writes leave the database file alone
    await j.open()
    try:
        before = (tmp_path / "state.db").stat().st_size
        await asyncio.gather(*(j.record_delivery(*decode_group(_big_delivery(i)))
                               for i in range(200)))
        assert (tmp_path / "state.db").stat().st_size == before
        assert (tmp_path / "state.db-wal").stat().st_size > 200 * 4000
    finally:
        await j.close()
    j = SqliteJournal(tmp_path / "state.db")
    j.CHECKPOINT_EVERY = 0.05
    await j.open()
    try:
        for _ in range(100):
            if (tmp_path / "state.db").stat().st_size > before + 200 * 4000:
                break
            await asyncio.sleep(0.05)
        assert (tmp_path / "state.db").stat().st_size > before + 200 * 4000
        assert len(await j.pending_deliveries(limit=500)) == 200
    finally:
        await j.close()


async def test_reads_and_writes_wait_for_a_commit_in_flight_and_see_its_rows(
        journal: SqliteJournal) -> None:
    first = asyncio.ensure_future(journal.record_delivery(*decode_group(_big_delivery(1))))
    for _ in range(1000):              # until the batch is written and its COMMIT in flight
        if journal._lock.locked():
            break
        await asyncio.sleep(0)
    assert journal._lock.locked()
    # a read in the middle of the COMMIT would find the connection still in a transaction
    async with journal._lock:
        assert journal._conn().in_transaction is False
    pending = await journal.pending_deliveries()
    await first
    assert [d.new[0].alert["labels"]["n"] for d in pending] == ["1"]
    assert (await journal.recent(10))["alerts"][0]["alert"]["labels"]["n"] == "1"


async def test_pending_deliveries_come_in_slices_of_alerts_in_order(journal: SqliteJournal) -> None:
    def group(i: int, n: int) -> bytes:
        alerts = [{"status": "firing", "labels": {"alertname": "A", "g": str(i), "n": str(k)},
                   "startsAt": "2026-01-01T00:00:00Z"} for k in range(n)]
        return json.dumps({"version": "4", "status": "firing", "groupKey": f"g{i}",
                           "alerts": alerts}).encode()

    for i, n in enumerate((150, 40, 30, 300, 5)):
        await journal.record_delivery(*decode_group(group(i, n)))
    sizes = []
    after = 0
    while batch := await journal.pending_deliveries(after_id=after, max_alerts=200):
        sizes.append([len(d.new) for d in batch])
        assert all(d.new[k].alert["labels"]["n"] == str(k) for d in batch
                   for k in range(len(d.new)))
        after = batch[-1].id
    # whole deliveries only; a delivery larger than the slice comes alone
    assert sizes == [[150, 40], [30], [300], [5]]


def _size(path: Path) -> int:
    return path.stat().st_size


async def _write_without_pause(j: SqliteJournal, wal: Path, batches: int) -> int:
    """``batches`` of ten 4 KB deliveries, each batch written together; the WAL's peak."""
    peak = 0
    for i in range(batches):
        await asyncio.gather(*(j.record_delivery(*decode_group(_big_delivery(i * 10 + k)))
                               for k in range(10)))
        peak = max(peak, _size(wal))
        await asyncio.sleep(0)
    return peak


async def test_under_constant_writes_the_wal_is_written_from_its_start_again_not_truncated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Truncating holds the writer's lock for tens of milliseconds, which every webhook
    # waits for: while writes go on, a checkpoint between two transactions catches up
    # instead, and the next transaction reuses the WAL from its start.
    import responder.journal.sqlite as sqlite_journal

    modes: list[str] = []
    real = sqlite_journal._checkpoint

    def checkpoint(db: object, mode: str) -> tuple[int, int, int]:
        modes.append(mode)
        return real(db, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_journal, "_checkpoint", checkpoint)
    j = SqliteJournal(tmp_path / "state.db")
    j.CHECKPOINT_EVERY = 0.01
    j.WAL_LIMIT = 4 << 20
    await j.open()
    try:
        peak = await _write_without_pause(j, tmp_path / "state.db-wal", 300)  # ~12 MB
        assert "TRUNCATE" not in modes
        assert modes.count("PASSIVE") > 10
        assert peak < j.WAL_LIMIT
        assert len(await j.pending_deliveries(limit=5000, max_alerts=5000)) == 3000
    finally:
        await j.close()


async def test_the_wal_stays_bounded_under_constant_writes_and_empties_when_idle(
        tmp_path: Path) -> None:
    j = SqliteJournal(tmp_path / "state.db")
    j.CHECKPOINT_EVERY = 0.02
    j.WAL_LIMIT = 1 << 20
    await j.open()
    wal = tmp_path / "state.db-wal"
    try:
        peak = await _write_without_pause(j, wal, 60)   # ~2.5 MB of rows
        assert peak < 3 * j.WAL_LIMIT
        for _ in range(200):
            if wal.stat().st_size == 0:
                break
            await asyncio.sleep(0.02)
        assert wal.stat().st_size == 0
        assert len(await j.pending_deliveries(limit=1000, max_alerts=1000)) == 600
    finally:
        await j.close()
