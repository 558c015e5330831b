"""Status histories of the issues a run pulled, with the fewest requests Jira allows.

Request budget (n = issues whose history is asked; only those `pull` yielded in this run):
- **Cloud**: `POST changelog/bulkfetch` for 1,000 issues at a time with `fieldIds: ["status"]`
  and 10,000 changelogs a page, so ceil(n / 1000) requests (more only for a batch with more
  than 10,000 status changes); batches run `workers` at a time like the bulk fetch of issues.
  Issues are asked by id and answered by id (`issueId`); the ids come from the pull. A key the
  pull did not yield in this run costs one `issue/bulkfetch` per 100 such keys to learn its id.
- **Data Center** has no bulk changelog: `POST search` for `key in (…)` with `fields: ["status"]`
  and `expand: ["changelog"]`, 250 issues a request, so ceil(n / 250). Not captured during the
  pull on purpose: the pull cannot know whether history is wanted, and Data Center cannot filter
  the changelog by field, so every pull page (1,000 issues) would carry the changelog of every
  field; 250 issues keep an answer at a few MB even for issues with long histories, well under
  `limits.max_response_mb`. `validateQuery: "warn"` lets a key deleted since the pull drop out
  instead of failing the query.
- **Status categories**: changelogs name statuses by id; the category of each id comes from
  the statuses the pull already saw (every issue's current status carries its category), and
  only when a change names a status no pulled issue is in (e.g. "In Review" when nothing is in
  review now) one `GET status` per run learns the site's whole list. A full sync usually needs
  none; an incremental run of a few issues at most one. Ids Jira no longer knows (a deleted
  status) get category None.

Moves: a changelog belongs to the issue, not the key, so changes are yielded under the key
asked for (the current one), including those made before a move. Data Center's changelog also
carries the `Key` items of moves: the keys an issue had before are kept in `former_keys`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from connectors.batches import chunked, completed_in_parallel
from connectors.jira_client import BULKFETCH_LIMIT, CHANGELOG_ISSUES_LIMIT, Flavour, JiraClient
from connectors.jira_history import (
    STATUS_FIELD,
    RawStatusChange,
    StatusCategories,
    former_keys,
    raw_status_changes,
    status_change,
)
from connectors.jira_paging import KEY_ORDER
from connectors.paging_guard import PageBudget, PagingLoopError
from spm_sync.core.history import StatusChange

DATACENTER_HISTORY_BATCH = 250


@dataclass
class _Batch:
    """What one batch's worker hands back to the caller's thread."""

    changes: list[RawStatusChange] = field(default_factory=list)
    unusable: int = 0
    truncated: list[str] = field(default_factory=list)


@dataclass
class HistoryReader:
    """Reads status histories for one connection; see the module docstring."""

    client: JiraClient
    connection: str
    categories: StatusCategories
    ids_by_key: MutableMapping[str, int]
    workers: int
    warnings: list[str]
    former_keys: dict[str, list[str]] = field(default_factory=dict)

    def read(self, flavour: Flavour, keys: Sequence[str]) -> Iterator[StatusChange]:
        if flavour == "cloud":
            tasks = self._cloud_tasks(keys)
        else:
            tasks = (
                partial(self._datacenter_batch, batch)
                for batch in chunked(list(keys), DATACENTER_HISTORY_BATCH)
            )
        unusable = 0
        truncated: list[str] = []
        for batch in completed_in_parallel(
            tasks, workers=self.workers, name=f"jira-history-{self.connection}"
        ):
            unusable += batch.unusable
            truncated += batch.truncated
            yield from self._categorised(batch.changes)
        if unusable:
            self.warnings.append(
                f"{unusable} status change(s) in Jira's changelogs had no time or no new "
                "status; skipped"
            )
        if truncated:
            self.warnings.append(
                f"Jira returned only part of the changelog of {len(truncated)} issue(s) "
                f"({', '.join(truncated[:5])}); their flow history may miss early changes"
            )

    def _categorised(self, changes: list[RawStatusChange]) -> Iterator[StatusChange]:
        """On the caller's thread: at most one `GET status` per run, for statuses no pulled
        issue is in."""
        if not self.categories.complete and any(
            not self.categories.knows(change.to_id) for change in changes
        ):
            self.categories.learn_all(self.client.statuses())
        for change in changes:
            yield status_change(self.connection, change, self.categories)

    # -- Cloud ---------------------------------------------------------------------------------
    def _cloud_tasks(self, keys: Sequence[str]) -> Iterator[Callable[[], _Batch]]:
        unknown = [key for key in keys if key not in self.ids_by_key]
        for lookup in chunked(unknown, BULKFETCH_LIMIT):
            self._learn_ids(lookup)
        # Keys still without an id were deleted or hidden since: nothing to read.
        asked = [(str(self.ids_by_key[key]), key) for key in keys if key in self.ids_by_key]
        for batch in chunked(asked, CHANGELOG_ISSUES_LIMIT):
            yield partial(self._cloud_batch, dict(batch))

    def _learn_ids(self, keys: list[str]) -> None:
        result = self.client.bulkfetch(keys, [STATUS_FIELD])
        if result.errors:
            self.warnings.append(
                f"Jira could not return {len(result.errors)} issue(s) whose history was asked; "
                "their history is read next run"
            )
        asked = {key.upper(): key for key in keys}
        for issue in result.issues:
            key = asked.get(str(issue.get("key", "")).upper())
            if key is not None and str(issue.get("id", "")).isdigit():
                self.ids_by_key[key] = int(issue["id"])
                self.categories.learn((issue.get("fields") or {}).get("status"))

    def _cloud_batch(self, key_by_id: Mapping[str, str]) -> _Batch:
        batch = _Batch()
        for page in self.client.changelog_pages(list(key_by_id), [STATUS_FIELD]):
            for issue_id, histories in page:
                key = key_by_id.get(issue_id)
                if key is None:
                    continue  # not asked for: nothing to file it under
                changes, unusable = raw_status_changes(key, histories)
                batch.changes += changes
                batch.unusable += unusable
        return batch

    # -- Data Center ---------------------------------------------------------------------------
    def _datacenter_batch(self, keys: list[str]) -> _Batch:
        """One search for the batch; asks again only for keys a capped page left out, and stops
        when a page brings no issue not seen before."""
        batch = _Batch()
        asked_by_id = {self.ids_by_key[key]: key for key in keys if key in self.ids_by_key}
        remaining = list(keys)
        budget = PageBudget("Jira", "history search pages", self.client.max_pages)
        while remaining:
            budget.spend()
            page = self.client.search_page(_history_search(remaining))
            issues = [issue for issue in page.get("issues") or () if isinstance(issue, dict)]
            answered: set[str] = set()
            for issue in issues:
                key = self._file_under(issue, remaining, asked_by_id)
                if key is not None and key not in answered:
                    answered.add(key)
                    self._collect(issue, key, batch)
            total = page.get("total")
            if not isinstance(total, int) or total <= len(issues):
                break
            if not answered:
                raise PagingLoopError(
                    "Jira answered a history search with no issue it had not already returned "
                    "while claiming more; stopping instead of reading pages without end"
                )
            remaining = [key for key in remaining if key not in answered]
        return batch

    @staticmethod
    def _file_under(
        issue: Mapping[str, Any], asked: Sequence[str], asked_by_id: Mapping[int, str]
    ) -> str | None:
        """The key the issue was asked by: its own, or (moved since the pull) the one its id
        was pulled under."""
        key = str(issue.get("key") or "")
        if key in asked:
            return key
        issue_id = str(issue.get("id") or "")
        return asked_by_id.get(int(issue_id)) if issue_id.isdigit() else None

    def _collect(self, issue: Mapping[str, Any], key: str, batch: _Batch) -> None:
        self.categories.learn((issue.get("fields") or {}).get(STATUS_FIELD))
        changelog = issue.get("changelog")
        histories = changelog.get("histories") if isinstance(changelog, dict) else None
        if not isinstance(histories, list):
            return
        total = changelog.get("total") if isinstance(changelog, dict) else None
        if isinstance(total, int) and total > len(histories):
            batch.truncated.append(key)
        changes, unusable = raw_status_changes(key, histories)
        batch.changes += changes
        batch.unusable += unusable
        if moved_from := former_keys(histories):
            self.former_keys[key] = moved_from


def _history_search(keys: Sequence[str]) -> dict[str, Any]:
    quoted = ", ".join(f'"{key}"' for key in keys)
    return {
        "jql": f"key in ({quoted}) {KEY_ORDER}",
        "startAt": 0,
        "maxResults": len(keys),
        "fields": [STATUS_FIELD],
        "expand": ["changelog"],
        "validateQuery": "warn",
    }
