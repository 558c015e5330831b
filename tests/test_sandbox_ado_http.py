"""Reading from the Azure DevOps sandbox over HTTP: discovery, WIQL, batches, single items,
metadata. Every answer is checked against `specs/ado-wit-7.1.json`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests

from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.generator import generate_portfolio
from tests.ado_spec import check_request, validate, validate_response
from tests.sandbox_ado_support import BASE, AdoSession, many_items, small_portfolio

NOW = BASE + timedelta(days=1)
ERROR_KEYS = {"$id", "innerException", "message", "typeName", "typeKey", "errorCode", "eventId"}

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ado() -> Iterator[AzureDevOpsSandbox]:
    sandbox = AzureDevOpsSandbox(small_portfolio(), clock=lambda: NOW)
    with sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def client(ado: AzureDevOpsSandbox) -> AdoSession:
    return AdoSession(ado)


def service_error(response: requests.Response, status: int, type_key: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["typeKey"] == type_key
    assert body["typeName"].split(",")[0].endswith(f".{type_key}")
    return str(body["message"])


# -- discovery ---------------------------------------------------------------------------------
def test_options_lists_the_resource_locations_the_library_resolves(client: AdoSession) -> None:
    response = client.request("OPTIONS", "_apis", params={"api-version": None})
    assert response.status_code == 200
    locations = {entry["id"]: entry for entry in response.json()["value"]}
    wiql = locations["1a9c53f7-f243-4447-b110-35ef023636e4"]
    assert wiql["routeTemplate"] == "{project}/{team}/_apis/{area}/{resource}/{id}"
    assert (wiql["area"], wiql["resourceName"], wiql["resourceVersion"]) == ("wit", "wiql", 2)
    assert locations["908509b6-4248-4475-a1cd-829139ba419f"]["resourceName"] == "workItemsBatch"
    assert locations["72c7ddf8-2cdc-4f60-90cd-ab71c14a399b"]["maxVersion"] == "7.2"
    only_wit = client.request("OPTIONS", "_apis/wit").json()["value"]
    assert {entry["area"] for entry in only_wit} == {"wit"}
    areas = client.request("GET", "_apis/ResourceAreas").json()
    assert areas["value"][0]["locationUrl"] == f"{client.ado.organization_url}/"


# -- WIQL --------------------------------------------------------------------------------------
def test_wiql_answers_ids_columns_and_sort_columns_in_the_spec_shape(client: AdoSession) -> None:
    query = (
        "SELECT [System.Id], [Title], [Business Value] FROM WorkItems "
        "WHERE [System.TeamProject] = @project AND [System.WorkItemType] <> 'Key Result' "
        "ORDER BY [System.ChangedDate] DESC"
    )
    response = client.wiql(query)
    assert response.status_code == 200
    body = response.json()
    validate_response("Wiql_Query By Wiql", body)
    org = client.ado.organization_url
    assert [item["id"] for item in body["workItems"]] == [103, 102, 101, 100, 104]
    assert body["workItems"][0]["url"] == f"{org}/_apis/wit/workItems/103"
    assert body["columns"][2] == {
        "referenceName": "Microsoft.VSTS.Common.BusinessValue",
        "name": "Business Value",
        "url": f"{org}/_apis/wit/fields/Microsoft.VSTS.Common.BusinessValue",
    }
    assert body["sortColumns"][0]["field"]["referenceName"] == "System.ChangedDate"
    assert body["sortColumns"][0]["descending"] is True
    assert (body["queryType"], body["asOf"]) == ("flat", "2026-11-21T10:00:00Z")


def test_wiql_honours_top_time_precision_and_a_team_segment(client: AdoSession) -> None:
    everything = "SELECT [System.Id] FROM WorkItems ORDER BY [System.Id]"
    top = client.wiql(everything, **{"$top": 2}).json()
    assert [item["id"] for item in top["workItems"]] == [10, 100]
    timed = "SELECT [System.Id] FROM WorkItems WHERE [System.ChangedDate] > '2026-11-20T11:00:00Z'"
    refused = client.wiql(timed)
    assert "using date precision" in service_error(refused, 400, "VssPropertyValidationException")
    precise = client.wiql(timed, timePrecision="true").json()
    assert [item["id"] for item in precise["workItems"]] == [103]
    team = client.request(
        "POST", "Portfolio/Payments Team/_apis/wit/wiql", json={"query": everything}
    )
    assert team.status_code == 200 and len(team.json()["workItems"]) == 6


def test_wiql_errors_carry_the_service_messages(client: AdoSession) -> None:
    unknown = client.wiql("SELECT [System.Id] FROM WorkItems WHERE [Custom.Nope] = 1")
    message = service_error(unknown, 400, "VssPropertyValidationException")
    assert message.startswith("TF51005: The query references a field that does not exist.")
    at_org_level = client.request(
        "POST",
        "_apis/wit/wiql",
        json={"query": "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project"},
    )
    assert "@project" in service_error(at_org_level, 400, "VssPropertyValidationException")


@pytest.fixture(scope="module")
def crowded() -> Iterator[AdoSession]:
    sandbox = AzureDevOpsSandbox(many_items(20_001), clock=lambda: NOW)
    with sandbox:
        yield AdoSession(sandbox)


def test_wiql_returns_exactly_20000_and_refuses_20001(crowded: AdoSession) -> None:
    capped = crowded.wiql("SELECT [System.Id] FROM WorkItems WHERE [System.Id] <= 20000")
    assert capped.status_code == 200
    assert len(capped.json()["workItems"]) == 20_000
    too_many = crowded.wiql("SELECT [System.Id] FROM WorkItems")
    message = service_error(too_many, 400, "WorkItemTrackingQueryResultSizeLimitExceededException")
    assert message.startswith(
        "VS402337: The number of work items returned exceeds the size limit of 20000."
    )
    with_top = crowded.wiql(
        "SELECT [System.Id] FROM WorkItems ORDER BY [System.Id] DESC", **{"$top": 20_000}
    )
    assert with_top.status_code == 200
    assert with_top.json()["workItems"][0]["id"] == 20_001


# -- reading items -----------------------------------------------------------------------------
def test_batch_answers_the_requested_fields_in_request_order(client: AdoSession) -> None:
    request = {"ids": [102, 100, 102], "fields": ["System.Id", "Title", "Custom.RiskReduction"]}
    check_request(
        "POST",
        client.url("_apis/wit/workitemsbatch?api-version=7.1"),
        {"Content-Type": "application/json"},
        request,
    )
    body = client.batch(request).json()
    validate_response("Work Items_Get Work Items Batch", body)
    assert body["count"] == 2  # duplicates count once, as the service does
    assert body["value"][0] == {
        "id": 102,
        "rev": 2,
        "fields": {"System.Id": 102, "System.Title": "Saved cards", "Custom.RiskReduction": "3"},
        "url": f"{client.ado.organization_url}/_apis/wit/workItems/102",
    }
    assert body["value"][1]["fields"]["Custom.RiskReduction"] == 5


def test_batch_of_200_is_fine_and_201_is_refused(crowded: AdoSession) -> None:
    ok = crowded.batch({"ids": list(range(1, 201)), "fields": ["System.Id"]})
    assert ok.status_code == 200 and ok.json()["count"] == 200
    refused = crowded.batch({"ids": list(range(1, 202))})
    message = service_error(refused, 400, "WorkItemPageSizeExceededException")
    assert message == "VS403474: You requested 201 work items which exceeds the limit of 200"
    listed = crowded.request(
        "GET", "_apis/wit/workitems", params={"ids": ",".join(map(str, range(1, 202)))}
    )
    service_error(listed, 400, "WorkItemPageSizeExceededException")


def test_error_policy_omit_answers_null_and_fail_names_the_first_missing_id(
    client: AdoSession,
) -> None:
    omitted = client.batch({"ids": [100, 9999, 101, 8888], "errorPolicy": "omit"}).json()
    validate_response("Work Items_Get Work Items Batch", omitted, nulls=True)
    assert [item and item["id"] for item in omitted["value"]] == [100, None, 101, None]
    failed = client.batch({"ids": [100, 9999, 8888], "errorPolicy": "fail"})
    message = service_error(failed, 404, "WorkItemUnauthorizedAccessException")
    assert message == (
        "TF401232: Work item 9999 does not exist, or you do not have permissions to read it."
    )
    listed = client.request(
        "GET", "_apis/wit/workitems", params={"ids": "100,9999", "errorPolicy": "Omit"}
    )
    assert listed.json()["value"][1] is None


def test_fields_with_expand_is_refused_as_the_service_does(client: AdoSession) -> None:
    both = client.batch({"ids": [100], "fields": ["System.Title"], "$expand": "relations"})
    message = service_error(both, 400, "ConflictingParametersException")
    assert message == "The expand parameter can not be used with the fields parameter."
    with_links = client.batch({"ids": [100], "fields": ["System.Title"], "$expand": "links"})
    assert with_links.status_code == 200
    unknown = client.batch({"ids": [100], "fields": ["Custom.Nope"]})
    assert service_error(unknown, 400, "WorkItemTrackingFieldDefinitionNotFoundException") == (
        "TF51535: Cannot find field Custom.Nope."
    )


def test_relations_link_parents_children_and_related_items_both_ways(client: AdoSession) -> None:
    body = client.batch({"ids": [101, 100, 10], "$expand": "relations"}).json()
    validate_response("Work Items_Get Work Items Batch", body)
    org = client.ado.organization_url
    relations = {
        item["id"]: [(r["rel"], r["url"]) for r in item.get("relations", [])]
        for item in body["value"]
    }
    assert relations[101] == [
        ("System.LinkTypes.Hierarchy-Reverse", f"{org}/_apis/wit/workItems/100"),
        ("System.LinkTypes.Hierarchy-Forward", f"{org}/_apis/wit/workItems/103"),
    ]
    assert ("System.LinkTypes.Related", f"{org}/_apis/wit/workItems/10") in relations[100]
    assert relations[10] == [("System.LinkTypes.Related", f"{org}/_apis/wit/workItems/100")]
    assert body["value"][0]["relations"][0]["attributes"] == {"isLocked": False, "name": "Parent"}
    assert body["value"][0]["fields"]["System.Parent"] == 100


def test_single_item_with_all_expanded_and_seed_values_served_verbatim(client: AdoSession) -> None:
    response = client.request("GET", "Portfolio/_apis/wit/workitems/101", params={"$expand": "all"})
    body = response.json()
    validate_response("Work Items_Get Work Item", body)
    fields = body["fields"]
    assert fields["Custom.RiskReduction"] == "big"  # a word in a number-ish text field
    assert fields["System.ChangedDate"] == "2026-11-18T05:00:00Z"
    assert fields["System.AreaPath"] == "Portfolio\\Payments"
    assert fields["Microsoft.VSTS.Common.StackRank"] == 2000.0
    assert "Microsoft.VSTS.Common.TimeCriticality" in fields
    assert body["_links"]["self"]["href"] == body["url"]
    epic = client.request("GET", "_apis/wit/workitems/100").json()
    assert epic["fields"]["System.Tags"] == "KR-10; payments"
    assert "relations" not in epic
    saved_cards = client.request("GET", "_apis/wit/workitems/102").json()["fields"]
    assert saved_cards["Microsoft.VSTS.Scheduling.Effort"] == 0
    assert "Microsoft.VSTS.Common.TimeCriticality" not in saved_cards  # no value: no key
    missing = client.request("GET", "_apis/wit/workitems/4242")
    service_error(missing, 404, "WorkItemUnauthorizedAccessException")


def test_paths_ignore_case_and_an_unknown_project_is_tf200016(client: AdoSession) -> None:
    org = client.ado.organization.upper()
    shouting = client.http.get(
        f"{client.ado.url}/{org}/PORTFOLIO/_APIS/WIT/WORKITEMS/100?api-version=7.1", timeout=10
    )
    assert shouting.status_code == 200 and shouting.json()["id"] == 100
    elsewhere = client.request("GET", "Elsewhere/_apis/wit/workitems/100")
    assert service_error(elsewhere, 404, "ProjectDoesNotExistWithNameException").startswith(
        "TF200016: The following project does not exist: Elsewhere."
    )
    nowhere = client.request("GET", "_apis/wit/nothing")
    assert nowhere.status_code == 404 and nowhere.json()["typeKey"] == "HttpException"


# -- metadata ----------------------------------------------------------------------------------
def test_fields_list_and_lookup_by_display_name(client: AdoSession) -> None:
    listed = client.request("GET", "Portfolio/_apis/wit/fields").json()
    validate_response("Fields_List", listed)
    names = {field["referenceName"]: field["name"] for field in listed["value"]}
    assert names["Custom.RiskReduction"] == "Risk Reduction | Opportunity Enablement"
    assert names["Custom.WSJFScore"] == "WSJF Score"
    assert names["Microsoft.VSTS.Scheduling.Effort"] == "Effort"
    one = client.request("GET", "Portfolio/_apis/wit/fields/Cost of Delay").json()
    validate_response("Fields_Get", one)
    assert (one["referenceName"], one["type"], one["readOnly"]) == (
        "Custom.CostOfDelay",
        "double",
        False,
    )
    rev = client.request("GET", "_apis/wit/fields/System.Rev").json()
    assert rev["readOnly"] is True
    service_error(
        client.request("GET", "_apis/wit/fields/Nope"),
        400,
        "WorkItemTrackingFieldDefinitionNotFoundException",
    )


def test_relation_types_and_type_states(client: AdoSession) -> None:
    types = client.request("GET", "_apis/wit/workitemrelationtypes").json()
    validate_response("Work Item Relation Types_List", types)
    by_name = {entry["referenceName"]: entry for entry in types["value"]}
    assert by_name["System.LinkTypes.Hierarchy-Forward"]["attributes"][
        "oppositeEndReferenceName"
    ] == ("System.LinkTypes.Hierarchy-Reverse")
    assert by_name["System.LinkTypes.Related"]["attributes"]["directional"] is False
    one = client.request("GET", "_apis/wit/workitemrelationtypes/System.LinkTypes.Related").json()
    validate("WorkItemRelationType", one, strict=True)
    states = client.request("GET", "Portfolio/_apis/wit/workitemtypes/Feature/states").json()
    validate_response("Work Item Type States_List", states)
    assert [(s["name"], s["category"]) for s in states["value"]] == [
        ("New", "Proposed"),
        ("Active", "InProgress"),
        ("Resolved", "Resolved"),
        ("Closed", "Completed"),
        ("Removed", "Removed"),
    ]
    unknown = client.request("GET", "Portfolio/_apis/wit/workitemtypes/Saga/states")
    service_error(unknown, 404, "WorkItemTypeNotFoundException")


def test_a_generated_portfolio_is_served_whole() -> None:
    portfolio = generate_portfolio(600, seed=11, jira_share=0.5)
    sandbox = AzureDevOpsSandbox(portfolio.azure_devops)
    with sandbox:
        client = AdoSession(sandbox)
        ids = [
            item["id"]
            for item in client.wiql("SELECT [System.Id] FROM WorkItems").json()["workItems"]
        ]
        assert sorted(ids) == sorted(item.id for item in portfolio.azure_devops)
        children = sum(1 for item in portfolio.azure_devops if item.parent)
        query = "SELECT [System.Id] FROM WorkItems WHERE [System.Parent] > 0"
        assert len(client.wiql(query).json()["workItems"]) == children
        body = client.batch({"ids": ids[:200], "$expand": "all"}).json()
        validate_response("Work Items_Get Work Items Batch", body)
