"""A full disk: the journal on a small tmpfs fills up, webhooks are answered 503 (never a
200 for an alert not stored), and once space is freed webhooks are stored first and
``/-/ready`` is back at once; then the backlog is processed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.procs import wait_for
from tests.faults.conftest import Load, Responder, instance, journal_rows

DISK = "32m"
RESERVE = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of a few MiB; needs root (never skipped under CI=true)."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the disk-full test needs root to mount a tmpfs (CI=true)")
        pytest.skip("the disk-full test needs root to mount a tmpfs; run as root to include it")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem is full (the journal may have filled it already:
    then even creating the file fails, and that is full too)."""
    filler = directory / "filler"
    chunk = b"\1" * 65536
    with contextlib.suppress(OSError), filler.open("wb") as f:
        while True:
            f.write(chunk)
            f.flush()
    return filler


def free_bytes(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def test_a_full_disk_answers_503_then_stores_webhooks_first_once_space_is_freed(
        tmp_path: Path, small_disk: Path, responder: list[Responder]) -> None:
    r = Responder(tmp_path, state={"path": str(small_disk / "state.db"),
                                   "reserve_bytes": RESERVE})
    ballast = small_disk / "ballast"      # what the operator will delete to make room
    ballast.write_bytes(b"\1" * 12 * 1024 * 1024)
    responder.append(r.start())
    assert (small_disk / "state.db-reserve").stat().st_size == RESERVE
    with Load(r.url, per_post=20, interval=0.05) as load:
        time.sleep(0.5)
        filler = fill(small_disk)
        assert free_bytes(small_disk) < 64 * 1024
        wait_for(lambda: 503 in load.statuses, 30, "a webhook answered 503", ())
        wait_for(lambda: r.get("/-/ready")[0] == 503, 10, "not ready while full", ())
        refused = load.statuses.get(503, 0)
        filler.unlink(missing_ok=True)               # the operator frees space
        ballast.unlink()
        freed = time.monotonic()
        wait_for(lambda: r.get("/-/ready")[0] == 200, 5, "ready again", (r.proc,) if r.proc else ())
        ready_after = time.monotonic() - freed
        before = len(load.acked)
        time.sleep(1.5)
        accepted_after = len(load.acked) - before
    assert refused > 0 and ready_after < 3.0, (refused, ready_after)
    assert accepted_after >= 150, load.statuses     # webhooks are stored again
    statuses = {s for s in load.statuses if isinstance(s, int)}
    assert statuses <= {200, 503}, load.statuses
    stored = {row[0] for row in journal_rows(small_disk / "state.db",
                                             "SELECT instance FROM receipts")}
    acked = {instance(name) for name in load.acked}
    assert acked <= stored, len(acked - stored)
    wait_for(lambda: not journal_rows(small_disk / "state.db",
                                      "SELECT 1 FROM receipts WHERE state = 'pending' LIMIT 1"),
             120, "the backlog processed", (r.proc,) if r.proc else ())
    assert (small_disk / "state.db-reserve").exists()
    log = r.log()
    assert "Traceback" not in log and "processing resumes" in log
    # One error for the full disk, not one a second from every writer that meets it.
    assert log.count("the disk is full") == 1 and "journal unavailable" not in log, \
        [line for line in log.splitlines() if "journal" in line]
