"""Every JSON shape the Jira sandbox serves, and every request body the connectors send,
checked against the vendored OpenAPI specs (specs/jira-platform-v3.json,
specs/jira-software-agile.json).

There is no v2 spec (see specs/SOURCES.md); v2 differs from v3 only in rich-text fields, which
`IssueBean.fields` leaves open, so v2 answers are checked against the same schemas.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.sandbox.jira_edit import NOT_SETTABLE
from connectors.sandbox.jira_server import JiraSandbox
from connectors.sandbox.server import Faults
from tests.jira_sandbox_seeds import FakeClock, small_portfolio
from tests.spec_validation import OpenApiSpec, SpecMismatch, jira_agile, jira_platform

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$")
PLATFORM = jira_platform()
AGILE = jira_agile()


@pytest.fixture(scope="module")
def cloud() -> Iterator[JiraSandbox]:
    with JiraSandbox(small_portfolio(), clock=FakeClock()) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def datacenter() -> Iterator[JiraSandbox]:
    with JiraSandbox(small_portfolio(), flavour="datacenter", clock=FakeClock()) as sandbox:
        yield sandbox


def call(sandbox: JiraSandbox, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method, f"{sandbox.url}{path}", auth=sandbox.basic_auth, timeout=10, **kwargs
    )


def response_schema(path: str, method: str, status: int = 200) -> dict[str, Any]:
    return PLATFORM.response_schema(path, method, status)


def issue_link_in_fields() -> dict[str, Any]:
    """`IssueLink` as it appears inside `fields.issuelinks`: the spec's schema requires both
    ends (it describes the link resource); in issue fields each entry carries the other end
    only, as the spec's getIssue example shows."""
    schema = PLATFORM.rebased(PLATFORM.component("IssueLink"))
    schema["required"] = ["type"]
    schema["oneOf"] = [{"required": ["inwardIssue"]}, {"required": ["outwardIssue"]}]
    return schema


def check_issue_fields(issue: dict[str, Any]) -> None:
    """The objects inside `fields`, which `IssueBean` leaves untyped."""
    fields = issue.get("fields", {})
    typed = {
        "status": "StatusDetails",
        "issuetype": "IssueTypeDetails",
        "project": "ProjectDetails",
        "priority": "Priority",
        "parent": "LinkedIssue",
    }
    for field_id, component in typed.items():
        if fields.get(field_id) is not None:
            PLATFORM.validate_response(component, fields[field_id])
    for component in fields.get("components") or ():
        PLATFORM.validate_response("ProjectComponent", component)
    for link in fields.get("issuelinks") or ():
        PLATFORM.validate_response(issue_link_in_fields(), link)
    for stamp in ("created", "updated"):
        if stamp in fields:
            assert TIMESTAMP.match(fields[stamp]), fields[stamp]


# -- the validator itself -------------------------------------------------------------------
def test_validation_catches_shape_errors() -> None:
    with pytest.raises(SpecMismatch, match=r"'deploymentType'|unexpected"):
        PLATFORM.validate_response("ServerInformation", {"deploymentType": 1, "extra": True})
    with pytest.raises(SpecMismatch, match="fields"):
        PLATFORM.validate_response("IssueBean", {"id": "1", "fields": []})
    with pytest.raises(SpecMismatch, match=r"readOnly|read-only|read only"):
        PLATFORM.validate_request("IssueBean", {"id": "1"})
    with pytest.raises(SpecMismatch):
        PLATFORM.validate_response(issue_link_in_fields(), {"type": {"name": "Drives"}})
    with pytest.raises(KeyError):
        PLATFORM.component("NoSuchBean")


# -- responses ------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["2", "3"])
def test_search_jql_pages(cloud: JiraSandbox, version: str) -> None:
    path = f"/rest/api/{version}/search/jql"
    schema = response_schema("/rest/api/3/search/jql", "get")
    request = {"jql": "project in (PAY, WEB, OKR) ORDER BY key", "maxResults": 3}
    PLATFORM.validate_request("SearchAndReconcileRequestBean", {**request, "fields": ["*all"]})
    first = call(cloud, "GET", path, params={**request, "fields": "*all", "expand": "names,schema"})
    second = call(
        cloud,
        "POST",
        path,
        json={**request, "fields": ["*all"], "nextPageToken": first.json()["nextPageToken"]},
    )
    ids = call(cloud, "GET", path, params={"jql": "project = WEB"})
    for response in (first, second, ids):
        assert response.status_code == 200
        PLATFORM.validate_response(schema, response.json())
        for issue in response.json()["issues"]:
            check_issue_fields(issue)
    assert first.json()["names"]["summary"] == "Summary"


def test_bulk_fetch(cloud: JiraSandbox) -> None:
    request = {
        "issueIdsOrKeys": ["PAY-2", "10004", "OKR-1"],
        "fields": ["*all"],
        "expand": ["names"],
    }
    PLATFORM.validate_request(
        PLATFORM.request_schema("/rest/api/3/issue/bulkfetch", "post"), request
    )
    cloud.fetch_errors.add("OKR-1")
    try:
        response = call(cloud, "POST", "/rest/api/3/issue/bulkfetch", json=request)
    finally:
        cloud.fetch_errors.clear()
    body = response.json()
    PLATFORM.validate_response(response_schema("/rest/api/3/issue/bulkfetch", "post"), body)
    assert body["issueErrors"]
    for issue in body["issues"]:
        check_issue_fields(issue)


@pytest.mark.parametrize("version", ["2", "3"])
def test_get_issue_fields_server_info_myself(cloud: JiraSandbox, version: str) -> None:
    base = f"/rest/api/{version}"
    for key in ("PAY-2", "PAY-3", "PAY-4", "OKR-1", "PAY-5"):
        issue = call(cloud, "GET", f"{base}/issue/{key}", params={"expand": "names,schema"}).json()
        PLATFORM.validate_response(
            response_schema("/rest/api/3/issue/{issueIdOrKey}", "get"), issue
        )
        check_issue_fields(issue)
    fields = call(cloud, "GET", f"{base}/field").json()
    PLATFORM.validate_response(response_schema("/rest/api/3/field", "get"), fields)
    info = call(cloud, "GET", f"{base}/serverInfo").json()
    PLATFORM.validate_response(response_schema("/rest/api/3/serverInfo", "get"), info)
    assert info["deploymentType"] == "Cloud"
    myself = call(cloud, "GET", f"{base}/myself").json()
    PLATFORM.validate_response(response_schema("/rest/api/3/myself", "get"), myself)
    assert myself["timeZone"] == "UTC"


def test_link_types_projects_and_count(cloud: JiraSandbox) -> None:
    link_types = call(cloud, "GET", "/rest/api/3/issueLinkType").json()
    PLATFORM.validate_response(response_schema("/rest/api/3/issueLinkType", "get"), link_types)
    projects = call(cloud, "GET", "/rest/api/3/project").json()
    PLATFORM.validate_response(response_schema("/rest/api/3/project", "get"), projects)
    project = call(cloud, "GET", "/rest/api/3/project/PAY").json()
    PLATFORM.validate_response(
        response_schema("/rest/api/3/project/{projectIdOrKey}", "get"), project
    )
    count_request = {"jql": "project = PAY"}
    PLATFORM.validate_request("JQLCountRequestBean", count_request)
    count = call(cloud, "POST", "/rest/api/3/search/approximate-count", json=count_request).json()
    schema = response_schema("/rest/api/3/search/approximate-count", "post")
    PLATFORM.validate_response(schema, count)


def test_rank_request_and_partial_result(cloud: JiraSandbox) -> None:
    order = cloud.rank_order()
    request = {
        "issues": [order[3], order[4]],
        "rankBeforeIssue": order[0],
        "rankCustomFieldId": int(cloud.field_id("Rank").removeprefix("customfield_")),
    }
    AGILE.validate_request(AGILE.request_schema("/rest/agile/1.0/issue/rank", "put"), request)
    AGILE.validate_request("IssueRankRequestBean", request)
    cloud.rank_failures.add(order[4])
    try:
        response = call(cloud, "PUT", "/rest/agile/1.0/issue/rank", json=request)
    finally:
        cloud.rank_failures.clear()
    assert response.status_code == 207
    # The 207 has only an example in rankIssues; its shape is the agile spec's PartialSuccessBean.
    AGILE.validate_response("PartialSuccessBean", response.json())


def test_edit_requests_and_error_answers(cloud: JiraSandbox) -> None:
    score = cloud.field_id("WSJF Score")
    edits = [
        {"fields": {score: 21.0, cloud.field_id("Cost of Delay"): 42.0}},
        {"update": {"labels": [{"add": "triaged"}, {"remove": "ux"}]}},
        {"fields": {"priority": {"name": "High"}}},
    ]
    for body in edits:
        PLATFORM.validate_request(
            PLATFORM.request_schema("/rest/api/3/issue/{issueIdOrKey}", "put"), body
        )
        assert call(cloud, "PUT", "/rest/api/3/issue/PAY-3", json=body).status_code == 204
    failures = [
        call(cloud, "PUT", "/rest/api/3/issue/PAY-3", json={"fields": {score: "x"}}),
        call(cloud, "PUT", "/rest/api/3/issue/PAY-404", json={"fields": {score: 1}}),
        call(cloud, "GET", "/rest/api/3/issue/PAY-404"),
        call(cloud, "GET", "/rest/api/3/search/jql", params={"jql": "project = "}),
        call(cloud, "GET", "/rest/api/3/search", params={"jql": "project = PAY"}),
        call(cloud, "GET", "/rest/api/3/project/NOPE"),
        requests.get(f"{cloud.url}/rest/api/3/myself", timeout=10),
    ]
    assert [r.status_code for r in failures] == [400, 404, 404, 400, 410, 404, 401]
    for response in failures:
        PLATFORM.validate_response("ErrorCollection", response.json())


def test_permissions_and_edit_metadata(cloud: JiraSandbox) -> None:
    schema = response_schema("/rest/api/3/mypermissions", "get")
    params = {"issueKey": "PAY-3", "permissions": "EDIT_ISSUES,SCHEDULE_ISSUES"}
    granted = call(cloud, "GET", "/rest/api/3/mypermissions", params=params).json()
    PLATFORM.validate_response(schema, granted)
    assert {k: p["havePermission"] for k, p in granted["permissions"].items()} == {
        "EDIT_ISSUES": True,
        "SCHEDULE_ISSUES": True,
    }
    meta_schema = response_schema("/rest/api/3/issue/{issueIdOrKey}/editmeta", "get")
    meta = call(cloud, "GET", "/rest/api/3/issue/PAY-3/editmeta").json()
    PLATFORM.validate_response(meta_schema, meta)
    score = cloud.field_id("WSJF Score")
    assert meta["fields"][score]["operations"] == ["set"]
    assert meta["fields"]["labels"]["operations"] == ["add", "set", "remove"]
    assert cloud.field_id("Rank") not in meta["fields"]  # moved only by the agile API

    failures = [
        call(cloud, "GET", "/rest/api/3/mypermissions"),
        call(cloud, "GET", "/rest/api/3/mypermissions", params={"permissions": "FLY"}),
        call(cloud, "GET", "/rest/api/3/mypermissions", params={**params, "issueKey": "PAY-404"}),
        call(cloud, "GET", "/rest/api/3/issue/PAY-404/editmeta"),
        call(cloud, "GET", "/rest/api/3/mypermissions", params={**params, "projectKey": "NOPE"}),
    ]
    assert [r.status_code for r in failures] == [400, 400, 404, 404, 404]
    for response in failures:
        PLATFORM.validate_response("ErrorCollection", response.json())


def test_missing_permissions_and_off_screen_fields_refuse_writes(cloud: JiraSandbox) -> None:
    score = cloud.field_id("WSJF Score")
    order = cloud.rank_order()
    rank = {"issues": [order[3]], "rankBeforeIssue": order[0]}
    params = {"issueKey": "PAY-3", "permissions": "EDIT_ISSUES,SCHEDULE_ISSUES"}
    cloud.off_screen_fields.add(score)
    try:
        meta = call(cloud, "GET", "/rest/api/3/issue/PAY-3/editmeta").json()
        assert score not in meta["fields"] and "labels" in meta["fields"]
        refused = call(cloud, "PUT", "/rest/api/3/issue/PAY-3", json={"fields": {score: 1.0}})
        assert refused.status_code == 400
        assert refused.json()["errors"] == {score: NOT_SETTABLE.format(score)}
        cloud.off_screen_fields.clear()
        cloud.denied_permissions.update({"EDIT_ISSUES", "SCHEDULE_ISSUES"})
        answer = call(cloud, "GET", "/rest/api/3/mypermissions", params=params).json()
        assert not any(p["havePermission"] for p in answer["permissions"].values())
        assert call(cloud, "GET", "/rest/api/3/issue/PAY-3/editmeta").json() == {"fields": {}}
        edit = call(cloud, "PUT", "/rest/api/3/issue/PAY-3", json={"update": {"labels": []}})
        assert edit.status_code == 400
        ranked = call(cloud, "PUT", "/rest/agile/1.0/issue/rank", json=rank)
        assert ranked.status_code == 403
        PLATFORM.validate_response("ErrorCollection", ranked.json())
    finally:
        cloud.off_screen_fields.clear()
        cloud.denied_permissions.clear()
    assert cloud.rank_order() == order


@pytest.mark.parametrize("share", ["throttle_rate", "unavailable_rate"])
def test_throttled_answers_are_error_collections(cloud: JiraSandbox, share: str) -> None:
    cloud.set_faults(Faults(**{share: 1.0}))
    try:
        response = call(cloud, "GET", "/rest/api/3/serverInfo")
    finally:
        cloud.without_faults()
    assert response.status_code in (429, 503)
    PLATFORM.validate_response("ErrorCollection", response.json())


def test_datacenter_answers(datacenter: JiraSandbox) -> None:
    """Data Center has no vendored spec; its search answer is the old Cloud `SearchResults`."""
    search = call(
        datacenter,
        "GET",
        "/rest/api/2/search",
        params={"jql": "project = PAY", "fields": "*all", "expand": "names,schema"},
    ).json()
    PLATFORM.validate_response(response_schema("/rest/api/3/search", "get"), search)
    for issue in search["issues"]:
        check_issue_fields(issue)
    info = call(datacenter, "GET", "/rest/api/2/serverInfo").json()
    PLATFORM.validate_response("ServerInformation", info)
    fields = call(datacenter, "GET", "/rest/api/2/field").json()
    PLATFORM.validate_response(response_schema("/rest/api/3/field", "get"), fields)
    PLATFORM.validate_response("UserDetails", {
        k: v for k, v in call(datacenter, "GET", "/rest/api/2/myself").json().items()
        if k in ("self", "key", "name", "emailAddress", "displayName", "active", "timeZone")
    })  # fmt: skip


# -- the sandbox refuses what the spec refuses ----------------------------------------------
BULK = ("/rest/api/3/issue/bulkfetch", "BulkFetchIssueRequestBean")
SEARCH = ("/rest/api/3/search/jql", "SearchAndReconcileRequestBean")


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        (BULK, {"issueIdsOrKeys": ["PAY-1"], "bogus": 1}),
        (BULK, {"issueIdsOrKeys": ["PAY-1"]}),
        (SEARCH, {"jql": "project = PAY", "startAt": 5}),
        (SEARCH, {"jql": "project = PAY"}),
    ],
)
def test_unknown_request_properties_are_refused_like_the_spec(
    cloud: JiraSandbox, endpoint: tuple[str, str], body: dict[str, Any]
) -> None:
    path, component = endpoint
    spec_accepts = not PLATFORM.errors(component, body, request=True)
    response = call(cloud, "POST", path, json=body)
    assert (response.status_code == 200) is spec_accepts, response.text


def test_spec_validator_is_generic_over_openapi_files() -> None:
    assert OpenApiSpec.load("jira-software-agile.json") is AGILE
    schema = AGILE.response_schema("/rest/agile/1.0/board/{boardId}/issue", "get", 200)
    assert schema


def test_datacenter_answers_every_permission_when_none_is_named(datacenter: JiraSandbox) -> None:
    answer = call(datacenter, "GET", "/rest/api/2/mypermissions", params={"projectKey": "PAY"})
    PLATFORM.validate_response(response_schema("/rest/api/3/mypermissions", "get"), answer.json())
    permissions = answer.json()["permissions"]
    assert permissions["EDIT_ISSUES"]["havePermission"] is True
    assert permissions["ADMINISTER_PROJECTS"]["havePermission"] is False  # not an admin
    assert call(datacenter, "GET", "/rest/api/2/issue/PAY-3/editmeta").status_code == 200
