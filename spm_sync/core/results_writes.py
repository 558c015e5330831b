"""The write log of the result document: each planned write and what became of it (capped at
`ListCaps.writes` rows, failures and conflicts first; counts cover every write)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal, get_args

from pydantic import Field, computed_field, model_validator

from spm_sync.core.domain import (
    PlannedWrite,
    WriteField,
    WriteResult,
)
from spm_sync.core.result_types import Count, ResultModel
from spm_sync.core.results_change import WriteTally

WRITES_CAP = 500
"""Write rows listed; failures and conflicts come first, so they are never the ones left out."""
WriteRowStatus = Literal["planned", "written", "unchanged", "conflict", "failed"]
WriteRowValue = float | int | str | tuple[str, ...] | None


class WriteRow(ResultModel):
    """One planned write and, in apply mode, what became of it (the audit log)."""

    connection: str
    key: str
    field: WriteField
    old: WriteRowValue = None
    new: WriteRowValue = None
    expected_revision: str
    status: WriteRowStatus = "planned"
    error: str | None = None

    @classmethod
    def from_planned(
        cls, write: PlannedWrite, status: str = "planned", error: str | None = None
    ) -> WriteRow:
        """The row of `write`; `status` is an audit or `WriteStatus` value (validated)."""
        return cls(
            connection=write.connection,
            key=write.item_key,
            field=write.field,
            old=write.old,
            new=write.new,
            expected_revision=write.expected_revision,
            status=status,
            error=error,
        )

    @classmethod
    def from_result(cls, result: WriteResult) -> WriteRow:
        return cls.from_planned(result.write, result.status.value, result.error)


WRITE_STATUS_ORDER: dict[str, int] = {
    "failed": 0,
    "conflict": 1,
    "written": 2,
    "planned": 3,
    "unchanged": 4,
}
"""The order write rows are listed (and capped) in: what needs a human first."""


def write_row_order(row: WriteRow) -> tuple[int, str, str, str]:
    return (WRITE_STATUS_ORDER[row.status], row.connection, row.key, row.field.value)


class WriteLog(ResultModel):
    """The run's writes: `counts` covers every write; `rows` may be capped (see the module
    docstring) and `counts` defaults to the figures of `rows` when the list is complete."""

    rows: list[WriteRow] = Field(default_factory=list)
    """The first writes in `write_row_order`, at most `caps.writes`."""
    counts: dict[WriteRowStatus, Count] = Field(default_factory=dict)
    """Writes per status, every status present."""
    by_target: list[WriteTally] = Field(default_factory=list)
    """Every write counted per connection and field (empty in older documents)."""

    @model_validator(mode="before")
    @classmethod
    def _counts_from_complete_rows(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "counts" in data:
            return data
        rows = [WriteRow.model_validate(row) for row in data.get("rows") or ()]
        counts = Counter(row.status for row in rows)
        return {**data, "rows": rows, "counts": dict(counts)}

    @model_validator(mode="after")
    def _counts_cover_the_rows(self) -> WriteLog:
        self.counts = {status: self.counts.get(status, 0) for status in get_args(WriteRowStatus)}
        listed = Counter(row.status for row in self.rows)
        short = [status for status, n in listed.items() if n > self.counts[status]]
        if short:
            raise ValueError(
                f"write rows listed with status {', '.join(sorted(short))} outnumber counts "
                f"{self.counts}"
            )
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        """Every write of the run, listed or not."""
        return sum(self.counts.values())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rows_omitted(self) -> int:
        """Writes counted but not listed (the list was capped)."""
        return self.total - len(self.rows)
