"""One cycle at a time on a SQLite store: an exclusive lock on a file next to the database.

SQLite has no session-level locks a process can hold for the length of a cycle (its own
locks last one transaction), and two processes each running a cycle on one file would both
pull, plan and write back the same items: the trackers get every write twice and the audit
log two `written` rows per field, which makes `undo` ambiguous. So a cycle (and anything
else that writes to the trackers) holds `<database>.lock` with `flock` (POSIX) or `msvcrt`
(Windows): held by the open file, so it goes when the process dies however it dies, and a
second holder, in another process or on another thread, fails at once instead of waiting.
The holder writes its pid and start time into the file, so "store busy" can say who.

PostgreSQL has no such lock on purpose: several workers may share its store and take turns
per tracker connection (advisory locks, see `StoreBase.advisory_lock`).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

if sys.platform == "win32":
    import msvcrt

    def _lock(descriptor: int) -> None:
        msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)

else:
    import fcntl

    def _lock(descriptor: int) -> None:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)


class StoreBusy(Exception):
    """Another process is running a cycle on this store (message for the user)."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def _try_lock(handle: IO[str]) -> bool:
    handle.seek(0)  # msvcrt locks bytes from the current position
    try:
        _lock(handle.fileno())
    except OSError:
        return False
    return True


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return f" ({text})" if text else ""


@contextmanager
def exclusive_cycle(database: Path, purpose: str) -> Iterator[None]:
    """Hold the lock file of `database` for the block, or raise `StoreBusy` at once."""
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        if not _try_lock(handle):
            raise StoreBusy(
                f"store busy: another spm-sync is running a cycle on {database}"
                f"{_holder(path)}; {purpose} was not started"
            )
        since = datetime.now(UTC).isoformat(timespec="seconds")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {since}")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock
