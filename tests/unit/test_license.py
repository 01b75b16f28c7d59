"""The LICENSE file is the licence pyproject.toml declares: the Apache License 2.0, whole."""

from __future__ import annotations

import hashlib
import tomllib

from tests.conftest import REPO

# The SHA-256 of https://www.apache.org/licenses/LICENSE-2.0.txt as the ASF publishes it.
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def test_license_file_is_the_full_apache_2_text_pyproject_declares() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    assert declared == {"text": "Apache-2.0"}
    text = (REPO / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256
    assert b"TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
