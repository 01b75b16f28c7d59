"""The journal contract's backends: every test in ``tests/contract/`` runs once per backend.

A test asks for ``backend`` and opens journals with ``await backend.open(owner)``: each
call is another process on the same store (two owners claim against each other), all
sharing ``backend.clock``, a clock the test moves by hand (``backend.now += 60``).

A backend is one entry: a class with the four members of ``SqliteBackend``
(``clock``/``now``, ``open(owner)``, ``set_schema_version(n)`` that stamps the store as
written by schema ``n``, ``close()``) and a factory in ``BACKENDS``. PostgreSQL's takes a
fresh schema on the session's server (``pg_server``, tests/pg.py: Debian's package, a
failure under ``CI=true`` when it is missing). Nothing in the tests changes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

import pytest

from responder.journal import Journal, SqliteJournal
from responder.journal.postgres import PostgresJournal
from tests.pg import PostgresServer


class Backend(Protocol):
    now: float

    def clock(self) -> float: ...

    async def open(self, owner: str) -> Journal: ...

    def set_schema_version(self, version: int) -> None: ...

    async def close(self) -> None: ...


class SqliteBackend:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.now = 1_000_000.0
        self._open: list[SqliteJournal] = []

    def clock(self) -> float:
        return self.now

    async def open(self, owner: str) -> Journal:
        journal = SqliteJournal(self.path, clock=self.clock, owner=owner, synchronous="NORMAL")
        await journal.open()
        self._open.append(journal)
        return journal

    def set_schema_version(self, version: int) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute("UPDATE meta SET value = ? WHERE name = 'schema'", (str(version),))

    async def close(self) -> None:
        for journal in self._open:
            await journal.close()
        self._open.clear()


class PostgresBackend:
    """A fresh schema on the session's PostgreSQL server (tests/pg.py) per test."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.dsn = server.create_schema()
        self.now = 1_000_000.0
        self._open: list[PostgresJournal] = []

    def clock(self) -> float:
        return self.now

    async def open(self, owner: str) -> Journal:
        journal = PostgresJournal(self.dsn, clock=self.clock, owner=owner, pool_size=4)
        await journal.open()
        self._open.append(journal)
        return journal

    def set_schema_version(self, version: int) -> None:
        database, schema = self.dsn.rsplit("/", 1)[1].split("?options=-csearch_path%3D")
        self.server.psql(f"UPDATE {schema}.meta SET value = '{version}' "
                         "WHERE name = 'schema_version'", database=database)

    async def close(self) -> None:
        for journal in self._open:
            await journal.close()
        self._open.clear()


def sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    return SqliteBackend(tmp_path / "journal.db")


def postgres(tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    return PostgresBackend(request.getfixturevalue("pg_server"))


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], Backend]] = {
    "sqlite": sqlite, "postgres": postgres}


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    chosen = BACKENDS[request.param](tmp_path, request)
    yield chosen
    await chosen.close()
