"""What the pure stages computed in a run: alignments, orphans, WSJF scores.

Each `record_*` replaces the run's rows (or one connection's share), so a resumed run that
repeats a stage leaves one copy, never two.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, select

from spm_sync.store.base import StoreBase
from spm_sync.store.records import AlignmentRecord, OrphanRecord, ScoreRecord
from spm_sync.store.tables import AlignmentRow, OrphanRow, ScoreRow

ALIGNMENTS: Table = AlignmentRow.__table__  # type: ignore[attr-defined]
ORPHANS: Table = OrphanRow.__table__  # type: ignore[attr-defined]
SCORES: Table = ScoreRow.__table__  # type: ignore[attr-defined]


class OutcomeStore(StoreBase):
    def record_alignments(
        self, run_id: int, rows: Iterable[AlignmentRecord], *, connection: str | None = None
    ) -> int:
        values = (
            {
                "connection": row.connection,
                "key": row.key,
                "kr_id": row.kr_id,
                "via": str(row.via),
                "path": list(row.path),
            }
            for row in rows
        )
        return self._replace_run_rows(ALIGNMENTS, run_id, values, connection)

    def alignments(self, run_id: int) -> list[AlignmentRecord]:
        return [
            AlignmentRecord(
                connection=row["connection"],
                key=row["key"],
                kr_id=row["kr_id"],
                via=row["via"],
                path=tuple(row["path"]),
            )
            for row in self._run_rows(ALIGNMENTS, run_id, ALIGNMENTS.c.kr_id)
        ]

    def record_orphans(
        self, run_id: int, rows: Iterable[OrphanRecord], *, connection: str | None = None
    ) -> int:
        values = (
            {"connection": row.connection, "key": row.key, "reason": row.reason} for row in rows
        )
        return self._replace_run_rows(ORPHANS, run_id, values, connection)

    def orphans(self, run_id: int) -> list[OrphanRecord]:
        return [
            OrphanRecord(connection=row["connection"], key=row["key"], reason=row["reason"])
            for row in self._run_rows(ORPHANS, run_id)
        ]

    def record_scores(
        self, run_id: int, rows: Iterable[ScoreRecord], *, connection: str | None = None
    ) -> int:
        values = (
            {
                "connection": row.connection,
                "key": row.key,
                "inputs": dict(row.inputs),
                "cost_of_delay": row.cost_of_delay,
                "job_size": row.job_size,
                "wsjf": row.wsjf,
                "old_rank": row.old_rank,
                "new_rank": row.new_rank,
                "reason": row.reason,
            }
            for row in rows
        )
        return self._replace_run_rows(SCORES, run_id, values, connection)

    def scores(self, run_id: int) -> list[ScoreRecord]:
        """The run's scores, per connection in new-rank order (unranked last)."""
        rows = self._run_rows(SCORES, run_id)
        records = [
            ScoreRecord(
                connection=row["connection"],
                key=row["key"],
                inputs=dict(row["inputs"]),
                cost_of_delay=row["cost_of_delay"],
                job_size=row["job_size"],
                wsjf=row["wsjf"],
                old_rank=row["old_rank"],
                new_rank=row["new_rank"],
                reason=row["reason"],
            )
            for row in rows
        ]
        return sorted(
            records,
            key=lambda r: (r.connection, r.new_rank is None, r.new_rank or 0, r.key),
        )

    def _run_rows(self, table: Table, run_id: int, *order: Any) -> list[Any]:
        query = (
            select(table)
            .where(table.c.run_id == run_id)
            .order_by(table.c.connection, table.c.key, *order)
        )
        with self._reading() as db:
            return list(db.execute(query).mappings())
