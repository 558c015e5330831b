"""The soak's invariants, each a list of violations (empty: it holds).

- no lost items: the store's live keys are exactly the tracker's keys, and after the soak every
  stored item equals a fresh, fault-free pull of the tracker (every `WorkItem` field);
- no duplicate writes, read from the sandboxes' own write logs (spm-sync's writes only): no
  write that sets a field to the value it already had, and no item field written twice in one
  cycle;
- every conflict reported: each item a human edited between plan and write has all its audit
  rows of that run as `conflict`, and no other item has one;
- the SQLite file passes `PRAGMA integrity_check` and opens as a store.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import fields as dataclass_fields
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

from bench.world import ADO, JIRA, World
from connectors.registry import default_connector_factory
from spm_sync.config.model import load_config
from spm_sync.core.domain import WorkItem
from spm_sync.store import AuditStatus, Store

SAMPLE = 5
"""Violations listed per check; the count is always complete."""


class LoggedWrite(Protocol):
    key: str
    field: str
    old: Any
    new: Any


def _listed(problems: list[str]) -> list[str]:
    if len(problems) <= SAMPLE:
        return problems
    return [*problems[:SAMPLE], f"... and {len(problems) - SAMPLE} more"]


def lost_items(world: World, store: Store) -> list[str]:
    """Keys the tracker has and the store lacks (or holds as deleted), and the reverse."""
    problems: list[str] = []
    for connection in (JIRA, ADO):
        stored = {item.key for item in store.iter_items(connection)}
        tracked = world.tracker_keys(connection)
        problems += [
            f"{connection}/{key}: in the tracker, not in the store"
            for key in sorted(tracked - stored)
        ]
        problems += [
            f"{connection}/{key}: in the store, gone from the tracker"
            for key in sorted(stored - tracked)
        ]
    return _listed(problems)


def fresh_pull(config_path: Path) -> dict[tuple[str, str], WorkItem]:
    """Every item of every connection, pulled in full by new connectors."""
    factory = default_connector_factory(discovery_cache_dir=None)
    items: dict[tuple[str, str], WorkItem] = {}
    for settings in load_config(config_path).connections:
        connector = factory(settings)
        try:
            items.update({(item.connection, item.key): item for item in connector.pull(None)})
        finally:
            connector.close()
    return items


def store_differs_from_tracker(world: World, store: Store) -> list[str]:
    """Every stored item against a fresh pull (faults off for the pull), field by field."""
    previous = world.jira.without_faults(), world.ado.without_faults()
    try:
        tracker = fresh_pull(world.config_path)
    finally:
        world.jira.set_faults(previous[0])
        world.ado.set_faults(previous[1])
    stored = {(item.connection, item.key): item for item in store.iter_items()}
    problems = [f"{ref}: not stored" for ref in sorted(tracker.keys() - stored.keys())]
    problems += [
        f"{ref}: stored, not in the tracker" for ref in sorted(stored.keys() - tracker.keys())
    ]
    for ref in sorted(tracker.keys() & stored.keys()):
        if tracker[ref] != stored[ref]:
            differing = [
                f.name
                for f in dataclass_fields(WorkItem)
                if getattr(tracker[ref], f.name) != getattr(stored[ref], f.name)
            ]
            problems.append(f"{ref[0]}/{ref[1]}: stored value differs in {', '.join(differing)}")
    return _listed(problems)


def duplicate_writes(
    connection: str, log: Sequence[LoggedWrite], cycle_starts: Sequence[int]
) -> list[str]:
    """No-op writes, and item fields written twice within one cycle (`cycle_starts` holds the
    log length when each cycle began)."""
    problems: list[str] = []
    bounds = [*cycle_starts, len(log)]
    for cycle, (start, end) in enumerate(pairwise(bounds), start=1):
        writes = log[start:end]
        for write in writes:
            if _same(write.old, write.new):
                problems.append(
                    f"{connection}/{write.key} {write.field} = {write.new!r}: written though it "
                    f"already held that value (cycle {cycle})"
                )
        twice = Counter((write.key, write.field) for write in writes)
        problems += [
            f"{connection}/{key} {field}: written {count} times in cycle {cycle}"
            for (key, field), count in sorted(twice.items())
            if count > 1
        ]
    return _listed(problems)


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, list | tuple) and isinstance(new, list | tuple):
        return sorted(map(str, old)) == sorted(map(str, new))
    return bool(old == new)


def unreported_conflicts(store: Store, run_id: int, raced: Iterable[tuple[str, str]]) -> list[str]:
    """Raced items whose audit rows are not all `conflict`, and conflicts nobody caused."""
    raced = set(raced)
    problems: list[str] = []
    for row in store.audit_rows(run_id):
        ref = (row.write.connection, row.write.item_key)
        if ref in raced and row.status is not AuditStatus.CONFLICT:
            problems.append(
                f"run {run_id}: {ref[0]}/{ref[1]} {row.write.field} was edited by a human after "
                f"the plan but is {row.status.value}"
            )
        elif ref not in raced and row.status is AuditStatus.CONFLICT:
            problems.append(
                f"run {run_id}: {ref[0]}/{ref[1]} {row.write.field} reported as a conflict "
                "although nobody edited it"
            )
    return _listed(problems)


def unreadable_database(path: Path) -> list[str]:
    """`PRAGMA integrity_check` (after SQLite's own WAL recovery) and a store that opens."""
    try:
        with closing(sqlite3.connect(path)) as connection:
            verdict = connection.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.Error as error:
        return [f"{path.name}: cannot be opened by SQLite: {error}"]
    if verdict != [("ok",)]:
        return [f"{path.name}: integrity_check says {verdict[:3]}"]
    try:
        with Store(f"sqlite:///{path}") as store:
            store.count_items()
            store.last_runs(1)
    except Exception as error:  # the point is to report any failure to open, not to crash
        return [f"{path.name}: the store does not open: {type(error).__name__}: {error}"]
    return []


def audit_counts(store: Store, run_id: int) -> dict[str, int]:
    counts = Counter(row.status.value for row in store.audit_rows(run_id))
    return {status.value: counts.get(status.value, 0) for status in AuditStatus}
