"""``state.postgres``: dsn or dsn_file, errors at file:line, the password never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.config.main import load_config
from responder.config.postgres import redact_dsn
from responder.errors import ConfigErrors

DSN = "postgresql://responder:Hunter2-pg@db.example.com:5432/responder?sslmode=require"


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    return [str(e) for e in caught.value.errors]


def test_dsn_file_is_read_relative_to_the_config_and_kept_out_of_repr(tmp_path: Path) -> None:
    (tmp_path / "pg-dsn").write_text(DSN + "\n")
    (tmp_path / "responder.yaml").write_text("state:\n  postgres: {dsn_file: pg-dsn}\n")
    config = load_config(tmp_path / "responder.yaml")
    assert config.postgres is not None
    assert config.postgres.dsn == DSN
    assert "Hunter2" not in repr(config)
    assert config.postgres.shown == \
        "postgresql://responder@db.example.com:5432/responder?sslmode=require"


def test_unknown_key_and_both_backends_are_errors_at_their_lines(tmp_path: Path) -> None:
    (tmp_path / "responder.yaml").write_text(
        "state:\n  path: state.db\n  postgres:\n    dsn: " + DSN + "\n    pool: 5\n")
    shown = str(tmp_path / "responder.yaml")
    errors = errors_of(tmp_path / "responder.yaml")
    assert f"{shown}:5: state.postgres.pool: unknown key" in errors
    assert f"{shown}:3: state: give path (SQLite) or postgres, not both" in errors
    assert not any("Hunter2" in e for e in errors)


def test_a_dsn_that_is_not_a_dsn_is_an_error_that_does_not_echo_it(tmp_path: Path) -> None:
    (tmp_path / "responder.yaml").write_text("state:\n  postgres:\n    dsn: Hunter2-pg\n")
    errors = errors_of(tmp_path / "responder.yaml")
    assert errors == [f"{tmp_path / 'responder.yaml'}:3: state.postgres.dsn: expected a "
                      "postgresql:// URL or libpq key=value pairs"]


def test_missing_dsn_file_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "responder.yaml").write_text("state:\n  postgres: {dsn_file: nope}\n")
    [error] = errors_of(tmp_path / "responder.yaml")
    assert error.startswith(f"{tmp_path / 'responder.yaml'}:2: state.postgres.dsn_file: cannot read")


@pytest.mark.parametrize(("dsn", "shown"), [
    (DSN, "postgresql://responder@db.example.com:5432/responder?sslmode=require"),
    ("postgres://u:p%40ss@h/db", "postgres://u@h/db"),
    ("postgresql://h/db?user=u&password=s3cr3t", "postgresql://h/db?user=u&password=***"),
    ("host=h dbname=db user=u password='a b\\'c' sslmode=require",
     "host=h dbname=db user=u password=*** sslmode=require"),
    ("host=h password=s3cr3t", "host=h password=***"),
])
def test_redacted_dsn_keeps_everything_but_the_password(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown
