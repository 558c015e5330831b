"""The naive baseline: plain `jira` 3.10 / `azure-devops` 7.1 client code as a user would write
it, run by `bench.worker` against the same sandboxes as spm-sync.

- Jira full sync: `JIRA(...).enhanced_search_issues(jql, maxResults=False)`: the library pages
  100 issues at a time with `fields=*all`, one page after the other.
- Azure DevOps full sync: `query_by_wiql` for the ids, then `get_work_item(id)` per id (the
  N+1 pattern), with `expand="Relations"` so that it reads the parent and the links spm-sync
  reads too (the same single request per item). WIQL refuses more than 20,000 results
  (VS402337), so the ids are paged by id like a careful user would: `[System.Id] > last
  ORDER BY [System.Id]` with `$top=20000`.
- Write-back: `jira.rank(issue, prev_issue=...)` per moved issue, `issue.update(fields=...)`
  per issue; `update_work_item` per work item.
The functions hold what they read in a list, as a script that goes on to use it would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from azure.devops.connection import Connection
from azure.devops.v7_1.work_item_tracking import WorkItemTrackingClient
from azure.devops.v7_1.work_item_tracking.models import JsonPatchOperation, TeamContext, Wiql
from jira import JIRA
from msrest.authentication import BasicAuthentication

WIQL_CAP = 20_000
STACK_RANK = "Microsoft.VSTS.Common.StackRank"


# -- Jira ------------------------------------------------------------------------------------
def jira_client(target: Mapping[str, Any]) -> JIRA:
    return JIRA(target["url"], basic_auth=(target["user"], target["token"]))


def jira_full_sync(target: Mapping[str, Any]) -> dict[str, Any]:
    jira = jira_client(target)
    issues = jira.enhanced_search_issues(f"{target['jql']} ORDER BY key", maxResults=False)
    return {"items": len(issues)}


def jira_incremental(target: Mapping[str, Any], minutes: int) -> dict[str, Any]:
    """Issues updated in the last `minutes` (a relative JQL date, as a user would write it)."""
    jira = jira_client(target)
    jql = f'({target["jql"]}) AND updated >= "-{minutes}m" ORDER BY key'
    issues = jira.enhanced_search_issues(jql, maxResults=False)
    return {"items": len(issues)}


def jira_rerank(target: Mapping[str, Any], moves: Sequence[Sequence[str | None]]) -> dict[str, Any]:
    """`moves`: [key, after_key, before_key] per moved issue, in execution order."""
    jira = jira_client(target)
    for key, after_key, before_key in moves:
        assert key is not None
        if after_key is not None:
            jira.rank(key, prev_issue=after_key)
        else:
            jira.rank(key, next_issue=before_key)
    return {"items": len(moves), "writes": len(moves)}


# -- Azure DevOps ----------------------------------------------------------------------------
def ado_client(target: Mapping[str, Any]) -> WorkItemTrackingClient:
    creds = BasicAuthentication("", target["pat"])
    connection = Connection(base_url=target["organization_url"], creds=creds)
    return connection.clients_v7_1.get_work_item_tracking_client()


def ado_ids(
    wit: WorkItemTrackingClient, project: str, condition: str = "", time_precision: bool = False
) -> list[int]:
    """Every id of the project (matching `condition`), paged by id under the WIQL cap."""
    ids: list[int] = []
    last = 0
    while True:
        query = (
            "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
            f"AND [System.Id] > {last}{condition} ORDER BY [System.Id]"
        )
        result = wit.query_by_wiql(
            Wiql(query=query),
            team_context=TeamContext(project=project),
            time_precision=time_precision or None,
            top=WIQL_CAP,
        )
        page = [reference.id for reference in result.work_items]
        ids += page
        if len(page) < WIQL_CAP:
            return ids
        last = page[-1]


def ado_full_sync(target: Mapping[str, Any]) -> dict[str, Any]:
    wit = ado_client(target)
    project = target["project"]
    items = [
        wit.get_work_item(work_item_id, project=project, expand="Relations")
        for work_item_id in ado_ids(wit, project)
    ]
    return {"items": len(items)}


def ado_incremental(target: Mapping[str, Any], since: str) -> dict[str, Any]:
    """Work items changed at or after `since` (ISO time, WIQL with timePrecision)."""
    wit = ado_client(target)
    project = target["project"]
    condition = f" AND [System.ChangedDate] >= '{since}'"
    items = [
        wit.get_work_item(work_item_id, project=project, expand="Relations")
        for work_item_id in ado_ids(wit, project, condition, time_precision=True)
    ]
    return {"items": len(items)}


def ado_rerank(target: Mapping[str, Any], ranks: Sequence[Sequence[float]]) -> dict[str, Any]:
    """`ranks`: [id, new StackRank] per work item to write, one PATCH each."""
    wit = ado_client(target)
    project = target["project"]
    for work_item_id, value in ranks:
        document = [JsonPatchOperation(op="add", path=f"/fields/{STACK_RANK}", value=value)]
        wit.update_work_item(document, int(work_item_id), project=project)
    return {"items": len(ranks), "writes": len(ranks)}
