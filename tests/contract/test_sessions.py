"""Console sessions ended by logging out: every owner sees the revocation, until the
session's cookie would have expired anyway; retention leaves it alone."""

from __future__ import annotations

from tests.contract.conftest import Backend


async def test_a_revoked_session_is_seen_by_every_owner_until_it_expires(
        backend: Backend) -> None:
    a, b = await backend.open("a"), await backend.open("b")
    assert await b.revoked_sessions() == []
    await a.revoke_session("s1", until=backend.now + 100)
    await b.revoke_session("s2", until=backend.now + 300)
    await b.revoke_session("s1", until=backend.now + 50)     # twice: the later expiry holds
    assert await b.revoked_sessions() == ["s1", "s2"]
    backend.now += 100
    assert await a.revoked_sessions() == ["s1", "s2"]
    backend.now += 1
    assert await a.revoked_sessions() == ["s2"]


async def test_revocations_outlive_retention_and_are_deleted_once_expired(
        backend: Backend) -> None:
    a = await backend.open("a")
    await a.revoke_session("s1", until=backend.now + 43_200)
    while await a.prune(backend.now + 10):    # retention shorter than a session
        pass
    assert await a.revoked_sessions() == ["s1"]
    backend.now += 43_201
    await a.revoke_session("s2", until=backend.now + 43_200)
    backend.now -= 43_201                     # a clock that went back finds s1 gone
    assert await a.revoked_sessions() == ["s2"]
