"""The sandbox answers the history benchmark's naive baseline needs, checked against the specs
and read by the unmodified client libraries: Jira Cloud `search/jql` with `expand=changelog`,
and Azure DevOps `workItems/{id}/revisions` (Revisions_List)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import requests
from azure.devops.connection import Connection
from jira import JIRA
from msrest.authentication import BasicAuthentication

from connectors.sandbox.ado_server import AzureDevOpsSandbox
from connectors.sandbox.jira_history import status_history_of
from connectors.sandbox.jira_render import format_time
from connectors.sandbox.jira_server import JiraSandbox
from tests.ado_spec import check_request, validate_response
from tests.jira_sandbox_seeds import FakeClock, small_portfolio
from tests.sandbox_ado_support import AdoSession
from tests.sandbox_ado_support import small_portfolio as small_ado_portfolio
from tests.spec_validation import jira_platform

pytestmark = pytest.mark.integration

PLATFORM = jira_platform()
REVISIONS = "Revisions_List"


@pytest.fixture
def jira() -> Iterator[JiraSandbox]:
    with JiraSandbox(small_portfolio(), flavour="cloud", clock=FakeClock()) as sandbox:
        yield sandbox


@pytest.fixture
def ado() -> Iterator[AzureDevOpsSandbox]:
    with AzureDevOpsSandbox(small_ado_portfolio()) as sandbox:
        yield sandbox


# -- Jira Cloud: search/jql with expand=changelog ------------------------------------------------
def test_cloud_search_expands_the_changelog_in_spec_shape(jira: JiraSandbox) -> None:
    jira.touch("PAY-4", status="In Progress")
    params = {"jql": "project = PAY ORDER BY key", "fields": "status", "expand": "changelog"}
    answer = requests.get(
        f"{jira.url}/rest/api/3/search/jql", params=params, auth=jira.basic_auth, timeout=10
    )
    assert answer.status_code == 200, answer.text
    page = answer.json()

    PLATFORM.validate_response(PLATFORM.response_schema("/rest/api/3/search/jql", "get", 200), page)
    assert page["issues"]
    with jira.lock:
        for issue in page["issues"]:
            changelog = issue["changelog"]
            PLATFORM.validate_response("PageOfChangelogs", changelog)
            recorded = status_history_of(jira.store.by_key[issue["key"]])
            assert changelog["total"] == len(changelog["histories"]) == len(recorded)
            # most recent first, as the spec words the expansion
            assert [h["id"] for h in changelog["histories"]] == [
                str(entry.id) for entry in reversed(recorded)
            ]
    touched = next(issue for issue in page["issues"] if issue["key"] == "PAY-4")
    newest = touched["changelog"]["histories"][0]["items"][0]
    assert (newest["fieldId"], newest["toString"]) == ("status", "In Progress")


def test_cloud_search_without_the_expansion_carries_no_changelog(jira: JiraSandbox) -> None:
    params = {"jql": "project = PAY ORDER BY key", "fields": "status"}
    page = requests.get(
        f"{jira.url}/rest/api/3/search/jql", params=params, auth=jira.basic_auth, timeout=10
    ).json()

    assert page["issues"] and all("changelog" not in issue for issue in page["issues"])


def test_the_jira_library_reads_every_status_change_through_the_search(jira: JiraSandbox) -> None:
    client = JIRA(jira.url, basic_auth=jira.basic_auth)
    issues = client.enhanced_search_issues(
        "project = PAY ORDER BY key", expand="changelog", maxResults=False
    )

    assert issues
    with jira.lock:
        for issue in issues:
            found = [
                (history.created, item.toString)
                for history in issue.changelog.histories
                for item in history.items
                if item.field == "status"
            ]
            recorded = [
                (format_time(entry.at, jira.time_zone), entry.after)
                for entry in reversed(status_history_of(jira.store.by_key[issue.key]))
            ]
            assert found == recorded


# -- Azure DevOps: workItems/{id}/revisions ------------------------------------------------------
def test_item_revisions_follow_the_spec(ado: AzureDevOpsSandbox) -> None:
    ado.touch(101, **{"System.State": "Resolved"})
    session = AdoSession(ado, api_version="7.1-preview.3")
    path = "Portfolio/_apis/wit/workItems/101/revisions"
    query = urlencode({"api-version": "7.1-preview.3", "$top": 2, "$skip": 1})
    assert check_request("GET", session.url(f"{path}?{query}"), {}) == REVISIONS

    everything = session.request("GET", path).json()
    validate_response(REVISIONS, everything, strict=True)
    with ado.lock:
        item = ado.store.items[101]
        assert [value["rev"] for value in everything["value"]] == list(range(1, item.rev + 1))
        assert everything["value"][-1]["fields"]["System.State"] == "Resolved"
        assert [v["fields"]["System.State"] for v in everything["value"]] == [
            item.revision(rev)["System.State"]  # type: ignore[index]
            for rev in range(1, item.rev + 1)
        ]
    assert everything["value"][0]["url"].endswith("/_apis/wit/workItems/101/revisions/1")

    paged = session.request("GET", path, params={"$top": 2, "$skip": 1}).json()
    validate_response(REVISIONS, paged, strict=True)
    assert [value["rev"] for value in paged["value"]] == [2, 3][: len(paged["value"])]
    related = session.request("GET", path, params={"$expand": "relations"}).json()
    validate_response(REVISIONS, related, strict=True)
    assert any("relations" in value for value in related["value"])

    missing = session.request("GET", "Portfolio/_apis/wit/workItems/999999/revisions")
    assert missing.status_code == 404 and "TF401232" in missing.json()["message"]


def test_the_azure_devops_library_reads_the_revisions(ado: AzureDevOpsSandbox) -> None:
    connection = Connection(base_url=ado.organization_url, creds=BasicAuthentication("", ado.pat))
    wit = connection.clients_v7_1.get_work_item_tracking_client()

    revisions = wit.get_revisions(101, project=ado.project)

    with ado.lock:
        item = ado.store.items[101]
        assert [revision.rev for revision in revisions] == list(range(1, item.rev + 1))
    assert all(revision.id == 101 for revision in revisions)
    assert revisions[-1].fields["System.State"] == item.fields["System.State"]
    assert ado.counts["GET /_apis/wit/workitems/{id}/revisions"] == 1
