"""The spec validator the Azure DevOps sandbox tests rely on: the official examples pass it,
and it fails on the mistakes it exists to catch."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.ado_spec import (
    SpecViolation,
    check_request,
    examples,
    load_example,
    operation,
    validate,
    validate_response,
)

EXAMPLES = sorted(examples(), key=lambda pair: pair[1].name)


def test_every_vendored_example_belongs_to_an_operation() -> None:
    assert len(EXAMPLES) == 14
    assert {op for op, _ in EXAMPLES} >= {
        "Wiql_Query By Wiql",
        "Work Items_Get Work Items Batch",
        "Work Items_List",
        "Work Items_Update",
        "Work Item Relation Types_List",
    }


@pytest.mark.parametrize(("operation_id", "path"), EXAMPLES, ids=[p.name for _, p in EXAMPLES])
def test_official_examples_are_valid_strictly(operation_id: str, path: Path) -> None:
    example = load_example(path)
    validate_response(operation_id, example["responses"]["200"]["body"], strict=True)
    body = example["parameters"].get("body")
    url = example.get("x-ms-vss-request-url", "").strip()
    if body is not None and "api-version" in url:
        method = operation(operation_id).method
        content_type = (operation(operation_id).spec.get("consumes") or ["application/json"])[0]
        assert check_request(method, url, {"Content-Type": content_type}, body) == operation_id


def example_body(name: str) -> Any:
    path = next(p for _, p in EXAMPLES if p.name == name)
    return copy.deepcopy(load_example(path)["responses"]["200"]["body"])


def violation(operation_id: str, body: Any, **options: Any) -> str:
    with pytest.raises(SpecViolation) as raised:
        validate_response(operation_id, body, **options)
    return str(raised.value)


def test_wrong_types_enums_dates_and_unknown_keys_are_caught() -> None:
    body = example_body("GET__wit_get_id_workitems.json")
    body["workItems"][0]["id"] = "300"
    body["queryType"] = "flattish"
    body["asOf"] = "29/12/2014"
    body["colums"] = []
    message = violation("Wiql_Query By Wiql", body)
    assert "workItems/0/id: '300' is not of type 'integer'" in message
    assert "queryType: 'flattish' is not one of" in message
    assert "asOf: '29/12/2014' is not a 'date-time'" in message
    assert "'colums' was unexpected" in message
    validate_response(
        "Wiql_Query By Wiql",
        {**example_body("GET__wit_get_id_workitems.json"), "colums": []},
        strict=False,
    )


def test_list_answers_must_come_wrapped_and_counted() -> None:
    body = example_body("POST__wit_WorkItemsBatch_ids-_ids__fields-_columns_.json")
    assert "is not of type 'object'" in violation("Work Items_Get Work Items Batch", body["value"])
    assert "count is 2 but value has 3" in violation(
        "Work Items_Get Work Items Batch", {**body, "count": 2}
    )
    with_null = {"count": 4, "value": [*body["value"], None]}
    assert "None is not" in violation("Work Items_Get Work Items Batch", with_null)
    validate_response("Work Items_Get Work Items Batch", with_null, nulls=True)


def test_relations_and_links_are_checked_inside_work_items() -> None:
    body = example_body("PATCH__wit_workitems__taskId_.json")
    body["relations"][0]["rel"] = 7
    body["_links"]["self"] = {"link": "nowhere"}
    message = violation("Work Items_Update", body)
    assert "relations/0/rel: 7 is not of type 'string'" in message
    assert "_links/self" in message


def test_definitions_by_name() -> None:
    validate("JsonPatchOperation", {"op": "test", "path": "/rev", "value": 3}, strict=True)
    with pytest.raises(SpecViolation, match="'jump' is not one of"):
        validate("JsonPatchOperation", {"op": "jump", "path": "/rev"})
    validate("WorkItemBatchGetRequest", {"ids": [1, 2], "$expand": "relations"}, strict=True)
    with pytest.raises(SpecViolation, match="'expand' was unexpected"):
        validate("WorkItemBatchGetRequest", {"ids": [1], "expand": "relations"}, strict=True)
    with pytest.raises(KeyError):
        validate("NoSuchDefinition", {})


# -- requests ----------------------------------------------------------------------------------
ORG = "https://dev.azure.com/fabrikam"
PATCH_JSON = {"Content-Type": "application/json-patch+json"}
JSON = {"Content-Type": "application/json; charset=utf-8"}


def request_problems(
    method: str, url: str, headers: dict[str, str] | None = None, body: Any = None
) -> str:
    with pytest.raises(SpecViolation) as raised:
        check_request(method, url, headers, body)
    return str(raised.value)


def test_requests_are_matched_to_operations_with_optional_project_and_team() -> None:
    wiql = {"query": "SELECT [System.Id] FROM WorkItems"}
    assert (
        check_request("POST", f"{ORG}/p/t/_apis/wit/wiql?api-version=7.1", JSON, wiql)
        == "Wiql_Query By Wiql"
    )
    assert (
        check_request("POST", f"{ORG}/_apis/wit/wiql?api-version=7.1&$top=5", JSON, wiql)
        == "Wiql_Query By Wiql"
    )
    assert (
        check_request("GET", f"{ORG}/p/_apis/wit/workItems/7?api-version=7.1")
        == "Work Items_Get Work Item"
    )
    assert check_request("GET", f"{ORG}/p/_apis/wit/workitems/$Epic?api-version=7.1") == (
        "Work Items_Get Work Item Template"
    )
    accept = {"Accept": "application/json;api-version=7.1-preview.3"}
    assert check_request("GET", f"{ORG}/_apis/wit/workitems?ids=1,2", accept) == "Work Items_List"
    assert "is not an operation" in request_problems("GET", f"{ORG}/_apis/wit/nothing")


def test_request_mistakes_are_caught() -> None:
    items = f"{ORG}/_apis/wit/workitems"
    assert "'api-version' is missing" in request_problems("GET", f"{items}/7")
    assert "'expand' is not declared" in request_problems(
        "GET", f"{items}/7?api-version=7.1&expand=all"
    )
    assert "is not one of" in request_problems(
        "GET", f"{items}/7?api-version=7.1&$expand=everything"
    )
    assert "not a boolean" in request_problems(
        "PATCH", f"{items}/7?api-version=7.1&validateOnly=yes", PATCH_JSON, []
    )
    assert "$top='many' is not an integer" in request_problems(
        "POST", f"{ORG}/_apis/wit/wiql?api-version=7.1&$top=many", JSON, {"query": "x"}
    )
    document = [{"op": "add", "path": "/fields/System.Title", "value": "x"}]
    as_json = {"Content-Type": "application/json"}
    assert "content type 'application/json'" in request_problems(
        "PATCH", f"{items}/7?api-version=7.1", as_json, document
    )
    check_request("PATCH", f"{items}/7?api-version=7.1", PATCH_JSON, document)
    bad_ids = {"ids": ["1"], "fields": ["System.Id"]}
    assert "'1' is not of type 'integer'" in request_problems(
        "POST", f"{ORG}/_apis/wit/workitemsbatch?api-version=7.1", as_json, bad_ids
    )
