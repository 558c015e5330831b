"""Reading and editing issues: GET/PUT issue, write records, human edits, links, hierarchy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.sandbox.jira_server import JiraSandbox
from tests.jira_sandbox_seeds import FakeClock, small_portfolio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cloud(clock: FakeClock) -> Iterator[JiraSandbox]:
    with JiraSandbox(small_portfolio(), clock=clock) as sandbox:
        yield sandbox


@pytest.fixture
def datacenter(clock: FakeClock) -> Iterator[JiraSandbox]:
    with JiraSandbox(small_portfolio(), flavour="datacenter", clock=clock) as sandbox:
        yield sandbox


def put(sandbox: JiraSandbox, key: str, body: Any, version: str = "3", **params: str) -> Any:
    return requests.put(
        f"{sandbox.url}/rest/api/{version}/issue/{key}",
        json=body,
        params=params,
        auth=sandbox.basic_auth,
        timeout=10,
    )


def get(sandbox: JiraSandbox, key: str, version: str = "3", **params: str) -> Any:
    return requests.get(
        f"{sandbox.url}/rest/api/{version}/issue/{key}",
        params=params,
        auth=sandbox.basic_auth,
        timeout=10,
    )


def test_fields_and_update_verbs_are_applied_and_recorded(
    cloud: JiraSandbox, clock: FakeClock
) -> None:
    score, cost = cloud.field_id("WSJF Score"), cloud.field_id("Cost of Delay")
    before = cloud.issue("PAY-3")["fields"]["updated"]
    clock.advance(minutes=1)
    response = put(
        cloud,
        "PAY-3",
        {
            "fields": {score: 12.5, "priority": {"name": "High"}},
            "update": {
                "labels": [{"add": "wsjf-scored"}, {"remove": "ux"}],
                cost: [{"set": 40}],
            },
        },
    )
    assert response.status_code == 204
    fields = get(cloud, "PAY-3").json()["fields"]
    assert fields[score] == 12.5
    assert fields[cost] == 40.0
    assert fields["labels"] == ["KR-1", "wsjf-scored"]
    assert fields["priority"]["name"] == "High"
    assert fields["updated"] == "2025-06-02T12:01:00.000+0000" != before
    assert [(w.key, w.field, w.name, w.old, w.new) for w in cloud.writes] == [
        ("PAY-3", score, "WSJF Score", None, 12.5),
        ("PAY-3", "priority", "Priority", "Medium", "High"),
        ("PAY-3", "labels", "Labels", ("KR-1", "ux"), ("KR-1", "wsjf-scored")),
        ("PAY-3", cost, "Cost of Delay", None, 40.0),
    ]
    assert all(write.at == clock.now and write.notified for write in cloud.writes)


def test_an_unchanged_value_is_recorded_but_does_not_move_updated(
    cloud: JiraSandbox, clock: FakeClock
) -> None:
    business_value = cloud.field_id("Business Value")
    before = cloud.issue("PAY-2")["fields"]["updated"]
    clock.advance(minutes=5)
    assert put(cloud, "PAY-2", {"fields": {business_value: 5}}).status_code == 204
    assert cloud.issue("PAY-2")["fields"]["updated"] == before
    assert [(w.old, w.new) for w in cloud.writes] == [(5.0, 5.0)]


def test_invalid_edits_answer_400_per_field_and_change_nothing(cloud: JiraSandbox) -> None:
    score, rank = cloud.field_id("WSJF Score"), cloud.field_id("Rank")
    before = cloud.issue("PAY-3")
    response = put(
        cloud,
        "PAY-3",
        {
            "fields": {
                score: "high",
                "labels": "one,two",
                "summary": "two\nlines",
                "customfield_99999": 1,
                rank: "0|aaaaaa:",
                "status": {"name": "Done"},
            },
            "update": {"components": [{"add": {"name": "Checkout"}}]},
        },
    )
    assert response.status_code == 400
    assert response.json() == {
        "errorMessages": [],
        "errors": {
            score: "Operation value must be a number",
            "labels": "data was not an array",
            "summary": "The summary is invalid because it contains newline characters.",
            "customfield_99999": "Field 'customfield_99999' cannot be set. It is not on the "
            "appropriate screen, or unknown.",
            rank: f"Field '{rank}' cannot be set. It is not on the appropriate screen, or unknown.",
            "status": "Field 'status' cannot be set. It is not on the appropriate screen, or "
            "unknown.",
        },
    }
    assert cloud.issue("PAY-3") == before
    assert cloud.writes == []


def test_other_refusals(cloud: JiraSandbox) -> None:
    both = put(cloud, "PAY-3", {"fields": {"labels": []}, "update": {"labels": [{"add": "x"}]}})
    assert both.json()["errors"] == {
        "labels": "Field 'labels' cannot be set in both 'fields' and 'update'."
    }
    spaced = put(cloud, "PAY-3", {"update": {"labels": [{"set": ["has space"]}]}})
    message = "The label 'has space' contains spaces which is invalid."
    assert spaced.json()["errors"] == {"labels": message}
    verb = put(cloud, "PAY-3", {"update": {"summary": [{"add": "x"}]}})
    assert verb.json()["errors"] == {"summary": "Field 'summary' does not support operation 'add'."}
    team = put(cloud, "PAY-3", {"fields": {cloud.field_id("Team"): {"value": "Nobody"}}})
    assert team.status_code == 400
    missing = put(cloud, "PAY-404", {"fields": {"summary": "x"}})
    assert missing.status_code == 404
    assert missing.json() == {
        "errorMessages": ["Issue does not exist or you do not have permission to see it."],
        "errors": {},
    }
    cloud.hide("WEB-1")
    assert get(cloud, "WEB-1").status_code == 404
    assert put(cloud, "WEB-1", {"fields": {"summary": "x"}}).status_code == 404


@pytest.mark.parametrize(("admin", "notified"), [(False, True), (True, False)])
def test_notify_users_false_is_honoured_only_for_admins(admin: bool, notified: bool) -> None:
    with JiraSandbox(small_portfolio(), admin=admin) as sandbox:
        response = put(sandbox, "PAY-1", {"fields": {"summary": "Renamed"}}, notifyUsers="false")
        assert response.status_code == 204
        assert sandbox.writes[0].notified is notified
        assert sandbox.issue("PAY-1")["fields"]["summary"] == "Renamed"


def test_return_issue_answers_200_with_the_edited_issue(cloud: JiraSandbox) -> None:
    response = put(cloud, "PAY-5", {"fields": {"summary": "Refunds work"}}, returnIssue="true")
    assert response.status_code == 200
    assert response.json()["fields"]["summary"] == "Refunds work"


def test_description_is_text_in_v2_and_a_document_in_v3(cloud: JiraSandbox) -> None:
    refused = put(cloud, "PAY-5", {"fields": {"description": "plain"}}, version="3")
    assert refused.json()["errors"] == {
        "description": "Operation value must be an Atlassian Document (see the Atlassian "
        "Document Format)"
    }
    document = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Steps & <b>tags</b>"}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "Second"}]},
        ],
    }
    assert put(cloud, "PAY-5", {"fields": {"description": document}}).status_code == 204
    assert (
        get(cloud, "PAY-5", "2").json()["fields"]["description"] == "Steps & <b>tags</b>\n\nSecond"
    )
    assert get(cloud, "PAY-5", "3").json()["fields"]["description"] == document
    assert (
        put(cloud, "PAY-5", {"fields": {"description": "v2 text"}}, version="2").status_code == 204
    )
    assert cloud.issue("PAY-5", api_version="2")["fields"]["description"] == "v2 text"


def test_cloud_parent_is_set_and_cleared_by_key(cloud: JiraSandbox) -> None:
    assert put(cloud, "WEB-1", {"fields": {"parent": {"key": "PAY-2"}}}).status_code == 204
    assert get(cloud, "WEB-1").json()["fields"]["parent"]["key"] == "PAY-2"
    cleared = put(cloud, "WEB-1", {"update": {"parent": [{"set": {"none": True}}]}})
    assert cleared.status_code == 204
    assert "parent" not in get(cloud, "WEB-1").json()["fields"]
    missing = put(cloud, "WEB-1", {"fields": {"parent": {"key": "PAY-404"}}})
    assert missing.json()["errors"] == {"parent": "Could not find issue by id or key 'PAY-404'."}


def test_datacenter_hierarchy_uses_epic_link_and_parent_link(datacenter: JiraSandbox) -> None:
    epic_link, parent_link = datacenter.field_id("Epic Link"), datacenter.field_id("Parent Link")
    story = get(datacenter, "PAY-3", "2").json()["fields"]
    epic = get(datacenter, "PAY-2", "2").json()["fields"]
    subtask = get(datacenter, "PAY-4", "2").json()["fields"]
    assert (story[epic_link], story[parent_link], "parent" in story) == ("PAY-2", None, False)
    assert epic[parent_link] == {
        "hasEpicLinkFieldDependency": False,
        "showField": False,
        "data": {"id": 10002, "keyNum": 1, "key": "PAY-1", "summary": "Modernise payments"},
    }
    assert epic[epic_link] is None
    assert subtask["parent"]["key"] == "PAY-3"
    assert subtask[epic_link] is None
    assert put(datacenter, "WEB-1", {"fields": {epic_link: "PAY-2"}}, "2").status_code == 204
    assert get(datacenter, "WEB-1", "2").json()["fields"][epic_link] == "PAY-2"
    not_epic = put(datacenter, "WEB-1", {"fields": {epic_link: "PAY-3"}}, "2")
    assert not_epic.json()["errors"] == {epic_link: "Issue 'PAY-3' is not an epic."}
    parent = put(datacenter, "WEB-1", {"fields": {"parent": {"key": "PAY-2"}}}, "2")
    assert parent.json()["errors"] == {
        "parent": "Field 'parent' cannot be set. It is not on the appropriate screen, or unknown."
    }


def test_issue_links_are_served_from_both_ends(cloud: JiraSandbox) -> None:
    epic_links = get(cloud, "PAY-2", fields="issuelinks").json()["fields"]["issuelinks"]
    kr_links = get(cloud, "OKR-1", fields="issuelinks").json()["fields"]["issuelinks"]
    assert len(epic_links) == len(kr_links) == 1
    assert epic_links[0]["type"] == {
        "id": "10004",
        "name": "Drives",
        "inward": "is driven by",
        "outward": "drives",
        "self": f"{cloud.url}/rest/api/3/issueLinkType/10004",
    }
    assert epic_links[0]["outwardIssue"]["key"] == "OKR-1"
    assert "inwardIssue" not in epic_links[0]
    assert kr_links[0]["inwardIssue"]["key"] == "PAY-2"
    assert kr_links[0]["inwardIssue"]["fields"]["status"]["name"] == "To Do"
    cloud.delete("PAY-2")
    assert get(cloud, "OKR-1", fields="issuelinks").json()["fields"]["issuelinks"] == []
    assert get(cloud, "PAY-2").status_code == 404


def test_touch_is_a_human_edit(cloud: JiraSandbox, clock: FakeClock) -> None:
    clock.advance(hours=1)
    cloud.touch("PAY-1", summary="Edited by a person", labels=["kr-2"], status="Done")
    cloud.touch("PAY-2", business_value=13, **{cloud.field_id("Job Size"): 8})
    fields = cloud.issue("PAY-1")["fields"]
    assert fields["summary"] == "Edited by a person"
    assert fields["labels"] == ["kr-2"]
    assert fields["status"]["statusCategory"]["key"] == "done"
    assert fields["updated"] == "2025-06-02T13:00:00.000+0000"
    epic = cloud.issue("PAY-2")["fields"]
    assert (epic[cloud.field_id("Business Value")], epic[cloud.field_id("Job Size")]) == (13, 8)
    assert cloud.writes == []
    with pytest.raises(TypeError):
        cloud.touch("PAY-1", created="yesterday")


def test_touch_introduces_statuses_and_types_as_seeding_does(cloud: JiraSandbox) -> None:
    """A status or type first seen in `touch` gets the id it would get in the seed."""
    cloud.touch("WEB-1", status="In Review", type="Spike")
    cloud.touch("WEB-2", status="Waiting for vendor")
    fields = cloud.issue("WEB-1")["fields"]
    assert (fields["status"]["id"], fields["status"]["statusCategory"]["key"]) == (
        "10004",
        "indeterminate",
    )
    assert (fields["issuetype"]["name"], fields["issuetype"]["subtask"]) == ("Spike", False)
    waiting = cloud.issue("WEB-2")["fields"]["status"]
    assert waiting["id"] == str(10100 + len(cloud.store.statuses) - 1)
    assert waiting["statusCategory"]["key"] == "indeterminate"


def test_change_on_read_edits_right_after_the_next_read(cloud: JiraSandbox) -> None:
    cloud.change_on_read.add("PAY-3")
    before = cloud.issue("PAY-3")["fields"]["updated"]
    ids_only = requests.get(
        f"{cloud.url}/rest/api/3/search/jql",
        params={"jql": "key = PAY-3"},
        auth=cloud.basic_auth,
        timeout=10,
    ).json()
    assert ids_only["issues"] == [{"id": "10004"}]
    assert "PAY-3" in cloud.change_on_read  # an id-only listing is not a read of the fields
    fetched = requests.post(
        f"{cloud.url}/rest/api/3/issue/bulkfetch",
        json={"issueIdsOrKeys": ["PAY-3"], "fields": ["updated"]},
        auth=cloud.basic_auth,
        timeout=10,
    ).json()
    assert fetched["issues"][0]["fields"]["updated"] == before
    assert cloud.issue("PAY-3")["fields"]["updated"] > before
    assert "PAY-3" not in cloud.change_on_read


def test_issue_method_matches_the_api(cloud: JiraSandbox) -> None:
    assert cloud.issue("pay-3") == get(cloud, "PAY-3").json()
    assert cloud.issue("PAY-3", api_version="2") == get(cloud, "PAY-3", "2").json()
    with pytest.raises(KeyError, match="no issue"):
        cloud.issue("PAY-404")
    with pytest.raises(KeyError, match="no field named 'Nope'"):
        cloud.field_id("Nope")
