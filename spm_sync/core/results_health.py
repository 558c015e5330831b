"""How pulling (and pushing) each connection went, for the result document: its request
figures, errors and warnings, and what the mass-deletion guard made of its look for deleted
items."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, computed_field, model_validator

from spm_sync.core.requests import RequestStats
from spm_sync.core.result_types import Count, ResultModel


def _percent_text(share: float) -> str:
    """97.5%, 20%: one decimal at most, so a share just over a limit never reads as equal."""
    return f"{share * 100:.1f}".removesuffix(".0") + "%"


class DeletionCheck(ResultModel):
    """One connection's look for deleted items in this run (its full sync, or the key scan of
    an incremental run) and what the mass-deletion guard (`spm_sync.pipeline.deletion_guard`) made
    of it: the stored items that the answer lacks are marked deleted, or none are."""

    expected: Count
    """Items stored in scope before this run."""
    fetched: Count
    """Keys the tracker answered for the scope."""
    missing: Count
    """Stored items the answer lacks: deleted or moved out of scope, if the answer is right."""
    max_share: float = Field(ge=0, le=1)
    """The connection's `max_deletion_share`."""
    applied: bool
    """The missing items were marked deleted; False: the guard held them back."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def share(self) -> float:
        """The share of the stored items the answer would delete (0..1)."""
        return self.missing / self.expected if self.expected else 0.0

    @property
    def problem(self) -> str | None:
        """The line the run's problems carry when deletions were held back."""
        if self.applied:
            return None
        answered = self.expected - self.missing
        return (
            f"deletions held back: the tracker answered {answered:,} of {self.expected:,} stored "
            f"items ({_percent_text(self.share)} would be deleted, limit "
            f"{_percent_text(self.max_share)}); nothing was marked deleted or written back. "
            "Check the scope and permissions; to accept, raise max_deletion_share (1 = any) "
            "for one run"
        )


class ConnectionHealth(ResultModel):
    """How pulling (and pushing) one connection went. Numbers come from `RequestStats`."""

    name: str
    kind: str
    """The config `kind`: "jira" or "azure_devops"."""
    items_pulled: Count = 0
    sync: Literal["full", "incremental"] = "full"
    deleted_detected: Count = 0
    """Items gone from the tracker or moved out of scope, found by the full key scan, and
    marked deleted (0 when the mass-deletion guard held them back: see `deletions`)."""
    requests_total: Count = 0
    requests_by_endpoint: dict[str, Count] = Field(default_factory=dict)
    """Keys like "POST /rest/api/3/search/jql" (ids folded), see `connectors.http`."""
    retries: Count = 0
    throttled: Count = 0
    waited_seconds: float = Field(0.0, ge=0)
    rate_limit: dict[str, str] = Field(default_factory=dict)
    """The last rate-limit headers the tracker sent (X-RateLimit-Remaining, Retry-After...)."""
    duration_seconds: float = Field(0.0, ge=0)
    warnings: list[str] = Field(default_factory=list)
    """Unknown fields, unparseable values, skipped items: things a human should look at."""
    error: str | None = None
    """Set when the connection failed; the cycle then has status "partial" or "failed"."""
    deletions: DeletionCheck | None = None
    """This run's deletion check; None when none was due (an incremental run between scans)."""

    @model_validator(mode="before")
    @classmethod
    def _total_from_endpoints(cls, data: Any) -> Any:
        if isinstance(data, dict) and "requests_total" not in data:
            by_endpoint = data.get("requests_by_endpoint") or {}
            return {**data, "requests_total": sum(by_endpoint.values())}
        return data

    @property
    def deletions_held_back(self) -> bool:
        return self.deletions is not None and not self.deletions.applied

    @property
    def problem(self) -> str | None:
        """What the run's problems say about this connection: its error, or deletions held
        back (the connection was pulled, but nothing was written to it)."""
        return self.error or (self.deletions.problem if self.deletions is not None else None)

    @classmethod
    def from_stats(
        cls, name: str, kind: str, stats: RequestStats, **fields: Any
    ) -> ConnectionHealth:
        """Health from a connector's `RequestStats`; pass items_pulled, duration etc. as fields."""
        return cls(
            name=name,
            kind=kind,
            requests_total=stats.requests,
            requests_by_endpoint=dict(sorted(stats.by_endpoint.items())),
            retries=stats.retries,
            throttled=stats.throttled,
            waited_seconds=round(stats.waited_seconds, 3),
            rate_limit=dict(stats.rate_limit),
            **fields,
        )
