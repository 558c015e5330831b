"""Config models of the tracker connections (the part a connector reads).

Each model is strict (`extra="forbid"`) so a typo in a key is an error, and carries a `kind`
literal so `spm_sync.config.model` can validate the list of connections as a discriminated union.
Secrets are never values here, only the names of environment variables that hold them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
)

from connectors.base import ConnectorError
from spm_sync.core.domain import Level
from spm_sync.core.secrets import EnvName, read_secret


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ConnectionName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
TrackerUrl = Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]


def connection_secret(connection: str, env_name: str, environ: Mapping[str, str]) -> str:
    """`read_secret` for a connector: a missing secret fails that connection, by name."""
    try:
        return read_secret(env_name, environ)
    except LookupError as missing:
        raise ConnectorError(f"{connection}: {missing}") from None


class BasicAuth(StrictModel):
    """Jira Cloud: account email + API token. Jira Data Center: username + password."""

    method: Literal["basic"] = "basic"
    user_env: EnvName
    token_env: EnvName


class BearerAuth(StrictModel):
    """Jira Data Center personal access token, or an OAuth access token."""

    method: Literal["bearer"]
    token_env: EnvName


def _auth_method(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("method", "basic"))
    return str(getattr(value, "method", "basic"))


JiraAuth = Annotated[
    Annotated[BasicAuth, Tag("basic")] | Annotated[BearerAuth, Tag("bearer")],
    Discriminator(_auth_method),
]


class PatAuth(StrictModel):
    """Azure DevOps personal access token (sent as basic auth with an empty user name)."""

    token_env: EnvName


class RetrySettings(StrictModel):
    max_attempts: int = Field(6, ge=1, le=20)
    base_delay_seconds: float = Field(0.5, gt=0, le=60)
    max_wait_seconds: float = Field(120.0, gt=0, le=3600)


class TransferLimits(StrictModel):
    """What one connection may cost a run at most, so a misbehaving tracker fails its connection
    with the reason instead of looping, hanging or filling memory (`connectors.transfer`).

    Defaults fit a 200,000-item portfolio with room to spare: the largest pages are Data Center
    searches of 1,000 issues with fields and Azure DevOps batches of 200 items with relations
    (a few MB each); the most pages are a Cloud incremental pull at 100 issues a page (2,000).
    """

    request_deadline_seconds: float = Field(300.0, gt=0, le=3600)
    """One request, connect to last byte, however slowly the server sends."""
    pull_deadline_seconds: float = Field(7200.0, gt=0, le=86400)
    """One connection's pull and the key scan that follows it in the same run."""
    max_response_mb: float = Field(64.0, gt=0, le=2048)
    """Largest answer read; refused at once when its Content-Length says more."""
    max_pages: int = Field(10_000, ge=1, le=1_000_000)
    """Most search pages (Jira) or WIQL queries (Azure DevOps) of one pull or key scan."""


def _field_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a field name, not empty")
    return value.strip()


class JiraWsjfFields(StrictModel):
    """Field names as users see them in Jira (resolved to ids through GET /field)."""

    business_value: str
    time_criticality: str
    risk_reduction: str
    job_size: str
    score: str | None = None
    """Where the WSJF score is written back (a number custom field)."""
    cost_of_delay: str | None = None

    _names = field_validator("*")(lambda value: value if value is None else _field_name(value))


class AzureDevOpsWsjfFields(StrictModel):
    """Reference names ("Microsoft.VSTS.Common.BusinessValue") or display names ("Effort").

    Azure DevOps has no standard risk-reduction field, so that one must be named.
    """

    business_value: str = "Microsoft.VSTS.Common.BusinessValue"
    time_criticality: str = "Microsoft.VSTS.Common.TimeCriticality"
    risk_reduction: str
    job_size: str = "Microsoft.VSTS.Scheduling.Effort"
    score: str | None = None
    cost_of_delay: str | None = None

    _names = field_validator("*")(lambda value: value if value is None else _field_name(value))


DEFAULT_JIRA_LEVELS: dict[str, Level] = {
    "Initiative": Level.INITIATIVE,
    "Epic": Level.EPIC,
    "Feature": Level.FEATURE,
    "Story": Level.STORY,
    "Task": Level.STORY,
    "Bug": Level.STORY,
    "Sub-task": Level.TASK,
    "Subtask": Level.TASK,
}

DEFAULT_AZURE_DEVOPS_LEVELS: dict[str, Level] = {
    "Epic": Level.EPIC,
    "Feature": Level.FEATURE,
    "User Story": Level.STORY,
    "Product Backlog Item": Level.STORY,
    "Requirement": Level.STORY,
    "Issue": Level.STORY,
    "Bug": Level.STORY,
    "Task": Level.TASK,
}


def _parse_levels(value: object) -> object:
    """Accept level names ("epic") as well as `Level` members in YAML."""
    if isinstance(value, dict):
        parsed: dict[object, object] = {}
        for type_name, level in value.items():
            if isinstance(level, str):
                try:
                    level = Level.parse(level)
                except KeyError:
                    allowed = ", ".join(member.label for member in Level)
                    raise ValueError(
                        f"level {level!r} of type {type_name!r} is not one of: {allowed}"
                    ) from None
            parsed[type_name] = level
        return parsed
    return value


class JiraSettings(StrictModel):
    kind: Literal["jira"]
    name: ConnectionName
    url: TrackerUrl
    deployment: Literal["auto", "cloud", "datacenter"] = "auto"
    """`auto` asks serverInfo once per run (deploymentType "Cloud" or "Server"/"DataCenter")."""
    auth: JiraAuth
    jql: str
    """The scope, as JQL without ORDER BY (spm-sync adds a stable order)."""
    wsjf_fields: JiraWsjfFields
    levels: dict[str, Level] = Field(default_factory=lambda: dict(DEFAULT_JIRA_LEVELS))
    """Issue type name -> level. Types not listed are pulled but have no level."""
    epic_link_field: str = "Epic Link"
    parent_link_field: str = "Parent Link"
    """Data Center custom fields that carry the hierarchy above stories (Advanced Roadmaps)."""
    rank_field: str = "Rank"
    workers: int = Field(4, ge=1, le=32)
    """Parallel bulk-fetch calls (Cloud)."""
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    """Longest wait for the next bytes of an answer (`limits` bounds the whole request)."""
    verify_tls: bool = True
    retry: RetrySettings = RetrySettings()
    limits: TransferLimits = TransferLimits()

    _levels = field_validator("levels", mode="before")(_parse_levels)

    @field_validator("jql")
    @classmethod
    def _jql_has_no_order(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a JQL query, not empty")
        if re.search(r"\border\s+by\b", value, re.IGNORECASE):
            raise ValueError("must not contain ORDER BY (spm-sync orders by key for stable paging)")
        return value.strip()


class AzureDevOpsScope(StrictModel):
    """What to pull: WIQL conditions combined with AND. All optional; empty means the project."""

    work_item_types: list[str] = Field(default_factory=list)
    area_paths: list[str] = Field(default_factory=list)
    """Each matched with UNDER, so sub-areas are included."""
    wiql_where: str | None = None
    """Extra WIQL condition, e.g. "[System.State] <> 'Removed'"."""


class AzureDevOpsSettings(StrictModel):
    kind: Literal["azure_devops"]
    name: ConnectionName
    url: TrackerUrl
    """The organization URL, e.g. https://dev.azure.com/contoso."""
    project: str
    auth: PatAuth
    scope: AzureDevOpsScope = AzureDevOpsScope()
    wsjf_fields: AzureDevOpsWsjfFields
    levels: dict[str, Level] = Field(default_factory=lambda: dict(DEFAULT_AZURE_DEVOPS_LEVELS))
    rank_field: str = "Microsoft.VSTS.Common.StackRank"
    """Scrum projects use Microsoft.VSTS.Common.BacklogPriority."""
    priority_field: str = "Microsoft.VSTS.Common.Priority"
    workers: int = Field(4, ge=1, le=32)
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    """Longest wait for the next bytes of an answer (`limits` bounds the whole request)."""
    verify_tls: bool = True
    retry: RetrySettings = RetrySettings()
    limits: TransferLimits = TransferLimits()

    _levels = field_validator("levels", mode="before")(_parse_levels)


TrackerSettings = JiraSettings | AzureDevOpsSettings
