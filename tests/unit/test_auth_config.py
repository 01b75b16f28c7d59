"""Credentials in the config: an empty secret is refused with its file and line, once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from responder.config.main import load_config
from responder.errors import ConfigErrors


def errors_of(tmp_path: Path, auth: dict[str, object]) -> list[str]:
    path = tmp_path / "responder.yaml"
    path.write_text(yaml.safe_dump({"listen": "0.0.0.0:9095", "auth": auth}, sort_keys=False))
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    return [str(e) for e in caught.value.errors]


def test_an_empty_basic_auth_password_is_refused_like_an_empty_token(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("")
    config = str(tmp_path / "responder.yaml")
    for basic in ({"username": "am", "password_file": "empty"},
                  {"username": "am", "password": ""}):
        key = next(k for k in basic if k.startswith("password"))
        errors = errors_of(tmp_path, {"basic_auth": basic})
        assert errors == [f"{config}:5: auth.basic_auth.{key}: the password is empty"], errors


def test_an_operator_with_an_empty_secret_gets_one_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "token").write_text("t0ken\n")
    errors = errors_of(tmp_path, {"bearer_token_file": "token", "operators": [
        {"name": "alice", "bearer_token_file": "empty"},
        {"name": "bob", "basic_auth": {"username": "bob", "password_file": "empty"}}]})
    assert len(errors) == 2, errors
    assert "auth.operators[0]: bearer token is empty" in errors[0]
    assert "auth.operators[1].basic_auth.password_file: the password is empty" in errors[1]
