"""Cloud `POST /rest/api/3/changelog/bulkfetch` (getBulkChangelogs) and `GET status`.

From specs/jira-platform-v3.json: the body is `BulkChangelogRequestBean` (`issueIdsOrKeys`
1–1000, `fieldIds` at most 10, `maxResults` 1–10000 with default 1000, `nextPageToken`); the
answer `BulkChangelogResponseBean` lists `issueChangeLogs` (`issueId`, `changeHistories`)
"sorted by changelog date and issue IDs, starting from the oldest changelog and smallest issue
ID", and `nextPageToken` is absent on the last page. Unknown and invisible issues are left out
(as bulk fetch of issues does). A page groups its changelogs by issue, in the order each issue
first appears on it.

The token holds the offset and a checksum of the request, so a token used with another request
is refused (400) instead of paging something else. `endless=True` (`Faults.endless_pages`)
answers the first page again with a fresh token every time, as a broken server would.
"""

from __future__ import annotations

import base64
import itertools
import json
import zlib
from typing import Any

from connectors.sandbox.jira_history import changelog_json, timeline
from connectors.sandbox.jira_render import RenderContext, status_json
from connectors.sandbox.jira_search import bad_request, reject_unknown
from connectors.sandbox.jira_store import IssueStore

ISSUES_LIMIT = 1000
FIELD_IDS_LIMIT = 10
DEFAULT_PAGE = 1000
PAGE_CAP = 10000
BAD_TOKEN = "The provided next page token is invalid or expired."
_fresh = itertools.count(1)


def bulk_changelogs(context: RenderContext, body: Any, *, endless: bool = False) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    allowed = {"issueIdsOrKeys", "fieldIds", "maxResults", "nextPageToken"}
    reject_unknown(body, allowed, "BulkChangelogRequestBean")
    wanted = body.get("issueIdsOrKeys")
    if (
        not isinstance(wanted, list)
        or not 1 <= len(wanted) <= ISSUES_LIMIT
        or not all(isinstance(reference, str) for reference in wanted)
    ):
        raise bad_request(f"Provide between 1 and {ISSUES_LIMIT} issue IDs or keys.")
    field_ids = body.get("fieldIds") or []
    if not isinstance(field_ids, list) or len(field_ids) > FIELD_IDS_LIMIT:
        raise bad_request(f"Provide at most {FIELD_IDS_LIMIT} field IDs.")
    page_size = body.get("maxResults", DEFAULT_PAGE)
    if not isinstance(page_size, int) or not 1 <= page_size <= PAGE_CAP:
        raise bad_request(f"'maxResults' must be between 1 and {PAGE_CAP}.")
    fingerprint = zlib.crc32(json.dumps([wanted, field_ids, page_size]).encode())
    offset = _offset(body.get("nextPageToken"), fingerprint)
    store = context.store
    issues = {issue.id: issue for ref in wanted if (issue := store.find(ref)) is not None}
    rows = timeline(issues.values(), field_ids)
    if endless:
        offset = 0
    page = rows[offset : offset + page_size]
    grouped: dict[int, list[dict[str, Any]]] = {}
    for _, issue_id, entry in page:
        grouped.setdefault(issue_id, []).append(changelog_json(context, entry))
    answer: dict[str, Any] = {
        "issueChangeLogs": [
            {"issueId": str(issue_id), "changeHistories": histories}
            for issue_id, histories in grouped.items()
        ]
    }
    end = offset + page_size
    if endless:
        answer["nextPageToken"] = _token(end + next(_fresh), fingerprint)
    elif end < len(rows):
        answer["nextPageToken"] = _token(end, fingerprint)
    return answer


def statuses(context: RenderContext, store: IssueStore) -> list[dict[str, Any]]:
    """`GET status` (getStatuses): every status of the site as `StatusDetails`."""
    return [status_json(context, name) for name in store.statuses]


def _token(offset: int, fingerprint: int) -> str:
    return base64.urlsafe_b64encode(f"changelog:{fingerprint}:{offset}".encode()).decode()


def _offset(token: Any, fingerprint: int) -> int:
    if token is None:
        return 0
    try:
        prefix, checksum, offset = base64.urlsafe_b64decode(str(token).encode()).decode().split(":")
        if prefix != "changelog" or int(checksum) != fingerprint or int(offset) < 0:
            raise ValueError(token)
        return int(offset)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(BAD_TOKEN) from error
