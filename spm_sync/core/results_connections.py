"""The alignment figures of each connection, beside the totals (`AlignmentSummary.by_connection`).

Totals over every tracker hide the tracker that lags: a Key Result moved by Jira work is
covered in the totals even when the Azure DevOps teams, who were meant to move it too, have
nothing on it. Each connection's block counts exactly as the totals do (its figures add up to
them) and lists the Key Results that no active in-scope work *of that connection* moves
(built by `spm_sync.pipeline.connection_figures`).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from spm_sync.core.result_types import Count, Percent, ResultModel


class ConnectionFigures(ResultModel):
    """One connection's alignment: its in-scope work, how much of it moves a Key Result (by
    items and by job size), its orphans, and the Key Results none of its active work moves."""

    name: str
    in_scope_count: Count = 0
    aligned_count: Count = 0
    alignment_pct_items: Percent | None = None
    """None when the connection has no item in scope."""
    in_scope_job_size: float = Field(0.0, ge=0)
    aligned_job_size: float = Field(0.0, ge=0)
    alignment_pct_job_size: Percent | None = None
    """Over the in-scope items with a usable job size; None when none has one."""
    unsized_count: Count = 0
    """In-scope items without a usable job size (left out of both job size sums)."""
    orphans: Count = 0
    uncovered_key_results: list[str] = Field(default_factory=list)
    """Ids of the Key Results that no active in-scope item of this connection moves."""

    @model_validator(mode="after")
    def _aligned_within_scope(self) -> ConnectionFigures:
        if self.aligned_count > self.in_scope_count:
            raise ValueError(
                f"{self.name}: aligned_count {self.aligned_count} exceeds in_scope_count "
                f"{self.in_scope_count}"
            )
        return self
