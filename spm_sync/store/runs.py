"""Runs, their stage progress (so a crashed run resumes), and per-connection sync stats.

A finished run keeps two documents: `result`, the whole result the report is rendered from
(`spm-sync report --run ID`), and `headline`, its handful of headline figures. History reads
(the trend, "change since last run") take the headlines only, so they never parse full
results.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Table, insert, select, update

from spm_sync.store.base import Row, StoreBase
from spm_sync.store.records import (
    HeadlineRecord,
    RunRecord,
    RunStatus,
    StageRecord,
    StageStatus,
    SyncStats,
)
from spm_sync.store.tables import RunRow, StageProgressRow, SyncStatsRow

RUNS: Table = RunRow.__table__  # type: ignore[attr-defined]
STAGES: Table = StageProgressRow.__table__  # type: ignore[attr-defined]
STATS: Table = SyncStatsRow.__table__  # type: ignore[attr-defined]
NO_CYCLE_TRIGGERS = ("undo",)
"""Triggers of runs that are no sync cycle: they never become the latest report."""
WHOLE_RUN = ""
"""`connection` of a stage record that covers every connection."""


class RunStore(StoreBase):
    def start_run(self, mode: str, *, trigger: str = "cli") -> int:
        """Record a new run as running; returns its id. `trigger`: cli, schedule, demo, ..."""
        values = {"started": self._now(), "status": RunStatus.RUNNING.value, "mode": str(mode)}
        with self._writing() as db:
            result = db.execute(insert(RUNS).values(**values, trigger=trigger))
            key = result.inserted_primary_key
            if key is None:
                raise RuntimeError("the database returned no id for the new run")
            return int(key[0])

    def set_stage(self, run_id: int, stage: str) -> None:
        self._update_run(run_id, {"stage": stage})

    def finish_run(
        self,
        run_id: int,
        status: RunStatus | str,
        *,
        error: str | None = None,
        result: Mapping[str, Any] | None = None,
        headline: Mapping[str, Any] | None = None,
    ) -> None:
        """Close a run. `result` is the JSON document the report is rendered from, kept so
        `spm-sync report --run ID` can render it again; `headline` its headline figures, kept
        apart for `run_headlines`. Omitted, saved ones stay."""
        values: dict[str, Any] = {
            "status": RunStatus(status).value,
            "finished": self._now(),
            "error": error,
        }
        if result is not None:
            values["result"] = dict(result)
        if headline is not None:
            values["headline"] = dict(headline)
        self._update_run(run_id, values)

    def _update_run(self, run_id: int, values: dict[str, Any]) -> None:
        with self._writing() as db:
            changed = db.execute(update(RUNS).where(RUNS.c.id == run_id).values(**values))
            if changed.rowcount == 0:
                raise LookupError(f"no run {run_id}")

    def get_run(self, run_id: int) -> RunRecord | None:
        with self._reading() as db:
            row = db.execute(select(RUNS).where(RUNS.c.id == run_id)).mappings().first()
        return None if row is None else _run(row)

    def last_runs(self, n: int = 10, *, status: RunStatus | str | None = None) -> list[RunRecord]:
        """The `n` most recent runs, newest first."""
        query = select(RUNS).order_by(RUNS.c.id.desc()).limit(n)
        if status is not None:
            query = query.where(RUNS.c.status == RunStatus(status).value)
        with self._reading() as db:
            return [_run(row) for row in db.execute(query).mappings()]

    def run_headlines(
        self,
        n: int,
        *,
        before: int | None = None,
        statuses: Collection[RunStatus | str] = (RunStatus.SUCCEEDED, RunStatus.PARTIAL),
        exclude_triggers: Collection[str] = (),
    ) -> list[HeadlineRecord]:
        """The headlines of the `n` most recent finished runs that have one (with a status in
        `statuses`, before run `before`, not started by `exclude_triggers`), newest first.
        Reads the small `headline` column only, never the result documents."""
        columns = [RUNS.c[name] for name in ("id", "started", "finished", "status", "mode")]
        query = (
            select(*columns, RUNS.c.trigger, RUNS.c.headline)
            .where(RUNS.c.headline.is_not(None), RUNS.c.finished.is_not(None))
            .where(RUNS.c.status.in_([RunStatus(status).value for status in statuses]))
            .order_by(RUNS.c.id.desc())
            .limit(n)
        )
        if before is not None:
            query = query.where(RUNS.c.id < before)
        if exclude_triggers:
            query = query.where(RUNS.c.trigger.not_in(list(exclude_triggers)))
        with self._reading() as db:
            rows = db.execute(query).mappings().all()
        return [
            HeadlineRecord(
                run_id=row["id"],
                started=row["started"],
                finished=row["finished"],
                status=RunStatus(row["status"]),
                mode=row["mode"],
                trigger=row["trigger"],
                headline=row["headline"],
            )
            for row in rows
        ]

    def latest_run_with_result(self) -> int | None:
        """The id of the newest run that has a stored result, without reading any result."""
        query = select(RUNS.c.id).where(RUNS.c.result.is_not(None)).order_by(RUNS.c.id.desc())
        with self._reading() as db:
            return db.execute(query.limit(1)).scalar()

    def latest_cycle_with_result(self) -> int | None:
        """The id of the newest sync cycle that finished (ok or partial) with a stored result:
        the run `latest.html` and a plain `spm-sync report` show. An undo, dry run or not,
        restores a past run and is no cycle; a failed cycle aligned nothing it could trust."""
        query = (
            select(RUNS.c.id)
            .where(RUNS.c.result.is_not(None), RUNS.c.finished.is_not(None))
            .where(RUNS.c.status.in_([RunStatus.SUCCEEDED.value, RunStatus.PARTIAL.value]))
            .where(RUNS.c.trigger.not_in(list(NO_CYCLE_TRIGGERS)))
            .order_by(RUNS.c.id.desc())
        )
        with self._reading() as db:
            return db.execute(query.limit(1)).scalar()

    def unfinished_runs(self) -> list[RunRecord]:
        """Runs still marked running: crashed ones, or one in progress in another worker."""
        query = select(RUNS).where(RUNS.c.status == RunStatus.RUNNING.value).order_by(RUNS.c.id)
        with self._reading() as db:
            return [_run(row) for row in db.execute(query).mappings()]

    def start_stage(self, run_id: int, stage: str, connection: str = WHOLE_RUN) -> None:
        """Mark a stage (of one connection, or of the whole run) as started; starting it again
        after a crash resets it."""
        values = {
            "run_id": run_id,
            "stage": stage,
            "connection": connection,
            "status": StageStatus.RUNNING.value,
            "started_at": self._now(),
            "finished_at": None,
            "detail": None,
        }
        self._upsert(STAGES, values, ("run_id", "stage", "connection"))

    def finish_stage(
        self,
        run_id: int,
        stage: str,
        connection: str = WHOLE_RUN,
        *,
        status: StageStatus | str = StageStatus.DONE,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        scope = (
            (STAGES.c.run_id == run_id)
            & (STAGES.c.stage == stage)
            & (STAGES.c.connection == connection)
        )
        values = {
            "status": StageStatus(status).value,
            "finished_at": self._now(),
            "detail": None if detail is None else dict(detail),
        }
        with self._writing() as db:
            if db.execute(update(STAGES).where(scope).values(**values)).rowcount == 0:
                raise LookupError(f"stage {stage!r} of run {run_id} was not started")

    def stage_progress(self, run_id: int) -> list[StageRecord]:
        query = select(STAGES).where(STAGES.c.run_id == run_id).order_by(STAGES.c.started_at)
        with self._reading() as db:
            return [_stage(row) for row in db.execute(query).mappings()]

    def is_stage_done(self, run_id: int, stage: str, connection: str = WHOLE_RUN) -> bool:
        return any(
            record.stage == stage
            and record.connection == connection
            and record.status is StageStatus.DONE
            for record in self.stage_progress(run_id)
        )

    def record_sync_stats(self, run_id: int, stats: SyncStats) -> None:
        """Store (or replace, on a resumed run) what pulling one connection took."""
        values = {
            "run_id": run_id,
            "connection": stats.connection,
            "since": stats.since,
            "pulled": stats.pulled,
            "marked_deleted": stats.marked_deleted,
            "requests": stats.requests,
            "by_endpoint": dict(stats.by_endpoint),
            "retries": stats.retries,
            "throttled": stats.throttled,
            "waited_seconds": stats.waited_seconds,
            "rate_limit": dict(stats.rate_limit),
            "duration_seconds": stats.duration_seconds,
            "warnings": list(stats.warnings),
            "error": stats.error,
        }
        self._upsert(STATS, values, ("run_id", "connection"))

    def sync_stats(self, run_id: int) -> list[SyncStats]:
        query = select(STATS).where(STATS.c.run_id == run_id).order_by(STATS.c.connection)
        with self._reading() as db:
            rows = db.execute(query).mappings().all()
        return [
            SyncStats(
                connection=row["connection"],
                since=row["since"],
                pulled=row["pulled"],
                marked_deleted=row["marked_deleted"],
                requests=row["requests"],
                by_endpoint=dict(row["by_endpoint"]),
                retries=row["retries"],
                throttled=row["throttled"],
                waited_seconds=row["waited_seconds"],
                rate_limit=dict(row["rate_limit"]),
                duration_seconds=row["duration_seconds"],
                warnings=tuple(row["warnings"]),
                error=row["error"],
            )
            for row in rows
        ]


def _run(row: Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        started=row["started"],
        finished=row["finished"],
        status=RunStatus(row["status"]),
        stage=row["stage"],
        mode=row["mode"],
        trigger=row["trigger"],
        error=row["error"],
        result=row["result"],
    )


def _stage(row: Row) -> StageRecord:
    return StageRecord(
        run_id=row["run_id"],
        stage=row["stage"],
        connection=row["connection"],
        status=StageStatus(row["status"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        detail=row["detail"],
    )
