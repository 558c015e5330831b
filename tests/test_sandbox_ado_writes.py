"""Changing work items in the Azure DevOps sandbox: JSON Patch with optimistic concurrency,
rules, relations, and the test switches (`touch`, `change_on_read`, `delete`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from connectors.sandbox.ado_server import AzureDevOpsSandbox
from tests.ado_spec import check_request, validate_response
from tests.sandbox_ado_support import BASE, AdoSession, small_portfolio

NOW = BASE + timedelta(days=1)

pytestmark = pytest.mark.integration


@pytest.fixture
def client() -> Iterator[AdoSession]:
    sandbox = AzureDevOpsSandbox(small_portfolio(), clock=lambda: NOW)
    with sandbox:
        yield AdoSession(sandbox)


def item(client: AdoSession, work_item_id: int) -> dict[str, Any]:
    return client.ado.work_item(work_item_id)


def guarded(rev: int, *operations: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"op": "test", "path": "/rev", "value": rev}, *operations]


def set_field(name: str, value: Any) -> dict[str, Any]:
    return {"op": "add", "path": f"/fields/{name}", "value": value}


# -- JSON Patch and revisions ------------------------------------------------------------------
def test_a_guarded_patch_writes_bumps_rev_and_changed_date(client: AdoSession) -> None:
    document = guarded(
        2, set_field("Custom.WSJFScore", 4.3), set_field("Microsoft.VSTS.Common.StackRank", 1.5)
    )
    url = client.url("Portfolio/_apis/wit/workitems/101?api-version=7.1")
    check_request("PATCH", url, {"Content-Type": "application/json-patch+json"}, document)
    response = client.patch(101, document)
    assert response.status_code == 200, response.text
    body = response.json()
    validate_response("Work Items_Update", body)
    assert body["rev"] == 3 and body["fields"]["System.Rev"] == 3
    assert body["fields"]["Custom.WSJFScore"] == 4.3
    assert body["fields"]["System.ChangedDate"] == "2026-11-21T10:00:00Z"
    assert body["fields"]["System.ChangedBy"]["displayName"] == "spm-sync automation"
    assert [(w.key, w.field, w.old, w.new, w.rev) for w in client.ado.writes] == [
        ("101", "Custom.WSJFScore", None, 4.3, 3),
        ("101", "Microsoft.VSTS.Common.StackRank", 2000.0, 1.5, 3),
    ]
    again = client.patch(101, guarded(3, set_field("Custom.WSJFScore", 4.4))).json()
    assert again["rev"] == 4
    assert again["fields"]["System.ChangedDate"] == "2026-11-21T10:00:00.001Z"  # always later


def test_a_stale_rev_is_412_and_changes_nothing(client: AdoSession) -> None:
    response = client.patch(101, guarded(1, set_field("Custom.WSJFScore", 9)))
    assert response.status_code == 412
    body = response.json()
    assert body["typeKey"] == "TestPatchOperationFailedException"
    assert body["message"] == (
        "VS403351: Test Operation for path /rev failed, value 2 was not equal to test value 1."
    )
    after = item(client, 101)
    assert after["rev"] == 2 and "Custom.WSJFScore" not in after["fields"]
    assert client.ado.writes == []
    field_test = client.patch(101, [{"op": "test", "path": "/fields/System.Title", "value": "Old"}])
    assert field_test.status_code == 412


def test_validate_only_previews_without_saving(client: AdoSession) -> None:
    preview = client.patch(
        101, guarded(2, set_field("System.Title", "Renamed")), validateOnly="true"
    )
    assert preview.status_code == 200
    assert (preview.json()["rev"], preview.json()["fields"]["System.Title"]) == (2, "Renamed")
    assert item(client, 101)["fields"]["System.Title"] == "One-click pay"
    assert client.ado.writes == []


def test_rules_read_only_fields_states_and_types(client: AdoSession) -> None:
    read_only = client.patch(101, [set_field("System.ChangedDate", "2026-01-01T00:00:00Z")])
    assert read_only.status_code == 400
    assert (
        read_only.json()["message"]
        == "TF401326: Invalid field status 'ReadOnly' for field 'System.ChangedDate'."
    )
    bypassed = client.patch(
        101, [set_field("System.ChangedDate", "2026-12-01T00:00:00Z")], bypassRules="true"
    )
    assert bypassed.status_code == 200, bypassed.text
    bad_state = client.patch(101, [set_field("System.State", "Doing")])
    assert (
        bad_state.json()["message"]
        == "TF401320: Rule Error for field State. Error code: LimitedToValues."
    )
    assert (
        client.patch(101, [set_field("System.State", "Doing")], bypassRules="true").status_code
        == 200
    )
    not_a_number = client.patch(101, [set_field("Business Value", "lots")])
    assert (
        "'InvalidType' for field 'Microsoft.VSTS.Common.BusinessValue'"
        in not_a_number.json()["message"]
    )
    numeric_text = client.patch(101, [set_field("Business Value", "13")]).json()
    assert numeric_text["fields"]["Microsoft.VSTS.Common.BusinessValue"] == 13
    unknown = client.patch(101, [set_field("Custom.Nope", 1)])
    assert (unknown.status_code, unknown.json()["message"]) == (
        400,
        "TF51535: Cannot find field Custom.Nope.",
    )
    bad_area = client.patch(101, [set_field("System.AreaPath", "Portfolio\\Nowhere")])
    assert bad_area.status_code == 400 and "TF401347" in bad_area.json()["message"]


def test_tags_are_normalized_and_fields_can_be_removed(client: AdoSession) -> None:
    tagged = client.patch(100, [set_field("System.Tags", "payments;kr-10 ; Q4;Payments")]).json()
    assert tagged["fields"]["System.Tags"] == "kr-10; payments; Q4"
    removed = client.patch(100, [{"op": "remove", "path": "/fields/Custom.RiskReduction"}]).json()
    assert "Custom.RiskReduction" not in removed["fields"]
    flags = client.patch(
        100, [set_field("System.Title", "Checkout v2")], suppressNotifications="true"
    )
    assert flags.status_code == 200


def test_patch_needs_a_json_patch_document_and_content_type(client: AdoSession) -> None:
    plain = client.request(
        "PATCH", "Portfolio/_apis/wit/workitems/101", json=[set_field("System.Title", "x")]
    )
    assert plain.status_code == 400
    assert plain.json()["message"] == (
        'The request indicated a Content-Type of "application/json" for method type "PATCH" '
        "which is not supported. Valid content types for this method are: "
        "application/json-patch+json."
    )
    not_a_list = client.patch(101, {"op": "add"})
    assert (
        not_a_list.json()["message"]
        == "You must pass a valid patch document in the body of the request."
    )
    move = client.patch(
        101, [{"op": "move", "from": "/fields/System.Title", "path": "/fields/System.Description"}]
    )
    assert move.status_code == 400


# -- relations ---------------------------------------------------------------------------------
def relation(rel: str, target: int, org: str) -> dict[str, Any]:
    url = f"{org}/_apis/wit/workItems/{target}"
    return {
        "op": "add",
        "path": "/relations/-",
        "value": {"rel": rel, "url": url, "attributes": {"comment": "why"}},
    }


def test_links_are_stored_on_both_ends_and_both_get_a_revision(client: AdoSession) -> None:
    org = client.ado.organization_url
    response = client.patch(104, guarded(2, relation("System.LinkTypes.Related", 10, org)))
    assert response.status_code == 200, response.text
    assert response.json()["relations"][-1] == {
        "rel": "System.LinkTypes.Related",
        "url": f"{org}/_apis/wit/workItems/10",
        "attributes": {"isLocked": False, "name": "Related", "comment": "why"},
    }
    key_result = item(client, 10)
    assert key_result["rev"] == 3
    assert [r["url"].rsplit("/", 1)[1] for r in key_result["relations"]] == ["100", "104"]
    second_parent = client.patch(104, [relation("System.LinkTypes.Hierarchy-Reverse", 101, org)])
    assert second_parent.status_code == 400
    assert second_parent.json()["typeKey"] == "WorkItemLinkAddExtraParentException"


def test_reparenting_moves_the_child_and_updates_system_parent(client: AdoSession) -> None:
    org = client.ado.organization_url
    parent_index = next(
        index
        for index, r in enumerate(item(client, 104)["relations"])
        if r["rel"].endswith("Reverse")
    )
    document = [
        {"op": "remove", "path": f"/relations/{parent_index}"},
        relation("System.LinkTypes.Hierarchy-Reverse", 101, org),
    ]
    moved = client.patch(104, document).json()
    assert moved["fields"]["System.Parent"] == 101
    old_parent = [r["url"] for r in item(client, 102).get("relations", [])]
    assert f"{org}/_apis/wit/workItems/104" not in old_parent
    new_parent = [r["url"] for r in item(client, 101)["relations"] if r["rel"].endswith("Forward")]
    assert new_parent == [f"{org}/_apis/wit/workItems/103", f"{org}/_apis/wit/workItems/104"]


# -- what tests use to stage a conflict ----------------------------------------------------------
def test_touch_is_a_human_edit_that_makes_a_guarded_write_conflict(client: AdoSession) -> None:
    read = client.request("GET", "_apis/wit/workitems/101").json()
    touched = client.ado.touch(101, **{"Business Value": 21, "Title": "One-click pay v2"})
    assert (touched["rev"], touched["fields"]["Microsoft.VSTS.Common.BusinessValue"]) == (3, 21)
    assert touched["fields"]["System.ChangedBy"]["displayName"] == "Dana Planner"
    late = client.patch(101, guarded(read["rev"], set_field("Custom.WSJFScore", 3)))
    assert late.status_code == 412


def test_change_on_read_edits_an_item_right_after_it_is_read_once(client: AdoSession) -> None:
    client.ado.change_on_read.add("101")
    seen = client.batch({"ids": [101]}).json()["value"][0]
    assert seen["rev"] == 2 and item(client, 101)["rev"] == 3
    assert (
        client.patch(101, guarded(seen["rev"], set_field("Custom.WSJFScore", 1))).status_code == 412
    )
    fresh = client.request("GET", "_apis/wit/workitems/101").json()
    assert (
        client.patch(101, guarded(fresh["rev"], set_field("Custom.WSJFScore", 1))).status_code
        == 200
    )


def test_change_on_read_listed_as_int_and_str_is_one_human_edit(client: AdoSession) -> None:
    client.ado.change_on_read.update({102, "102"})
    assert client.batch({"ids": [102]}).json()["value"][0]["rev"] == 2
    assert item(client, 102)["rev"] == 3
    assert client.ado.change_on_read == set()


def test_deleted_items_vanish_from_reads_queries_and_links(client: AdoSession) -> None:
    client.ado.delete(103)
    assert client.request("GET", "_apis/wit/workitems/103").status_code == 404
    ids = [w["id"] for w in client.wiql("SELECT [System.Id] FROM WorkItems").json()["workItems"]]
    assert 103 not in ids and len(ids) == 5
    assert client.batch({"ids": [103, 101], "errorPolicy": "omit"}).json()["value"][0] is None
    remaining = [r["url"] for r in item(client, 101).get("relations", [])]
    assert remaining == [f"{client.ado.organization_url}/_apis/wit/workItems/100"]


def test_as_of_reads_an_earlier_revision(client: AdoSession) -> None:
    client.ado.touch(101, Title="Renamed later")
    before = client.batch({"ids": [101], "asOf": "2026-11-20T00:00:00Z"}).json()["value"][0]
    assert (before["rev"], before["fields"]["System.Title"]) == (2, "One-click pay")
    now = client.batch({"ids": [101]}).json()["value"][0]
    assert (now["rev"], now["fields"]["System.Title"]) == (3, "Renamed later")
    too_early = client.batch({"ids": [101], "asOf": "2020-01-01T00:00:00Z", "errorPolicy": "omit"})
    assert too_early.json()["value"] == [None]
