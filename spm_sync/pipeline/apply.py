"""Stage 5, apply: perform the recorded plan, one batch at a time, auditing every answer.

The plan is read back from the audit log (`Store.pending_plan`: rows still `planned`), never
taken from memory, so what is written is exactly what was recorded and a write already tried
is never sent again. Each `WriteResult` is stored the moment the connector yields it, so a
crash mid-apply leaves an accurate audit.

Batches are the safe points where a stop request is honoured. A batch is never cut through one
item's writes: the connectors check an item's revision once per `push`, and a second push for
the same item would mistake our own first write for a human edit. A rank move travels with the
field writes of the items it moves, and moves keep the planner's order (a later move may be
anchored on an item an earlier one placed).

The store is not patched with the written values: every write moves the item's `updated`
past the connection's watermark, so the next run's incremental pull reads the items back as
the tracker now holds them (values, revisions, ranks as the tracker computed them) at no extra
cost. That read-back is what makes the next plan empty, and it also catches a person's edit
made right after ours.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from spm_sync.core.domain import ConnectionPlan, PlannedWrite, RankMove
from spm_sync.core.errors import describe
from spm_sync.pipeline.pull import ConnectionRun, for_each_connection
from spm_sync.pipeline.stopping import CycleStopped, StopSignal
from spm_sync.store import StageStatus, Store

log = logging.getLogger(__name__)

APPLY = "apply"
WRITE_BATCH = 100
"""Planned writes per `push` call: one freshness read (Jira bulk fetch takes 100) per batch."""


def write_batches(plan: ConnectionPlan, size: int = WRITE_BATCH) -> list[ConnectionPlan]:
    """`plan` cut into pushes of about `size` writes, keeping each item's writes together and
    the rank moves in order (field-only items first, then the moves with their items' writes)."""
    by_item: dict[str, list[PlannedWrite]] = {}
    for write in plan.writes:
        by_item.setdefault(write.item_key, []).append(write)
    Unit = tuple[list[PlannedWrite], list[RankMove]]
    move_units: list[Unit] = [
        ([w for key in move.item_keys for w in by_item.pop(key, [])], [move]) for move in plan.moves
    ]
    units: list[Unit] = [(item_writes, []) for item_writes in by_item.values()] + move_units
    batches: list[ConnectionPlan] = []
    writes: list[PlannedWrite] = []
    moves: list[RankMove] = []
    count = 0
    for unit_writes, unit_moves in units:
        unit_size = len(unit_writes) + sum(len(move.writes) for move in unit_moves)
        if count and count + unit_size > size:
            batches.append(ConnectionPlan(plan.connection, tuple(writes), tuple(moves)))
            writes, moves, count = [], [], 0
        writes += unit_writes
        moves += unit_moves
        count += unit_size
    if count:
        batches.append(ConnectionPlan(plan.connection, tuple(writes), tuple(moves)))
    return batches


def apply_connection(store: Store, run_id: int, run: ConnectionRun, stop: StopSignal) -> int:
    """Push the connection's pending plan; returns the number of answers recorded."""
    name = run.name
    assert run.connector is not None
    plan = store.pending_plan(run_id, name)
    if plan.is_empty:
        return 0
    started = time.monotonic()
    store.start_stage(run_id, APPLY, name)
    recorded = 0
    status = StageStatus.FAILED
    try:
        for batch in write_batches(plan):
            stop.check(f"between write batches of {name}")
            for result in run.connector.push(batch):
                try:
                    store.record_write_result(run_id, result)
                    recorded += 1
                except LookupError as error:  # an answer to a write we never planned
                    run.warnings.append(f"write-back: {error}")
        status = StageStatus.DONE
    except CycleStopped:
        raise
    except Exception as error:
        log.error("write-back to %s failed: %s", name, describe(error))
        run.error = f"write-back failed after {recorded} write(s): {describe(error)}"
    finally:
        run.apply_seconds = time.monotonic() - started
        detail = {"answers": recorded, "error": run.error}
        store.finish_stage(run_id, APPLY, name, status=status, detail=detail)
    return recorded


def apply_all(store: Store, run_id: int, runs: Sequence[ConnectionRun], stop: StopSignal) -> None:
    """Apply every connection pulled in this run, a few at a time."""
    active = [run for run in runs if run.usable]
    for_each_connection(active, lambda run: apply_connection(store, run_id, run, stop), stage=APPLY)
