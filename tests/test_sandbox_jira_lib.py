"""The unmodified `jira` library (3.10.x) against both sandbox flavours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from jira import JIRA, JIRAError

from connectors.sandbox.generator import generate_portfolio
from connectors.sandbox.jira_server import JiraSandbox

PORTFOLIO = generate_portfolio(600, jira_share=1.0, now=datetime(2025, 6, 1, tzinfo=UTC))
PAY_KEYS = sorted(
    (item.key for item in PORTFOLIO.jira if item.project == "PAY"),
    key=lambda key: int(key.split("-")[1]),
)


def client_for(sandbox: JiraSandbox) -> JIRA:
    # max_retries=0: a failure must surface, not be retried by the library.
    return JIRA(sandbox.url, basic_auth=sandbox.basic_auth, max_retries=0)


@pytest.fixture
def cloud() -> Iterator[JiraSandbox]:
    with JiraSandbox(PORTFOLIO.jira, admin=True) as sandbox:
        yield sandbox


@pytest.fixture
def datacenter() -> Iterator[JiraSandbox]:
    with JiraSandbox(PORTFOLIO.jira, flavour="datacenter") as sandbox:
        yield sandbox


def test_cloud_session_search_edit_rank_and_fields(cloud: JiraSandbox) -> None:
    client = client_for(cloud)
    assert client.deploymentType == "Cloud"
    issues = client.enhanced_search_issues("project = PAY ORDER BY key", maxResults=0)
    assert [issue.key for issue in issues] == PAY_KEYS
    page = client.enhanced_search_issues("project = PAY ORDER BY key", maxResults=7, use_post=True)
    assert [issue.key for issue in page] == PAY_KEYS[:7]
    assert page.nextPageToken
    assert client.approximate_issue_count("project = PAY") == len(PAY_KEYS)

    score = cloud.field_id("WSJF Score")
    issue = client.issue(PAY_KEYS[0])
    assert issue.fields.summary == cloud.issue(PAY_KEYS[0])["fields"]["summary"]
    issue.update(fields={score: 8.5}, notify=False)
    assert client.issue(PAY_KEYS[0]).raw["fields"][score] == 8.5
    assert (cloud.writes[-1].field, cloud.writes[-1].new, cloud.writes[-1].notified) == (
        score, 8.5, False,
    )  # fmt: skip

    moved, anchor = PAY_KEYS[5], PAY_KEYS[1]
    response = client.rank(moved, next_issue=anchor)
    assert response.status_code == 204
    order = cloud.rank_order([moved, anchor])
    assert order == [moved, anchor]
    assert {field["name"] for field in client.fields()} >= {"Rank", "WSJF Score", "Job Size"}


def test_cloud_errors_raise_jira_errors(cloud: JiraSandbox) -> None:
    client = client_for(cloud)
    with pytest.raises(JIRAError) as missing:
        client.issue("PAY-99999")
    assert missing.value.status_code == 404
    with pytest.raises(JIRAError) as bad_jql:
        client.enhanced_search_issues("project = PAY AND")
    assert bad_jql.value.status_code == 400
    assert "Expecting a field name" in bad_jql.value.text
    with pytest.raises(JIRAError) as deprecated:
        client.search_issues("project = PAY", startAt=5)
    assert "deprecated" in str(deprecated.value)
    with pytest.raises(JIRAError) as unauthorised:
        JIRA(cloud.url, basic_auth=(cloud.user, "wrong"), max_retries=0)
    assert unauthorised.value.status_code == 401


def test_datacenter_session_search_issue_and_update(datacenter: JiraSandbox) -> None:
    client = client_for(datacenter)
    assert client.deploymentType == "Server"
    issues = client.search_issues("project = PAY ORDER BY key", maxResults=False)
    assert [issue.key for issue in issues] == PAY_KEYS
    assert issues.total == len(PAY_KEYS)
    assert client.enhanced_search_issues("project = PAY") is None  # Cloud-only in the library

    epic_link = datacenter.field_id("Epic Link")
    story = next(
        item for item in PORTFOLIO.jira
        if item.type == "Story" and item.parent and item.project == "PAY"
    )  # fmt: skip
    assert client.issue(story.key).raw["fields"][epic_link] == story.parent
    issue = client.issue(story.key)
    issue.update(fields={datacenter.field_id("Cost of Delay"): 13})
    assert datacenter.issue(story.key)["fields"][datacenter.field_id("Cost of Delay")] == 13.0

    token_client = JIRA(datacenter.url, token_auth=datacenter.bearer_token, max_retries=0)
    assert token_client.myself()["name"] == datacenter.user
