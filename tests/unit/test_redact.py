"""What the one scrubber masks in a database DSN: the password, never the names an
operator needs to read in an error."""

from __future__ import annotations

from responder.redact import MASK, Redactor


def test_a_dsn_url_loses_its_password_and_keeps_its_user_host_and_database() -> None:
    redactor = Redactor(["postgresql://responder:s3cret-pw@db.example:5432/alerts"])
    text = "cannot reach postgresql://responder@db.example:5432/alerts (password s3cret-pw)"
    assert redactor.scrub(text) == (
        f"cannot reach postgresql://responder@db.example:5432/alerts (password {MASK})")
    assert redactor.scrub("responder:s3cret-pw") == f"responder:{MASK}"


def test_a_key_value_dsn_loses_its_password_quoted_or_not() -> None:
    redactor = Redactor(["host=db user=responder password='two words-42' dbname=alerts",
                         "host=db password=plainpass99"])
    assert redactor.scrub("auth failed for two words-42 and plainpass99") == (
        f"auth failed for {MASK} and {MASK}")
    assert redactor.scrub("user=responder dbname=alerts") == "user=responder dbname=alerts"


def test_a_webhook_url_still_loses_every_credential_carrying_path_segment() -> None:
    redactor = Redactor(["https://hooks.slack.com/services/T0ABC123/B0DEF456/abcdefghijklmnopqrstu"])
    assert "abcdefghijklmnopqrstu" not in redactor.scrub("404 for /B0DEF456/abcdefghijklmnopqrstu")
    assert "T0ABC123" not in redactor.scrub("team T0ABC123")
