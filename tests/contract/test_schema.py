"""The schema version is checked at open: the current one opens, a newer one is refused."""

from __future__ import annotations

import pytest

from responder.journal import JournalVersionError
from responder.journal.migrations import SCHEMA_VERSION
from tests.contract.conftest import Backend
from tests.contract.helpers import deliver


async def test_a_journal_opens_again_with_its_work(backend: Backend) -> None:
    a = await backend.open("a")
    await deliver(a, "etl-1")
    await a.close()
    again = await backend.open("a")
    assert len((await again.pending_deliveries())[0].new) == 1


async def test_a_journal_of_a_newer_schema_is_refused_with_its_version(backend: Backend) -> None:
    a = await backend.open("a")
    await a.close()
    backend.set_schema_version(SCHEMA_VERSION + 1)
    with pytest.raises(JournalVersionError, match=f"schema version {SCHEMA_VERSION + 1}"):
        await backend.open("b")
