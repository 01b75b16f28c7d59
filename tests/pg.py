"""A real PostgreSQL server for tests: Debian's ``postgresql`` package, started per session.

The server refuses to run as root, so when the tests run as root it is started as the
``postgres`` user the package creates, from the versioned bin directory
(``/usr/lib/postgresql/N/bin``; the wrappers on ``PATH`` pick clusters of their own), in a
temporary directory that user owns, on a free loopback port, with no Unix socket and fsync
off (a test database need not survive a power loss). The role the responder uses has a
password, so every test also exercises a DSN with a secret in it.

``make test`` installs the package when it is missing; under ``CI=true`` a missing server
is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PASSWORD = "pg-Pa55word-for-tests"
ROLE = "responder"


def _bin_dir() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return versions[-1].parent if versions else None


def require_postgres() -> Path:
    """The bin directory of the newest installed server; under CI a missing one fails."""
    found = _bin_dir()
    if found is None:
        message = "PostgreSQL server is not installed (make test installs Debian's postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One ``initdb``'d cluster under a temporary directory; ``start``/``stop`` may repeat."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="responder-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0
        self._shared: str | None = None
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.root.chmod(0o755)

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, cwd=self.root,
                              timeout=120)

    def init(self, extra_conf: str = "") -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        pwfile.chmod(0o600)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        pwfile.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       "unix_socket_directories = ''\nfsync = off\nsynchronous_commit = off\n"
                       "full_page_writes = off\nmax_connections = 200\n" + extra_conf)

    def start(self) -> None:
        result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w",
                           "-t", "60", "start", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stdout}{result.stderr}\n{self.log()}")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def admin_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str) -> str:
        return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser; the first column of the result, one line a row."""
        with psycopg.connect(self.admin_dsn(database), autocommit=True) as conn:
            cur = conn.execute(sql.encode())
            rows = cur.fetchall() if cur.description else []
        return "\n".join(str(row[0]) for row in rows)

    def create_database(self) -> str:
        """A fresh, empty database owned by the responder's role; its DSN."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name} OWNER {ROLE}")
        return self.dsn(name)

    def create_schema(self) -> str:
        """A fresh, empty schema in one shared database, as a DSN whose ``search_path`` is
        that schema: as good as a new database for the journal, in milliseconds rather
        than the half second a ``CREATE DATABASE`` takes."""
        if self._shared is None:
            self._shared = self.create_database()
        name = "s_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE SCHEMA {name} AUTHORIZATION {ROLE}", database=self._shared.rsplit("/", 1)[1])
        return f"{self._shared}?options=-csearch_path%3D{name}"

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A started server with the responder's role; stopped and removed at the end."""
    server = PostgresServer(require_postgres())
    try:
        server.init()
        server.start()
        server.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        yield server
    finally:
        server.cleanup()
