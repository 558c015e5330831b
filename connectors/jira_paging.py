"""Paging state for Jira searches: small objects that say what to ask next and refuse to loop.

Cloud's `search/jql` pages by opaque token. Data Center's `/rest/api/2/search` pages by
`startAt`, which skips an issue whenever an earlier one is deleted or leaves the scope mid-scan
(every later issue shifts one place back). So on Data Center we page by key instead (keyset
paging): results are ordered `ORDER BY key ASC` (by project, then issue number, so each
project's issues are contiguous), and each next page asks, from startAt 0, only for what we have
not seen yet:

    (<scope>) AND ((project = "PAY" AND key > "PAY-500") OR project not in ("ABC", "PAY"))

Key comparisons are per project in JQL ("ABC-1000" > "ABC-999"), hence the project split. Why
not `id > N ORDER BY id`: JQL's `id` is an alias of the issue key field, so it sorts by key,
not by the numeric id, and the id keyset would not follow the order of the pages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.paging_guard import PagingLoopError, TokenTrail

__all__ = ["KEY_ORDER", "ChangelogPaginator", "KeyPaginator", "PagingLoopError", "TokenPaginator"]

KEY_ORDER = "ORDER BY key ASC"
"""Immutable and unique: an issue edited mid-scan keeps its place, so pages never shift."""
_KEY = re.compile(r"^([A-Z][A-Z0-9_]*)-(\d+)$")


@dataclass
class TokenPaginator:
    """Cloud `search/jql`: follow `nextPageToken` until `isLast` or no token.

    A token that comes back twice would make us fetch the same pages forever, so it raises; so
    does a page of issues all seen before (a server handing out fresh tokens to the same
    issues). `advance` returns the page's issues not seen before: a token snapshot never
    repeats an issue, so a repeat is the server's mistake and is not pulled twice. Ids are kept
    as numbers (about 40 bytes each: 8 MB for 200,000 issues).
    """

    _token: str | None = None
    _trail: TokenTrail = field(
        default_factory=lambda: TokenTrail(
            "Jira returned the same nextPageToken twice; stopping instead of looping"
        )
    )
    _done: bool = False
    _pages: int = 0
    _issues_seen: set[int | str] = field(default_factory=set)

    def has_more(self) -> bool:
        return not self._done

    def next_token(self) -> str | None:
        return self._token

    def advance(self, page: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._pages += 1
        issues = list(page.get("issues") or [])
        fresh = [issue for issue in issues if self._first_sight(issue)]
        if issues and not fresh:
            raise PagingLoopError(
                f"Jira answered page {self._pages} of a search with only issues it had already "
                "returned; stopping instead of reading pages without end"
            )
        token = page.get("nextPageToken")
        if page.get("isLast") is True or not token:
            self._done = True
            return fresh
        self._token = self._trail.follow(token)
        return fresh

    def _first_sight(self, issue: Mapping[str, Any]) -> bool:
        raw = issue.get("id") or issue.get("key")
        if raw is None:
            return True  # nothing to recognise it by; the mapping reports it
        text = str(raw)
        identity: int | str = int(text) if text.isdigit() else text
        if identity in self._issues_seen:
            return False
        self._issues_seen.add(identity)
        return True


@dataclass
class ChangelogPaginator:
    """Cloud `changelog/bulkfetch`: follow `nextPageToken` until there is none.

    Refuses a token seen before, and a page that says there is more but brings no changelog
    not seen before (empty, or repeating what came already): either way the server would have
    us read without end. `advance` returns the page's `issueChangeLogs` with only the
    changelogs not seen before. Seen changelogs are kept as (issue id, changelog id) pairs for
    one batch of at most 1,000 issues only.
    """

    _token: str | None = None
    _trail: TokenTrail = field(
        default_factory=lambda: TokenTrail(
            "Jira returned the same changelog nextPageToken twice; stopping instead of looping"
        )
    )
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _done: bool = False
    _pages: int = 0

    def has_more(self) -> bool:
        return not self._done

    def next_token(self) -> str | None:
        return self._token

    def advance(self, page: Mapping[str, Any]) -> list[tuple[str, list[Any]]]:
        self._pages += 1
        fresh: list[tuple[str, list[Any]]] = []
        for log in page.get("issueChangeLogs") or ():
            if not isinstance(log, Mapping):
                continue
            issue_id = str(log.get("issueId") or "")
            new = [h for h in log.get("changeHistories") or () if self._first_sight(issue_id, h)]
            if new:
                fresh.append((issue_id, new))
        token = page.get("nextPageToken")
        if not token:
            self._done = True
            return fresh
        if not fresh:
            raise PagingLoopError(
                f"Jira answered page {self._pages} of a changelog read with no changelog it had "
                "not already returned, and a token for more; stopping instead of reading pages "
                "without end"
            )
        self._token = self._trail.follow(token)
        return fresh

    def _first_sight(self, issue_id: str, history: Any) -> bool:
        changelog_id = history.get("id") if isinstance(history, Mapping) else None
        if changelog_id is None:
            return True  # nothing to recognise it by; the mapping decides what it is worth
        identity = (issue_id, str(changelog_id))
        if identity in self._seen:
            return False
        self._seen.add(identity)
        return True


@dataclass
class KeyPaginator:
    """Data Center keyset paging by (project, issue number); see the module docstring.

    `anchors` are the current project's keys of the last page, newest first: when the newest
    was deleted since, Jira rejects `key > "<deleted key>"` (400, the key does not exist), and
    the caller steps back to the next anchor with `drop_anchor`.
    """

    finished_projects: list[str] = field(default_factory=list)
    current_project: str | None = None
    anchors: list[str] = field(default_factory=list)
    _done: bool = False

    def has_more(self) -> bool:
        return not self._done

    def restriction(self) -> str | None:
        """The JQL clause for the next page; None on the first page."""
        if self.current_project is None:
            if not self.finished_projects:
                return None
            return f"project not in ({_quoted(self.finished_projects)})"
        project = self.current_project
        excluded = _quoted([*self.finished_projects, project])
        if not self.anchors:
            return f"project not in ({excluded})"
        return (
            f'((project = "{project}" AND key > "{self.anchors[0]}") '
            f"OR project not in ({excluded}))"
        )

    def drop_anchor(self) -> bool:
        """Step back to the previous key of the current project; False when none is left."""
        if len(self.anchors) <= 1:
            return False
        self.anchors.pop(0)
        return True

    def _check_restriction_kept(self, runs: Sequence[tuple[str, list[int]]]) -> None:
        """A key the restriction excludes means the server ignores it: the next page would be
        this one again, and so on without end."""
        key = _restriction_broken(self, runs)
        if key is not None:
            raise PagingLoopError(
                f"Jira answered {key} again when asked for {self.restriction()}: it ignores the "
                "keyset restriction; stopping instead of reading the same pages without end"
            )

    def advance(self, page: Mapping[str, Any]) -> None:
        issues = page.get("issues") or []
        if not issues:
            self._done = True
            return
        runs = _project_runs([str(issue.get("key", "")) for issue in issues])
        self._check_restriction_kept(runs)
        seen_here = [project for project, _ in runs]
        if len(set(seen_here)) != len(seen_here):
            raise PagingLoopError(
                "Jira did not return the issues grouped by project in key order; stopping "
                "instead of skipping or repeating issues"
            )
        last_project, last_numbers = runs[-1]
        # Issues come grouped by project, so every project before the page's last is complete.
        for project in (self.current_project, *seen_here[:-1]):
            if project is not None and project not in (last_project, *self.finished_projects):
                self.finished_projects.append(project)
        if last_project != self.current_project:
            self.anchors = []
        self.current_project = last_project
        new_anchors = [f"{last_project}-{number}" for number in reversed(last_numbers)]
        self.anchors = (new_anchors + self.anchors)[:50]
        total = page.get("total")
        max_results = page.get("maxResults")
        if isinstance(total, int):
            self._done = len(issues) >= total
        elif isinstance(max_results, int):
            self._done = len(issues) < max_results


def _restriction_broken(
    paginator: KeyPaginator, runs: Sequence[tuple[str, list[int]]]
) -> str | None:
    """The first key of a page that the page's restriction excludes, if any."""
    for project, numbers in runs:
        if project in paginator.finished_projects:
            return f"{project}-{numbers[0]}"
    first_project, first_numbers = runs[0]
    anchor = paginator.anchors[0] if paginator.anchors else None
    if (
        anchor is not None
        and first_project == paginator.current_project
        and first_numbers[0] <= int(anchor.rsplit("-", 1)[1])
    ):
        return f"{first_project}-{first_numbers[0]}"
    return None


def _project_runs(keys: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Contiguous runs of one project with their issue numbers, checked to ascend."""
    runs: list[tuple[str, list[int]]] = []
    for key in keys:
        match = _KEY.match(key)
        if match is None:
            raise PagingLoopError(f"Jira returned an issue without a valid key ({key!r})")
        project, number = match.group(1), int(match.group(2))
        if runs and runs[-1][0] == project:
            if number <= runs[-1][1][-1]:
                raise PagingLoopError(
                    f"Jira did not return {project} issues in ascending key order "
                    f"({project}-{number} after {project}-{runs[-1][1][-1]})"
                )
            runs[-1][1].append(number)
        else:
            runs.append((project, [number]))
    return runs


def _quoted(projects: Sequence[str]) -> str:
    return ", ".join(f'"{project}"' for project in projects)
