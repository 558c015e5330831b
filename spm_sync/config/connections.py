"""A configured connection: the tracker settings a connector reads, plus what the domain adds.

`connectors.settings` holds what a connector needs to talk to its tracker. The pipeline also
needs to know, per connection, how items point at Key Results, how far back an incremental pull
overlaps, how often deleted items are looked for, and what may be written back. Both parts are
one YAML mapping, so `JiraConnection` / `AzureDevOpsConnection` extend the tracker settings and
the list of connections is a discriminated union on `kind`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator, model_validator

from connectors.settings import AzureDevOpsSettings, JiraSettings, StrictModel
from spm_sync.config.validation import scalar_text
from spm_sync.core.domain import WriteField

PriorityName = Annotated[str, BeforeValidator(scalar_text), Field(min_length=1)]


class OkrLinking(StrictModel):
    """How items of this connection point at Key Results."""

    label_prefix: str = Field("kr-", min_length=1)
    """A label (Jira) or tag (Azure DevOps) `<prefix><KR id or alias>` aligns the item."""
    link_types: list[str] = Field(default_factory=list)
    """Link types from an item to a Key Result item that align it (e.g. "Drives")."""
    item_types: list[str] = Field(default_factory=list)
    """Tracker item types that stand for Key Results (e.g. "Key Result"); their keys are
    matched against the aliases in the OKR file."""
    objective_types: list[str] = Field(default_factory=list)
    """Tracker item types that stand for objectives (e.g. "Objective"); a Key Result item's
    parent among them is its objective. Their keys are matched against the objectives' ids and
    aliases in the OKR file; the others join the OKR tree from the tracker alone."""


class PriorityBand(StrictModel):
    top_percent: float = Field(gt=0, le=100)
    """The best-scored `top_percent` % of the ranked items (after the bands above it)."""
    priority: PriorityName
    """Tracker priority name (Jira "Highest") or value (Azure DevOps 1)."""


class PriorityWriteBack(StrictModel):
    bands: list[PriorityBand] = Field(min_length=1)
    default: PriorityName | None = None
    """Priority of scored items below the last band; unset leaves them as they are."""

    @field_validator("bands")
    @classmethod
    def _bands_grow(cls, bands: list[PriorityBand]) -> list[PriorityBand]:
        cutoffs = [band.top_percent for band in bands]
        if cutoffs != sorted(set(cutoffs)):
            raise ValueError("top_percent must increase from one band to the next")
        return bands


class ConnectionWriteBack(StrictModel):
    """What spm-sync may write to this tracker (only in `write_back.mode: apply`)."""

    score: bool = False
    """Write the WSJF score into the field named by `wsjf_fields.score`."""
    cost_of_delay: bool = False
    """Write the Cost of Delay into the field named by `wsjf_fields.cost_of_delay`."""
    rank: bool = False
    """Reorder the backlog by WSJF (only the items that must move)."""
    priority: PriorityWriteBack | None = None
    """Set the tracker's native priority from WSJF bands."""
    orphan_label: str | None = Field(None, min_length=1)
    """Label/tag added to in-scope items that align to no Key Result."""

    @property
    def enabled(self) -> bool:
        return bool(self.switched_on)

    @property
    def switched_on(self) -> dict[str, WriteField]:
        """What is written, by setting (`write_back.score` -> WSJF_SCORE), in config order."""
        switches = {
            "write_back.score": (self.score, WriteField.WSJF_SCORE),
            "write_back.cost_of_delay": (self.cost_of_delay, WriteField.COST_OF_DELAY),
            "write_back.rank": (self.rank, WriteField.RANK),
            "write_back.priority": (self.priority is not None, WriteField.PRIORITY),
            "write_back.orphan_label": (self.orphan_label is not None, WriteField.LABELS),
        }
        return {setting: field for setting, (on, field) in switches.items() if on}


class ConnectionPolicy(StrictModel):
    """The domain's part of a connection."""

    okr: OkrLinking = OkrLinking()
    overlap_minutes: int = Field(10, ge=0, le=24 * 60)
    """An incremental pull asks for items updated since the last watermark minus this, so
    clock skew and eventually consistent search do not lose updates."""
    deletion_scan_hours: float = Field(24, ge=0)
    """How often the cheap key-only scan that finds deleted items runs; 0 = every run."""
    max_deletion_share: float = Field(0.2, ge=0, le=1)
    """The mass-deletion guard (`spm_sync.pipeline.deletion_guard`): a full sync or deletion scan
    that would mark more than this share of the stored items deleted marks none, and the run
    reports it as a problem; 1 accepts any deletion (for one run, after a deliberate clean-up).
    """
    write_back: ConnectionWriteBack = ConnectionWriteBack()

    @model_validator(mode="after")
    def _write_targets_named(self) -> ConnectionPolicy:
        fields = getattr(self, "wsjf_fields", None)
        if self.write_back.score and getattr(fields, "score", None) is None:
            raise ValueError("write_back.score is on but wsjf_fields.score names no field")
        if self.write_back.cost_of_delay and getattr(fields, "cost_of_delay", None) is None:
            raise ValueError(
                "write_back.cost_of_delay is on but wsjf_fields.cost_of_delay names no field"
            )
        return self


class JiraConnection(ConnectionPolicy, JiraSettings):
    """A Jira Cloud or Data Center connection (`kind: jira`)."""


class AzureDevOpsConnection(ConnectionPolicy, AzureDevOpsSettings):
    """An Azure DevOps Services project (`kind: azure_devops`)."""


Connection = Annotated[JiraConnection | AzureDevOpsConnection, Field(discriminator="kind")]


def connection_secrets(connection: JiraConnection | AzureDevOpsConnection) -> dict[str, str]:
    """Key path (below the connection) -> environment variable that holds a secret."""
    auth = connection.auth
    user_env = getattr(auth, "user_env", None)
    secrets = {"auth.user_env": user_env} if user_env else {}
    secrets["auth.token_env"] = auth.token_env
    return secrets
