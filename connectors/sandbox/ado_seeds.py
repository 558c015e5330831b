"""Seed items of a portfolio as the Azure DevOps sandbox stores them: fields and revisions.

A seed becomes the fields of its latest revision plus the revisions before it: one per state
in its `status_history` (the first at creation) and one more at `updated` when it was edited
after its last state change (`ado_revision_log.seeded_revisions`). A seed without a history
was created in its state: revision 1 at `created`, revision 2 at `updated` when that is later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.sandbox.ado_patch import normalize_tags
from connectors.sandbox.ado_render import HUMAN
from connectors.sandbox.ado_revision_log import STATE_CHANGE_DATE, SeededRevision, seeded_revisions
from connectors.sandbox.portfolio import SeedItem


def seed_fields(
    seed: SeedItem, position: int, project: str
) -> tuple[int, dict[str, Any], list[SeededRevision]]:
    """(id, fields of the latest revision, every revision oldest first) of `seed`, the
    `position`-th of the seeds (its default StackRank)."""
    work_item_id = seed_id(seed)
    created = utc(seed.created)
    changed = max(created, utc(seed.updated))
    history = [(utc(at), state) for at, state in seed.status_history]
    revisions = seeded_revisions(created, changed, seed.status, history)
    latest = revisions[-1]
    fields: dict[str, Any] = {
        "System.Id": work_item_id,
        "System.AreaPath": seed.project,
        "System.TeamProject": project,
        "System.IterationPath": project,
        "System.WorkItemType": seed.type,
        "System.State": seed.status,
        "System.Rev": latest.rev,
        "System.CreatedDate": created,
        "System.ChangedDate": changed,
        "System.CreatedBy": HUMAN,
        "System.ChangedBy": HUMAN,
        "System.Title": seed.title,
        STATE_CHANGE_DATE: latest.state_changed,
        "Microsoft.VSTS.Common.Priority": 2,
        "Microsoft.VSTS.Common.StackRank": float(seed.rank)
        if seed.rank is not None
        else position * 1000.0,
    }
    if seed.labels:
        fields["System.Tags"] = normalize_tags(";".join(seed.labels))
    # Values are served verbatim (also a non-number in a number-ish field): that is the mess
    # a connector meets in production. Empty values are absent, as in the service's answers.
    for name, value in (
        ("Microsoft.VSTS.Common.BusinessValue", seed.business_value),
        ("Microsoft.VSTS.Common.TimeCriticality", seed.time_criticality),
        ("Custom.RiskReduction", seed.risk_reduction),
        ("Microsoft.VSTS.Scheduling.Effort", seed.job_size),
    ):
        if value is not None:
            fields[name] = value
    return work_item_id, fields, revisions


def seed_id(seed: SeedItem) -> int:
    if not seed.key.isdigit():
        raise ValueError(f"Azure DevOps seed item keys are decimal ids, not {seed.key!r}")
    return int(seed.key)


def key_id(key: str) -> int:
    if not key.isdigit():
        raise ValueError(f"Azure DevOps links point at decimal ids, not {key!r}")
    return int(key)


def utc(moment: datetime) -> datetime:
    """A seed's time in UTC; a time without a zone is refused, as the Jira sandbox refuses it
    (guessing its zone would shift `ChangedDate` and every incremental window after it)."""
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment!r} has no time zone")
    return moment.astimezone(UTC)
