"""A full disk in the log: one error, a reminder a minute with what it holds, one line when
it has room again; other journal errors stay errors in the writers' logs."""

from __future__ import annotations

import logging

import pytest

from responder.journal import JournalFull, JournalUnavailable
from responder.journal.fullness import DiskFullReport, failure_level

FULL = OSError(28, "No space left on device")


def reporting(caplog: pytest.LogCaptureFixture, level: int,
              start: float = 0.0) -> tuple[list[float], DiskFullReport]:
    """A report on a clock the test moves (``now[0]``), its lines captured from ``level``."""
    caplog.set_level(level, logger="responder.journal")
    now = [start]
    return now, DiskFullReport(lambda: now[0])


def journal_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "responder.journal"]


def test_a_full_disk_is_one_error_then_a_reminder_a_minute_then_one_line_when_it_has_room(
        caplog: pytest.LogCaptureFixture) -> None:
    now, report = reporting(caplog, logging.DEBUG, 1000.0)
    report.filled(FULL)
    for _ in range(150):                 # a writer held once a second, for 150 s
        now[0] += 1.0
        report.filled(FULL)
        report.hold()
        report.remind()
    report.refuse(3)
    report.refuse(2)
    now[0] += 30.0
    report.remind()
    report.cleared()
    report.cleared()
    lines = journal_lines(caplog)
    assert [level for level, _ in lines] == [
        "ERROR", "ERROR", "ERROR", "WARNING", "ERROR", "INFO"]
    assert "the disk is full (" in lines[0][1]
    assert "still full, for 1m00s now (writes held: 60)" in lines[1][1]
    assert "still full, for 2m00s now (writes held: 120)" in lines[2][1]
    assert "webhooks are answered 503" in lines[3][1]
    assert "still full, for 3m00s now (writes held: 150, webhooks answered 503: 5)" \
        in lines[4][1]
    assert lines[5][1] == ("journal: free space again after 3m00s (writes held: 150, "
                           "webhooks answered 503: 5); processing resumes")


def test_a_disk_full_again_minutes_later_is_reported_afresh(
        caplog: pytest.LogCaptureFixture) -> None:
    now, report = reporting(caplog, logging.INFO)
    report.filled(FULL)
    report.hold()
    report.cleared()
    now[0] += 600.0
    report.filled(FULL)
    now[0] += 5.0
    report.cleared()
    messages = [m for _, m in journal_lines(caplog)]
    assert sum("the disk is full (" in m for m in messages) == 2
    assert messages[-1].startswith("journal: free space again after 5s (writes held: 0)")


def test_a_disk_that_refills_at_once_is_one_episode_not_two_lines_a_second(
        caplog: pytest.LogCaptureFixture) -> None:
    now, report = reporting(caplog, logging.INFO)
    report.filled(FULL)
    now[0] += 1.0
    report.cleared()                      # space freed ...
    for _ in range(30):                   # ... and taken again at once, for half a minute
        now[0] += 0.5
        report.filled(FULL)
        report.hold()
        now[0] += 0.5
        report.cleared()
    assert [m[:40] for _, m in journal_lines(caplog)] == [
        "journal: the disk is full ([Errno 28] No", "journal: free space again after 1s (writ"]
    report.filled(FULL)    # and now it stays full
    for _ in range(40):
        now[0] += 1.0
        report.hold()
    lines = journal_lines(caplog)
    assert len(lines) == 3 and lines[2] == (
        "ERROR", "journal: the disk is still full, for 1m01s now (writes held: 60, filled "
                 "again 31 times after room came back); free space on the journal's volume")


def test_writers_log_a_full_disk_at_debug_and_every_other_journal_failure_as_an_error() -> None:
    assert failure_level(JournalFull("journal full")) == logging.DEBUG
    assert failure_level(JournalUnavailable("journal write failed: disk I/O error")) \
        == logging.ERROR
