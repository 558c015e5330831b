"""Claims of scheduled slots: how `serve` workers sharing a store run each slot once.

A worker that fires a slot inserts its row and runs the cycle only if the insert succeeded
(`claim_slot`); the others find the row and leave the slot alone. The same rows tell a
restarted worker whether the slot it missed was run by someone else, and whether the schedule
ran at all before (`latest_claim`), which decides whether a missed slot is made up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, select, update

from spm_sync.store.base import StoreBase
from spm_sync.store.tables import ScheduleSlotRow

SLOTS: Table = ScheduleSlotRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class SlotClaim:
    slot: datetime
    schedule: str
    worker: str
    claimed_at: datetime
    run_id: int | None
    outcome: str | None


class SlotStore(StoreBase):
    def claim_slot(self, slot: datetime, schedule: str, worker: str) -> bool:
        """Claim `slot` for `worker`; False when another worker (or an earlier start of this
        one) already has. The primary key decides, so two workers claiming together cannot
        both win, on either backend."""
        values = {
            "slot": slot,
            "schedule": schedule,
            "worker": worker,
            "claimed_at": self._now(),
        }
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT here.
        statement = (
            self._insert(SLOTS).values(values).on_conflict_do_nothing().returning(SLOTS.c.slot)
        )
        with self._writing() as db:
            return db.execute(statement).first() is not None

    def record_slot_run(self, slot: datetime, run_id: int | None, outcome: str) -> None:
        """What the claimed `slot` ran: its run (None when the cycle was skipped) and status."""
        with self._writing() as db:
            db.execute(
                update(SLOTS).where(SLOTS.c.slot == slot).values(run_id=run_id, outcome=outcome)
            )

    def slot_claim(self, slot: datetime) -> SlotClaim | None:
        with self._reading() as db:
            row = db.execute(select(SLOTS).where(SLOTS.c.slot == slot)).mappings().first()
        return None if row is None else SlotClaim(**row)

    def latest_claim(self, schedule: str, *, before: datetime | None = None) -> SlotClaim | None:
        """The newest claimed slot of `schedule` (before `before`)."""
        query = select(SLOTS).where(SLOTS.c.schedule == schedule)
        if before is not None:
            query = query.where(SLOTS.c.slot < before)
        with self._reading() as db:
            row = db.execute(query.order_by(SLOTS.c.slot.desc()).limit(1)).mappings().first()
        return None if row is None else SlotClaim(**row)

    def slot_claims(self) -> list[SlotClaim]:
        """Every claim, oldest slot first."""
        with self._reading() as db:
            rows = db.execute(select(SLOTS).order_by(SLOTS.c.slot)).mappings().all()
        return [SlotClaim(**row) for row in rows]
