"""The pure mapping from Azure DevOps JSON to `WorkItem`, on the spec's own examples."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.azure_devops_fields import (
    FieldMap,
    FieldRef,
    configured_fields,
    resolve_from_catalog,
    resolve_from_columns,
    select_names,
)
from connectors.azure_devops_mapping import (
    MalformedWorkItem,
    MappingContext,
    category_of,
    normalize,
    parse_tags,
    state_category,
)
from connectors.base import UnknownFieldError
from connectors.values import number_or_problem
from spm_sync.core.domain import Level, Link, StatusCategory
from tests.azure_devops_fixtures import CATALOG, make_settings

EXAMPLES = Path(__file__).resolve().parent.parent / "specs" / "ado-wit-7.1-examples"
FIELDS = FieldMap(
    business_value="Microsoft.VSTS.Common.BusinessValue",
    time_criticality="Microsoft.VSTS.Common.TimeCriticality",
    risk_reduction="Custom.RiskReduction",
    job_size="Microsoft.VSTS.Scheduling.Effort",
    rank="Microsoft.VSTS.Common.BacklogPriority",
    priority="Microsoft.VSTS.Common.Priority",
)
CONTEXT = MappingContext(
    connection="ado",
    organization_url="https://dev.azure.com/fabrikam/",
    project="Fabrikam-Fiber-Git",
    levels={"Product Backlog Item": Level.STORY, "Task": Level.TASK},
)


def spec_items() -> dict[int, dict[str, Any]]:
    path = EXAMPLES / "workItems" / "GET__wit_WorkItems_ids-_ids___expand-all.json"
    body = json.loads(path.read_text(encoding="utf-8-sig"))["responses"]["200"]["body"]
    return {item["id"]: item for item in body["value"]}


def test_spec_example_task_maps_tags_parent_related_and_effort() -> None:
    items = spec_items()

    backlog_item = normalize(items[297], FIELDS, CONTEXT)
    task = normalize(items[299], FIELDS, CONTEXT)

    assert backlog_item.job_size == 8.0
    assert backlog_item.level is Level.STORY
    assert backlog_item.parent_key is None
    assert backlog_item.links == ()  # children and attachments are not links
    assert task.key == "299" and task.revision == "7"
    assert task.labels == ("Tag1", "Tag2")
    assert task.parent_key == "297"
    assert task.links == (Link("System.LinkTypes.Related", "outward", "300"),)
    assert task.team == "Fabrikam-Fiber-Git\\Website"
    assert task.status_category is StatusCategory.TODO
    assert task.updated == datetime(2014, 12, 29, 20, 49, 28, 740000, tzinfo=UTC)
    assert task.url == "https://dev.azure.com/fabrikam/Fabrikam-Fiber-Git/_workitems/edit/299"


def test_states_use_the_type_table_before_the_defaults() -> None:
    context = MappingContext(
        "ado", "https://x/o", "P", state_categories={"Task": {"To Do": StatusCategory.DONE}}
    )
    task = normalize(spec_items()[299], FIELDS, context)
    assert task.status_category is StatusCategory.DONE
    assert state_category("Bug", "Resolved", {}) is StatusCategory.IN_PROGRESS
    assert state_category("Bug", "Parked", {}) is None


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("Proposed", StatusCategory.TODO),
        ("InProgress", StatusCategory.IN_PROGRESS),
        ("Resolved", StatusCategory.IN_PROGRESS),
        ("Completed", StatusCategory.DONE),
        ("Removed", StatusCategory.DONE),
        ("Something", None),
        (None, None),
    ],
)
def test_state_categories_fold_into_three_buckets(
    category: str | None, expected: StatusCategory | None
) -> None:
    assert category_of(category) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, (5.0, None)),
        (2.5, (2.5, None)),
        (" 13 ", (13.0, None)),
        ("", (None, None)),
        (None, (None, None)),
        ("big", (None, "'big' is not a number")),
        ("?", (None, "'?' is not a number")),
        (True, (None, "True is not a number")),
        ("nan", (None, "'nan' is not a number")),
        ({"a": 1}, (None, "{'a': 1} is not a number")),
    ],
)
def test_values_convert_to_numbers_or_problems(
    value: object, expected: tuple[float | None, str | None]
) -> None:
    assert number_or_problem(value) == expected


def test_tags_split_on_semicolons_and_strip() -> None:
    assert parse_tags(" KR-1;kr-2 ;; Payments ") == ("KR-1", "kr-2", "Payments")
    assert parse_tags(None) == ()


def test_system_parent_field_is_used_without_relations() -> None:
    raw = dict(spec_items()[300])
    raw["relations"] = []
    raw["fields"] = {**raw["fields"], "System.Parent": 297}
    assert normalize(raw, FIELDS, CONTEXT).parent_key == "297"


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("System.ChangedDate", "29/12/2014", "System.ChangedDate is not a date"),
        ("System.ChangedDate", "2014-12-29T20:49:28", "System.ChangedDate has no time zone"),
        ("System.CreatedDate", "soon", "System.CreatedDate is not a date"),
        ("System.Title", "", "System.Title is missing"),
        ("System.WorkItemType", None, "System.WorkItemType is missing"),
    ],
)
def test_malformed_items_name_the_id_and_the_problem(
    field: str, value: object, complaint: str
) -> None:
    raw = spec_items()[299]
    raw["fields"][field] = value
    with pytest.raises(MalformedWorkItem, match=f"work item 299: {complaint}"):
        normalize(raw, FIELDS, CONTEXT)


def test_dates_with_seven_fractional_digits_parse() -> None:
    raw = spec_items()[299]
    raw["fields"]["System.ChangedDate"] = "2024-05-01T10:11:12.1234567Z"
    updated = normalize(raw, FIELDS, CONTEXT).updated
    assert updated == datetime(2024, 5, 1, 10, 11, 12, 123456, tzinfo=UTC)


def test_configured_names_resolve_from_columns_in_select_order() -> None:
    configured = configured_fields(make_settings())
    select = select_names(configured)
    columns = [FieldRef(_reference(name), name) for name in select]

    resolved = resolve_from_columns(configured, select, columns)

    assert resolved is not None
    assert resolved.risk_reduction == "Custom.RiskReduction"
    assert resolved.job_size == "Microsoft.VSTS.Scheduling.Effort"
    assert resolved_columns_refused(configured, select, columns)


def resolved_columns_refused(configured: Any, select: Any, columns: list[FieldRef]) -> bool:
    """Columns that drop or reorder a name must not be trusted."""
    return (
        resolve_from_columns(configured, select, columns[:-1]) is None
        and resolve_from_columns(configured, select, list(reversed(columns))) is None
    )


def test_catalog_resolution_suggests_close_names() -> None:
    configured = configured_fields(make_settings(rank_field="Stack Rnak"))
    catalog = [FieldRef(reference, name) for reference, name in CATALOG.items()]

    with pytest.raises(UnknownFieldError) as raised:
        resolve_from_catalog(configured, catalog)

    assert raised.value.setting == "rank_field"
    assert raised.value.candidates[0] == "Stack Rank (Microsoft.VSTS.Common.StackRank)"


def _reference(name: str) -> str:
    for reference, display in CATALOG.items():
        if name in (reference, display):
            return reference
    raise KeyError(name)
