"""The test PostgreSQL server itself: started as its own user, reachable with a password."""

from __future__ import annotations

from tests.pg import PostgresServer


def test_server_answers_on_loopback_with_the_role_password(pg_server: PostgresServer) -> None:
    dsn = pg_server.create_database()
    assert dsn.startswith("postgresql://responder:")
    assert pg_server.psql("SHOW fsync") == "off"
    assert pg_server.psql("SELECT current_setting('listen_addresses')") == "127.0.0.1"
