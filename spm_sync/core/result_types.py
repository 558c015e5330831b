"""The base model and value types of the result document, shared by its parts.

Kept apart from `spm_sync.core.results` so that parts living in modules of their own
(`spm_sync.core.results_flow`) and the document that holds them can both build on them without
importing each other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from spm_sync.core.domain import Level


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""Timezone-aware, normalized to UTC; a naive datetime is rejected (it is always a bug)."""
Percent = Annotated[float, Field(ge=0, le=100)]
Count = Annotated[int, Field(ge=0)]


class ResultModel(BaseModel):
    """Strict about unknown keys, tolerant of its own computed fields on the way back in."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_computed_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.model_computed_fields:
            return {
                key: value for key, value in data.items() if key not in cls.model_computed_fields
            }
        return data


def _level_label(value: object) -> object:
    """Accept `Level` members, their names or labels; store the label ("epic") for readable
    JSON that survives a reordering of the enum."""
    if isinstance(value, Level):
        return value.label
    if isinstance(value, str):
        return value.strip().lower()
    return value


LevelLabel = Annotated[
    Literal["task", "story", "feature", "epic", "initiative"], BeforeValidator(_level_label)
]
