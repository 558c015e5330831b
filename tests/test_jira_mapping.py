from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.jira_fields import FieldMap, resolve_fields
from connectors.jira_mapping import (
    MalformedIssue,
    normalize,
    requested_fields,
)
from connectors.settings import DEFAULT_JIRA_LEVELS
from connectors.values import NotANumber, to_number
from spm_sync.core.domain import Level, Link, StatusCategory, WorkItem
from tests.jira_fixtures import (
    CLOUD,
    EPIC_LINK_ID,
    PARENT_LINK_ID,
    field_catalog,
    raw_issue,
    settings,
)


def field_map(*, datacenter: bool = False) -> FieldMap:
    fields, _ = resolve_fields(
        field_catalog(datacenter=datacenter), settings(), datacenter=datacenter
    )
    return fields


def item(raw: dict[str, Any], *, datacenter: bool = False) -> WorkItem:
    return normalize(
        raw,
        field_map(datacenter=datacenter),
        connection="acme-jira",
        base_url=CLOUD + "/",
        levels=DEFAULT_JIRA_LEVELS,
    )


def test_normalizes_the_spec_shaped_issue() -> None:
    work = item(raw_issue("PAY-7", 10002))

    assert work.connection == "acme-jira"
    assert (work.key, work.id, work.type, work.level) == ("PAY-7", "10002", "Epic", Level.EPIC)
    assert work.title == "Card tokenisation for repeat buyers"
    assert (work.status, work.status_category) == ("In Progress", StatusCategory.IN_PROGRESS)
    assert work.parent_key == "PAY-1"
    assert work.labels == ("kr-1.2", "payments")
    assert work.links == (
        Link("Drives", "outward", "OKR-3"),
        Link("Relates", "inward", "WEB-3"),
    )
    assert work.project == "PAY"
    assert work.components == ("Checkout", "Risk")
    assert work.url == f"{CLOUD}/browse/PAY-7"
    assert work.created == datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
    assert work.updated == datetime(2024, 5, 2, 12, 5, 31, 123000, tzinfo=UTC)
    assert work.revision == "2024-05-02T14:05:31.123+0200"
    assert work.priority == "Medium"
    assert work.rank == "0|i0000f:"
    assert (work.business_value, work.time_criticality, work.risk_reduction, work.job_size) == (
        8.0,
        5.0,
        3.0,
        13.0,
    )
    assert (work.wsjf_score, work.cost_of_delay) == (1.2308, 16.0)
    assert work.field_problems == {}


def test_the_project_is_the_prefix_of_the_key_not_a_requested_field() -> None:
    work = item(raw_issue("CORE_2-41", 10009, project=None))

    assert (work.project, work.team) == ("CORE_2", "CORE_2")


def test_requested_fields_are_exactly_what_normalize_reads() -> None:
    assert requested_fields(field_map()) == [
        "summary",
        "issuetype",
        "status",
        "parent",
        "labels",
        "issuelinks",
        "components",
        "created",
        "updated",
        "priority",
        "customfield_10030",
        "customfield_10031",
        "customfield_10032",
        "customfield_10033",
        "customfield_10034",
        "customfield_10035",
        "customfield_10019",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (8, 8.0),
        (0, 0.0),
        (2.5, 2.5),
        ("8", 8.0),
        (" 8.0 ", 8.0),
        ("13", 13.0),
        ({"value": "8", "id": "1"}, 8.0),
        ({"value": 21}, 21.0),
        (None, None),
        ("", None),
        ("   ", None),
        ({"value": None}, None),
    ],
)
def test_to_number_accepts_numbers_options_and_numeric_strings(value: Any, expected: Any) -> None:
    assert to_number(value) == expected


@pytest.mark.parametrize(
    "value",
    ["big", "?", "8 points", "nan", "inf", True, [8], {"id": "1"}, {"value": "XL"}, float("nan")],
)
def test_to_number_rejects_everything_else(value: Any) -> None:
    with pytest.raises(NotANumber):
        to_number(value)


def test_a_non_number_becomes_a_field_problem_not_a_failure() -> None:
    work = item(
        raw_issue("PAY-8", 10003, customfield_10033="big", customfield_10031={"value": "?"})
    )
    assert work.job_size is None and work.time_criticality is None
    assert work.field_problems == {
        "job_size": "Job Size: 'big' is not a number",
        "time_criticality": "Time Criticality: '?' is not a number",
    }
    assert work.business_value == 8.0


def test_missing_inputs_are_none_without_problems() -> None:
    work = item(raw_issue("PAY-9", 10004, customfield_10030=None, customfield_10034=None))
    assert work.business_value is None and work.wsjf_score is None
    assert work.field_problems == {}


@pytest.mark.parametrize(
    ("key", "category"),
    [
        ("new", StatusCategory.TODO),
        ("indeterminate", StatusCategory.IN_PROGRESS),
        ("done", StatusCategory.DONE),
    ],
)
def test_status_category_from_its_key(key: str, category: StatusCategory) -> None:
    status = {"name": "Whatever", "statusCategory": {"key": key, "name": "Localised name"}}
    assert item(raw_issue("PAY-2", 2, status=status)).status_category is category


def test_unknown_type_has_no_level() -> None:
    work = item(raw_issue("PAY-3", 3, issuetype={"name": "Spike"}))
    assert work.type == "Spike" and work.level is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"fields": None}, "no fields"),
        ({"key": None}, "no key"),
    ],
)
def test_issue_without_key_or_fields_is_malformed(change: dict[str, Any], reason: str) -> None:
    raw = raw_issue("PAY-4", 4)
    for name, value in change.items():
        raw.pop(name) if value is None else raw.update({name: value})
    with pytest.raises(MalformedIssue, match=reason):
        item(raw)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"issuetype": None}, "no issuetype"),
        ({"issuetype": {"id": "1"}}, "no issuetype"),
        ({"status": None}, "no status"),
        ({"status": {"name": "Odd", "statusCategory": {"key": "weird"}}}, "statusCategory"),
        ({"updated": None}, "updated is missing"),
        ({"updated": "yesterday"}, "not a timestamp"),
        ({"updated": "2024-05-02T14:05:31"}, "no time zone"),
        ({"created": "2024-13-45"}, "created"),
    ],
)
def test_issue_missing_required_parts_is_malformed(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(MalformedIssue, match=reason):
        item(raw_issue("PAY-5", 5, **fields))


def test_datacenter_hierarchy_from_epic_link_and_parent_link() -> None:
    story = raw_issue("PAY-20", 20, parent=None, **{EPIC_LINK_ID: "PAY-7"})
    epic = raw_issue(
        "PAY-7",
        7,
        parent=None,
        **{
            PARENT_LINK_ID: {
                "hasEpicLinkFieldDependency": False,
                "data": {"id": 1, "key": "INIT-1"},
            }
        },
    )
    subtask = raw_issue(
        "PAY-21", 21, parent={"id": "20", "key": "PAY-20"}, **{EPIC_LINK_ID: "PAY-7"}
    )
    orphan = raw_issue("PAY-22", 22, parent=None)

    assert item(story, datacenter=True).parent_key == "PAY-7"
    assert item(epic, datacenter=True).parent_key == "INIT-1"
    assert item(subtask, datacenter=True).parent_key == "PAY-20"
    assert item(orphan, datacenter=True).parent_key is None


def test_links_without_type_or_target_are_ignored() -> None:
    links = [
        {"id": "1", "outwardIssue": {"key": "PAY-1"}},
        {"id": "2", "type": {"name": "Drives"}},
        {"id": "3", "type": {"name": "Drives"}, "inwardIssue": {"key": "OKR-1"}},
    ]
    assert item(raw_issue("PAY-6", 6, issuelinks=links)).links == (
        Link("Drives", "inward", "OKR-1"),
    )
