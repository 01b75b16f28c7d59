"""Fixtures the unit tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.journal import SqliteJournal


@pytest.fixture
async def journal(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh SQLite journal on a fixed clock, closed after the test."""
    j = SqliteJournal(tmp_path / "state.db", clock=lambda: 1000.0)
    await j.open()
    yield j
    await j.close()
