from __future__ import annotations

import pytest

from connectors.base import UnknownFieldError
from connectors.jira_fields import AmbiguousFieldError, resolve_fields
from tests.jira_fixtures import (
    COST_ID,
    EPIC_LINK_ID,
    PARENT_LINK_ID,
    RANK_ID,
    SCORE_ID,
    WSJF_FIELD_NAMES,
    field_catalog,
    settings,
)


def wsjf(**names: str | None) -> dict[str, str | None]:
    return {**WSJF_FIELD_NAMES, **names}


def test_resolves_every_configured_name_to_its_id() -> None:
    fields, warnings = resolve_fields(field_catalog(), settings(), datacenter=False)

    assert {name: f.id for name, f in fields.inputs.items()} == {
        "business_value": "customfield_10030",
        "time_criticality": "customfield_10031",
        "risk_reduction": "customfield_10032",
        "job_size": "customfield_10033",
    }
    assert fields.score is not None and fields.score.id == SCORE_ID
    assert fields.cost_of_delay is not None and fields.cost_of_delay.id == COST_ID
    assert fields.rank is not None and (fields.rank.id, fields.rank.custom_id) == (RANK_ID, 10019)
    assert fields.epic_link is None and fields.parent_link is None
    assert warnings == []


def test_unknown_name_names_the_setting_and_close_matches() -> None:
    with pytest.raises(UnknownFieldError) as raised:
        resolve_fields(
            field_catalog(), settings(wsjf_fields=wsjf(job_size="Job Sise")), datacenter=False
        )

    error = raised.value
    assert error.setting == "wsjf_fields.job_size"
    assert error.name == "Job Sise"
    assert error.candidates[0] == "Job Size (customfield_10033)"
    assert "wsjf_fields.job_size: field 'Job Sise' does not exist" in str(error)
    assert "close matches: Job Size (customfield_10033)" in str(error)


def test_unknown_name_without_anything_close_has_no_suggestions() -> None:
    with pytest.raises(UnknownFieldError) as raised:
        resolve_fields(field_catalog(), settings(rank_field="Zzyzx"), datacenter=False)
    assert raised.value.setting == "rank_field"
    assert raised.value.candidates == []


def test_names_match_case_and_spacing_insensitively_and_ids_are_accepted() -> None:
    names = wsjf(business_value="business  value", job_size="cf[10033]", score=SCORE_ID)
    fields, _ = resolve_fields(field_catalog(), settings(wsjf_fields=names), datacenter=False)
    assert fields.inputs["business_value"].id == "customfield_10030"
    assert fields.inputs["job_size"].id == "customfield_10033"
    assert fields.score is not None and fields.score.id == SCORE_ID


def test_ambiguous_name_lists_the_ids_to_choose_from() -> None:
    catalog = [
        *field_catalog(),
        {"id": "customfield_20033", "name": "Job Size", "schema": {"type": "number"}},
    ]
    with pytest.raises(AmbiguousFieldError) as raised:
        resolve_fields(catalog, settings(), datacenter=False)

    assert isinstance(raised.value, UnknownFieldError)
    assert raised.value.setting == "wsjf_fields.job_size"
    assert raised.value.candidates == [
        "customfield_10033 (Job Size)",
        "customfield_20033 (Job Size)",
    ]
    assert "ambiguous" in str(raised.value)


def test_duplicate_name_is_settled_by_the_expected_schema() -> None:
    catalog = [
        *field_catalog(),
        {"id": "customfield_20019", "name": "Rank", "schema": {"type": "string"}},
    ]
    fields, _ = resolve_fields(catalog, settings(), datacenter=False)
    assert fields.rank is not None and fields.rank.id == RANK_ID


def test_unexpected_schema_type_warns_but_resolves() -> None:
    catalog = field_catalog()
    for entry in catalog:
        if entry["name"] == "Job Size":
            entry["schema"] = {"type": "string", "custom": "textfield"}
    fields, warnings = resolve_fields(catalog, settings(), datacenter=False)

    assert fields.inputs["job_size"].id == "customfield_10033"
    assert len(warnings) == 1
    assert "wsjf_fields.job_size" in warnings[0] and "'textfield'" in warnings[0]


def test_optional_write_fields_are_not_resolved_when_not_configured() -> None:
    names = wsjf(score=None, cost_of_delay=None)
    fields, _ = resolve_fields(field_catalog(), settings(wsjf_fields=names), datacenter=False)
    assert fields.score is None and fields.cost_of_delay is None
    assert SCORE_ID not in fields.custom_ids


def test_datacenter_resolves_epic_and_parent_link() -> None:
    fields, warnings = resolve_fields(field_catalog(datacenter=True), settings(), datacenter=True)
    assert fields.epic_link is not None and fields.epic_link.id == EPIC_LINK_ID
    assert fields.parent_link is not None and fields.parent_link.id == PARENT_LINK_ID
    assert warnings == []
    assert fields.custom_ids[-2:] == [EPIC_LINK_ID, PARENT_LINK_ID]


def test_missing_default_parent_link_only_warns() -> None:
    catalog = [f for f in field_catalog(datacenter=True) if f["name"] != "Parent Link"]
    fields, warnings = resolve_fields(catalog, settings(), datacenter=True)
    assert fields.parent_link is None
    assert warnings == [
        "parent_link_field: no field 'Parent Link' on this Jira; hierarchy through it is not read"
    ]


def test_missing_configured_hierarchy_field_is_an_error() -> None:
    with pytest.raises(UnknownFieldError) as raised:
        resolve_fields(
            field_catalog(datacenter=True),
            settings(epic_link_field="Epic Lnk"),
            datacenter=True,
        )
    assert raised.value.setting == "epic_link_field"
    assert raised.value.candidates == [f"Epic Link ({EPIC_LINK_ID})"]
