"""Exit status of every `spm-sync` command, in one place (documented in docs/usage.md).

Cron, systemd and CI act on the number, so each says what to do next: 1 look at the run's
report, 2 fix the setup before trying again, 3 nothing to fix (another process was already
doing the work; try later if at all).
"""

from __future__ import annotations

OK = 0
FAILED = 1
"""The run ran but something in it failed: a connection, a write, the report or the email;
or the store went away mid-run. Whatever was stored before stays stored."""
CANNOT_START = 2
"""The command could not start: bad config or options, unset secret, store unreachable or
written by a newer spm-sync, unknown run."""
BUSY = 3
"""Skipped, nothing done: another process is running a cycle on this store (SQLite), or
every connection is being synced by another worker (PostgreSQL)."""
