"""The audit log: every planned write and what became of it.

A row is written when the plan is made (`planned`) and updated when the connector answers
(`written`, `unchanged`, `conflict`, `failed`). Rows are unique per (run, connection, key,
field), so recording a plan twice or re-applying it never duplicates anything, and a row that
was already tried is never reset to `planned`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Table, func, select, update

from spm_sync.core.domain import ConnectionPlan, PlannedWrite, RankMove, WriteField, WriteResult
from spm_sync.store.base import BATCH_ROWS, Row, StoreBase, batched
from spm_sync.store.records import AuditRow, AuditStatus
from spm_sync.store.tables import WriteRow

WRITES: Table = WriteRow.__table__  # type: ignore[attr-defined]
AuditOrder = Literal["planned", "item"]
"""`planned`: the order the rows were planned in; `item`: by connection, key and field."""
_PLAN_COLUMNS = ("old", "new", "expected_revision", "move", "move_position", "planned_at")


def _plan_values(
    run_id: int, write: PlannedWrite, planned_at: datetime, move: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "connection": write.connection,
        "key": write.item_key,
        "field": WriteField(write.field).value,
        "old": _encode(write.old),
        "new": _encode(write.new),
        "expected_revision": write.expected_revision,
        "status": AuditStatus.PLANNED.value,
        "move": None if move is None else {k: v for k, v in move.items() if k != "position"},
        "move_position": None if move is None else move["position"],
        "planned_at": planned_at,
    }


def _encode(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _decode(value: object) -> Any:
    """JSON has no tuples: label sets come back as lists and are turned back into tuples."""
    return tuple(value) if isinstance(value, list) else value


def _planned_write(row: Row) -> PlannedWrite:
    return PlannedWrite(
        connection=row["connection"],
        item_key=row["key"],
        field=WriteField(row["field"]),
        old=_decode(row["old"]),
        new=_decode(row["new"]),
        expected_revision=row["expected_revision"],
    )


class AuditStore(StoreBase):
    def record_plan(self, run_id: int, plan: ConnectionPlan) -> int:
        """Record a connection's plan (field writes and the RANK rows of its moves).

        Idempotent: a row already recorded is refreshed while still `planned` and left alone
        once it was tried. Returns the number of rows in the plan.
        """
        now = self._now()
        rows = [_plan_values(run_id, write, now) for write in plan.writes]
        for index, move in enumerate(plan.moves):
            for position, write in enumerate(move.writes):
                anchor = {"index": index, "after_key": move.after_key}
                anchor |= {"before_key": move.before_key, "position": position}
                rows.append(_plan_values(run_id, write, now, anchor))
        statement = self._insert(WRITES)
        statement = statement.on_conflict_do_update(
            index_elements=["run_id", "connection", "key", "field"],
            set_={name: statement.excluded[name] for name in _PLAN_COLUMNS},
            where=WRITES.c.status == AuditStatus.PLANNED.value,
        )
        with self._writing() as db:
            for chunk in batched(rows, BATCH_ROWS):
                db.execute(statement, chunk)
        return len(rows)

    def pending_plan(self, run_id: int, connection: str) -> ConnectionPlan:
        """The part of a recorded plan not yet tried, rebuilt with its rank moves (each move
        keeps its anchor and the order of its remaining items)."""
        rows = self._rows(run_id, connection=connection, status=AuditStatus.PLANNED)
        writes = tuple(_planned_write(row) for row in rows if row["move"] is None)
        grouped: dict[int, list[Row]] = defaultdict(list)
        for row in rows:
            if row["move"] is not None:
                grouped[int(row["move"]["index"])].append(row)
        moves = []
        for index in sorted(grouped):
            members = sorted(grouped[index], key=lambda row: row["move_position"])
            anchor = members[0]["move"]
            moves.append(
                RankMove(
                    connection=connection,
                    item_keys=tuple(row["key"] for row in members),
                    after_key=anchor.get("after_key"),
                    before_key=anchor.get("before_key"),
                    writes=tuple(_planned_write(row) for row in members),
                )
            )
        return ConnectionPlan(connection=connection, writes=writes, moves=tuple(moves))

    def record_write_result(self, run_id: int, result: WriteResult) -> None:
        """Update the planned row with the connector's answer; `LookupError` if not planned."""
        self.record_write_results(run_id, [result])

    def record_write_results(self, run_id: int, results: Iterable[WriteResult]) -> int:
        count = 0
        with self._writing() as db:
            for result in results:
                self._apply_result(db, run_id, result)
                count += 1
        return count

    def _apply_result(self, db: Connection, run_id: int, result: WriteResult) -> None:
        write = result.write
        scope = (
            (WRITES.c.run_id == run_id)
            & (WRITES.c.connection == write.connection)
            & (WRITES.c.key == write.item_key)
            & (WRITES.c.field == WriteField(write.field).value)
        )
        values = {
            "status": AuditStatus(result.status.value).value,
            "error": result.error,
            "new_revision": result.new_revision,
            "applied_at": self._now(),
        }
        if db.execute(update(WRITES).where(scope).values(**values)).rowcount == 0:
            raise LookupError(
                f"run {run_id} has no planned write of {write.field} on "
                f"{write.connection}/{write.item_key}"
            )

    def audit_rows(
        self,
        run_id: int,
        *,
        connection: str | None = None,
        status: AuditStatus | str | None = None,
        limit: int | None = None,
        order: AuditOrder = "planned",
    ) -> list[AuditRow]:
        """The run's audit log (or its first `limit` rows), in the order asked for."""
        return [
            AuditRow(
                run_id=row["run_id"],
                write=_planned_write(row),
                status=AuditStatus(row["status"]),
                error=row["error"],
                new_revision=row["new_revision"],
                planned_at=row["planned_at"],
                applied_at=row["applied_at"],
            )
            for row in self._rows(
                run_id, connection=connection, status=status, limit=limit, order=order
            )
        ]

    def audit_counts(self, run_id: int) -> dict[AuditStatus, int]:
        """Rows of the run's audit log per status, every status present; counted by the
        database, so a report of 50,000 writes never loads them."""
        query = (
            select(WRITES.c.status, func.count())
            .where(WRITES.c.run_id == run_id)
            .group_by(WRITES.c.status)
        )
        with self._reading() as db:
            found = {AuditStatus(status): count for status, count in db.execute(query)}
        return {status: found.get(status, 0) for status in AuditStatus}

    def audit_tally(self, run_id: int) -> list[tuple[str, str, AuditStatus, int]]:
        """(connection, field, status, rows) of the run's audit log, counted by the database:
        where a run's writes went, per tracker and field, without loading them."""
        columns = (WRITES.c.connection, WRITES.c.field, WRITES.c.status)
        query = (
            select(*columns, func.count())
            .where(WRITES.c.run_id == run_id)
            .group_by(*columns)
            .order_by(*columns)
        )
        with self._reading() as db:
            return [
                (connection, field, AuditStatus(status), count)
                for connection, field, status, count in db.execute(query)
            ]

    def _rows(
        self,
        run_id: int,
        *,
        connection: str | None,
        status: AuditStatus | str | None,
        limit: int | None = None,
        order: AuditOrder = "planned",
    ) -> list[Row]:
        query = select(WRITES).where(WRITES.c.run_id == run_id)
        if order == "item":
            # Code point order on both backends (PostgreSQL's default collation is the
            # locale's), so the first rows are the first in a Python sort too.
            columns = [WRITES.c.connection, WRITES.c.key, WRITES.c.field]
            if self.backend == "postgresql":
                query = query.order_by(*(column.collate("C") for column in columns))
            else:
                query = query.order_by(*columns)
        else:
            query = query.order_by(WRITES.c.id)
        if connection is not None:
            query = query.where(WRITES.c.connection == connection)
        if status is not None:
            query = query.where(WRITES.c.status == AuditStatus(status).value)
        if limit is not None:
            query = query.limit(limit)
        with self._reading() as db:
            return list(db.execute(query).mappings())
