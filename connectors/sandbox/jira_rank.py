"""`PUT /rest/agile/1.0/issue/rank` (rankIssues in specs/jira-software-agile.json).

At most 50 issues per call, placed in the given order right before `rankBeforeIssue` or right
after `rankAfterIssue`. All ranked: 204. Some failed: 207 with one entry per issue
(`{issueId, issueKey, status, errors}`, the `PartialSuccessBean` shape of the agile spec);
the issues that did not fail are moved anyway. Issues listed in the sandbox's `rank_failures`
fail with 503 and the spec example's message, so connectors can test partial failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sandbox.jira_edit import JiraWrite
from connectors.sandbox.jira_search import bad_request, reject_unknown
from connectors.sandbox.jira_store import StoredIssue

if TYPE_CHECKING:
    from connectors.sandbox.jira_server import JiraSandbox

RANK_LIMIT = 50
RANK_FIELDS = {"issues", "rankBeforeIssue", "rankAfterIssue", "rankCustomFieldId"}
UNAVAILABLE = "JIRA Agile cannot execute the rank operation at this time. Please try again later."
NOT_FOUND = "Issue does not exist or you do not have permission to see it."


def rank_issues(sandbox: JiraSandbox, body: Any) -> dict[str, Any] | None:
    """Apply one rank request; None when every issue was ranked (204), else the 207 body."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    reject_unknown(body, RANK_FIELDS, "IssueRankRequestBean")
    references = body.get("issues")
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        raise bad_request("'issues' must be a list of issue keys or ids.")
    if not 1 <= len(references) <= RANK_LIMIT:
        raise bad_request(f"Between 1 and {RANK_LIMIT} issues can be ranked at once.")
    before, after = body.get("rankBeforeIssue"), body.get("rankAfterIssue")
    if (before is None) == (after is None):
        raise bad_request("Exactly one of 'rankBeforeIssue' and 'rankAfterIssue' must be given.")
    rank_field = next(d for d in sandbox.fields if d.kind == "rank")
    field_id = body.get("rankCustomFieldId")
    if field_id is not None and field_id != rank_field.custom_id:
        raise bad_request(f"The custom field with id {field_id} is not a rank field.")
    anchor = sandbox.store.find(str(before or after))
    if anchor is None:
        raise bad_request(f"Issue '{before or after}' does not exist or you cannot see it.")
    entries, movable = _entries(sandbox, references, anchor)
    if movable:
        moved = sandbox.store.rank_block(movable, anchor, before is not None)
        at = sandbox.clock()
        for issue, old in moved:
            write = JiraWrite(issue.key, rank_field.id, rank_field.name, old, issue.rank, at, True)
            sandbox.writes.append(write)
            sandbox.store.bump(issue)
    if all(entry["status"] == 200 for entry in entries):
        return None
    return {"entries": entries}


def _entries(
    sandbox: JiraSandbox, references: list[str], anchor: StoredIssue
) -> tuple[list[dict[str, Any]], list[StoredIssue]]:
    entries: list[dict[str, Any]] = []
    movable: list[StoredIssue] = []
    for reference in references:
        issue = sandbox.store.find(reference)
        if issue is None:
            entries.append({"issueKey": reference, "status": 404, "errors": [NOT_FOUND]})
            continue
        entry: dict[str, Any] = {"issueId": issue.id, "issueKey": issue.key, "status": 200}
        if issue.id == anchor.id:
            entry.update(status=400, errors=["An issue cannot be ranked relative to itself."])
        elif issue.key in sandbox.rank_failures:
            entry.update(status=503, errors=[UNAVAILABLE])
        elif issue not in movable:
            movable.append(issue)
        entries.append(entry)
    return entries, movable
