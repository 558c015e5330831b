"""The Jira connector (Cloud and Data Center): pull, deletion scan and write-back.

Request budget, per run (one connector instance per run):
- `GET serverInfo` once (flavour when `deployment: auto`, and the server clock; see below),
- `GET field` once (names → ids),
- Cloud full sync: ids only through `search/jql` (5,000 a page), then the needed fields with
  parallel `issue/bulkfetch` calls of 100; items stream out as batches complete,
- Cloud incremental: one `search/jql` with the needed fields, 100 a page (a handful of
  changes costs one call; a no-change run costs 3 calls in all),
- Data Center: `/rest/api/2/search` pages of up to 1,000 with the needed fields, keyset-paged
  by key (see `connectors.jira_paging`),
- status history (`pull_history`): see `connectors.jira_history_reader` (Cloud ceil(n/1000)
  for the n issues pulled in the run, Data Center ceil(n/250), at most one `GET status`;
  nothing when the run pulled nothing),
- items by key (`fetch_items`, ancestors outside the scope): Cloud `issue/bulkfetch` per 100
  keys, Data Center one `search` per 100 keys (`key in (...)`, lenient validation so a
  deleted key does not fail the others),
- saved queries (`run_queries`, see `connectors.jira_queries`): one request per distinct count
  (Cloud `search/approximate-count`, Data Center `search` with maxResults 0), the search's
  pages for a query whose items are wanted,
- push: one freshness read per 100 (Cloud) / 200 (DC) planned items, one edit per changed
  issue, one rank call per 50 moved issues.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from jira import JIRA

from connectors.base import ConnectorError, QueryAnswer, QueryRefused, TrackerQuery
from connectors.batches import chunked, completed_in_parallel
from connectors.http import RetryPolicy, mount_policy
from connectors.jira_check import jira_checks
from connectors.jira_client import BULKFETCH_LIMIT, Flavour, JiraClient, browse_url
from connectors.jira_fields import FieldMap, resolve_fields
from connectors.jira_history import StatusCategories
from connectors.jira_history_reader import HistoryReader
from connectors.jira_mapping import MalformedIssue, normalize, requested_fields
from connectors.jira_paging import KEY_ORDER
from connectors.jira_push import JiraWriter
from connectors.jira_queries import JiraQueries, stored_field
from connectors.settings import BearerAuth, JiraSettings, connection_secret
from connectors.transfer import PullDeadline, TransferBounds
from spm_sync.core.checks import CheckLine, CheckRequest
from spm_sync.core.domain import ConnectionPlan, RankKind, WorkItem, WriteResult
from spm_sync.core.history import StatusChange
from spm_sync.core.requests import RequestStats

ISSUE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[0-9]+")
"""An issue key as Jira forms it; anything else is never put into a query."""
CLOUD_ID_PAGE = 5000
"""`search/jql` "returns max 5000 issues" per page when only id/key are requested."""
CLOUD_FIELDS_PAGE = 100
DATACENTER_PAGE = 1000
"""Data Center caps a page at `jira.search.views.default.max`; asking more is harmless."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _RunFacts:
    flavour: Flavour
    fields: FieldMap
    server_offset: timedelta
    """Jira's clock minus ours, from serverInfo.serverTime."""


class JiraConnector:
    """One Jira connection, implementing `connectors.base.Connector`."""

    rank_kind: RankKind = "lexorank"

    def __init__(
        self,
        settings: JiraSettings,
        *,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.stats = RequestStats()
        self.warnings: list[str] = []
        self._clock = clock
        self._base_url = settings.url.rstrip("/")
        jira = JIRA(
            self._base_url,
            options={"verify": settings.verify_tls},
            max_retries=0,  # the PolicyAdapter below is the only retry layer
            get_server_info=False,
            timeout=settings.timeout_seconds,
            **_credentials(settings, environ),
        )
        self._pull_deadline = PullDeadline(settings.limits.pull_deadline_seconds)
        mount_policy(
            jira._session,
            self.stats,
            RetryPolicy.from_settings(settings.retry),
            sleep=sleep,
            pool_maxsize=max(16, settings.workers * 2),
            bounds=TransferBounds.from_settings(settings.limits),
            pull_deadline=self._pull_deadline,
        )
        self.client = JiraClient(jira, self._base_url, max_pages=settings.limits.max_pages)
        self._browse_url = self._base_url
        """Where people open issues: the site, also when the API is reached through the
        gateway (`https://api.atlassian.com/ex/jira/<cloudId>` has no /browse pages)."""
        self._facts: _RunFacts | None = None
        self._field_catalog: list[dict[str, Any]] = []
        self._writer: JiraWriter | None = None
        # What the pull saw that the history read needs: each issue's id (Cloud asks changelogs
        # by id and answers by id) and each status's category.
        self._ids_by_key: dict[str, int] = {}
        self._categories = StatusCategories()
        self.former_keys: dict[str, list[str]] = {}
        """Data Center: keys an issue had before moves, from its changelog (current key first)."""

    def __repr__(self) -> str:
        return (
            f"JiraConnector(name={self.name!r}, url={self._base_url!r}, "
            f"deployment={self.settings.deployment!r})"
        )

    # -- protocol ------------------------------------------------------------------------------
    def pull(self, since: datetime | None) -> Iterator[WorkItem]:
        """Items in scope changed at or after `since` (None: all), streamed, within the pull's
        deadline (`limits.pull_deadline_seconds`, shared with `scan_keys`)."""
        with self._pull_deadline.window():
            yield from self._pull(since)

    def _pull(self, since: datetime | None) -> Iterator[WorkItem]:
        facts = self._prepare()
        if facts.flavour == "datacenter":
            yield from self._pull_datacenter(facts, since)
        elif since is None:
            yield from self._pull_cloud_full(facts)
        else:
            jql = f"({self.settings.jql}) AND {self._updated_since(since, facts)} {KEY_ORDER}"
            pages = self.client.search_jql_pages(
                jql, requested_fields(facts.fields), CLOUD_FIELDS_PAGE
            )
            for page in pages:
                yield from self._normalized(page, facts.fields)

    def scan_keys(self) -> set[str]:
        """Every key in scope, from an id/key-only scan (to find deletions)."""
        with self._pull_deadline.window():
            return self._scan_keys()

    def _scan_keys(self) -> set[str]:
        facts = self._prepare()
        keys: set[str] = set()
        if facts.flavour == "cloud":
            jql = f"({self.settings.jql}) {KEY_ORDER}"
            pages = self.client.search_jql_pages(jql, ["key"], CLOUD_ID_PAGE)
        else:
            pages = self.client.keyset_pages(self._scope(None), ["key"], DATACENTER_PAGE)
        for page in pages:
            keys.update(_key_of(issue) for issue in page)
        keys.discard("")
        return keys

    def fetch_items(self, keys: Sequence[str]) -> Iterator[WorkItem]:
        """The issues with these keys, whatever the scope says; keys Jira does not return
        (deleted, not visible, not an issue key) are left out."""
        wanted = [key for key in dict.fromkeys(keys) if ISSUE_KEY.fullmatch(key)]
        with self._pull_deadline.window():
            if not wanted:
                return
            facts = self._prepare()
            fields = requested_fields(facts.fields)
            for batch in chunked(wanted, BULKFETCH_LIMIT):
                if facts.flavour == "cloud":
                    raw = self.client.bulkfetch(batch, fields).issues
                else:
                    listed = ", ".join(f'"{key}"' for key in batch)
                    body = {
                        "jql": f"key in ({listed}) {KEY_ORDER}",
                        "startAt": 0,
                        "maxResults": len(batch),
                        "fields": fields,
                        "validateQuery": "warn",
                    }
                    raw = self.client.search_page(body).get("issues") or []
                yield from self._normalized(raw, facts.fields)

    def pull_history(
        self, changed_keys: Sequence[str], cursor: str | None
    ) -> Iterator[StatusChange]:
        """Status changes of `changed_keys` (the keys `pull` yielded in this run), within the
        pull's deadline; no request at all when there are none. Jira keeps a changelog per
        issue, so the changed keys say what to read; `cursor` only carries the status
        categories earlier runs learned (see `history_cursor`)."""
        self._categories.recall(cursor)
        keys = list(dict.fromkeys(key for key in changed_keys if key))
        if not keys:
            return
        with self._pull_deadline.window():
            facts = self._prepare()
            reader = HistoryReader(
                self.client,
                self.name,
                self._categories,
                self._ids_by_key,
                workers=self.settings.workers,
                warnings=self.warnings,
                former_keys=self.former_keys,
            )
            yield from reader.read(facts.flavour, keys)

    @property
    def history_cursor(self) -> str | None:
        """The status categories learned so far (status id → category, compact JSON): the
        next run reads the histories of the keys it pulls, and with these it need not read the
        site's status list again for a change into a status nobody is in now (a nightly run
        that pulled a handful of issues would otherwise pay that request every time)."""
        return self._categories.remembered()

    def push(self, plan: ConnectionPlan) -> Iterator[WriteResult]:
        """Executes the plan (see `connectors.jira_push`); one result per planned write."""
        if plan.is_empty:
            return
        facts = self._prepare()
        if self._writer is None:
            self._writer = JiraWriter(
                self.client, facts.fields, workers=self.settings.workers, warnings=self.warnings
            )
        yield from self._writer.push(plan)

    def run_queries(
        self, queries: Sequence[TrackerQuery]
    ) -> dict[str, QueryAnswer | QueryRefused]:
        """Saved JQL queries, each refused alone when Jira refuses it (`connectors.jira_queries`);
        the run's serverInfo and field list are shared with the pull."""
        if not queries:
            return {}
        try:
            facts = self._prepare()
        except ConnectorError as error:
            return {query.ident: QueryRefused(str(error)) for query in queries}
        runner = JiraQueries(
            self.client, facts.flavour, self._field_catalog, workers=self.settings.workers
        )
        return runner.run(queries)

    def stored_field(self, name: str) -> str | None:
        """`connectors.base.StoredFieldsConnector`, from the run's field list (None before the
        run has read it: no request to find out)."""
        if self._facts is None:
            return None
        return stored_field(self._field_catalog, self._facts.fields.inputs, name)

    def close(self) -> None:
        self.client.jira.close()

    def check(self, request: CheckRequest) -> Iterator[CheckLine]:
        """`spm-sync check --online` for this connection (`connectors.jira_check`)."""
        return jira_checks(self, request)

    # -- run facts -----------------------------------------------------------------------------
    def _prepare(self) -> _RunFacts:
        """serverInfo and field resolution, once per run."""
        if self._facts is None:
            # Taken before the call: the offset comes out a little large, which only widens
            # incremental windows (the safe direction).
            asked_at = self._clock()
            info = self.client.server_info()
            self._browse_url = browse_url(self._base_url, info)
            flavour = self.flavour_of(info)
            self.client.use_flavour(flavour)
            self._field_catalog = self.client.fields()
            fields, field_warnings = resolve_fields(
                self._field_catalog, self.settings, datacenter=flavour == "datacenter"
            )
            self.warnings.extend(field_warnings)
            self._facts = _RunFacts(flavour, fields, _server_offset(info, asked_at))
        return self._facts

    def flavour_of(self, info: Mapping[str, Any]) -> Flavour:
        """The flavour to talk to a server whose serverInfo is `info`: the configured
        `deployment`, or the reported one under `auto`; a disagreement becomes a warning."""
        reported = info.get("deploymentType")
        known: dict[str, Flavour] = {
            "Cloud": "cloud",
            "Server": "datacenter",
            "DataCenter": "datacenter",
        }
        detected = known.get(str(reported))
        configured = self.settings.deployment
        if configured != "auto":
            if detected is not None and detected != configured:
                self.warnings.append(
                    f"deployment is configured as {configured} but Jira reports "
                    f"deploymentType {reported!r}; using {configured} as configured"
                )
            return configured
        if detected is None:
            self.warnings.append(
                f"serverInfo has no known deploymentType ({reported!r}); assuming Data Center "
                "(set `deployment` to say otherwise)"
            )
            return "datacenter"
        return detected

    # -- incremental window --------------------------------------------------------------------
    def _updated_since(self, since: datetime, facts: _RunFacts) -> str:
        """`updated >= "-N m"`: a window relative to Jira's own clock.

        Absolute JQL dates are read in the searching user's time zone at minute precision; we
        would have to fetch that zone from /myself (a fourth request on a no-change run) and
        still get DST edges wrong. Jira resolves a relative date against its clock, so no time
        zone is involved. We measure the minutes against Jira's clock (serverInfo.serverTime
        corrects our skew), round up, and add one minute for the time between building the
        query and Jira running it, so the window only ever grows. The caller's overlap covers
        the rest; an item seen twice is harmless, a missed one is not.
        """
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        jira_now = self._clock() + facts.server_offset
        minutes = max(0, math.ceil((jira_now - since).total_seconds() / 60)) + 1
        return f'updated >= "-{minutes}m"'

    def _scope(self, since: datetime | None) -> Callable[[], str]:
        """Data Center page scope; the relative window is recomputed for every page."""

        def scope() -> str:
            if since is None:
                return f"({self.settings.jql})"
            assert self._facts is not None
            return f"({self.settings.jql}) AND {self._updated_since(since, self._facts)}"

        return scope

    # -- pull ----------------------------------------------------------------------------------
    def _pull_datacenter(self, facts: _RunFacts, since: datetime | None) -> Iterator[WorkItem]:
        fields = requested_fields(facts.fields)
        for page in self.client.keyset_pages(self._scope(since), fields, DATACENTER_PAGE):
            yield from self._normalized(page, facts.fields)

    def _pull_cloud_full(self, facts: _RunFacts) -> Iterator[WorkItem]:
        """Ids first, then bulkfetch in parallel; `completed_in_parallel` keeps the batches in
        flight bounded, so the raw JSON held at once stays bounded whatever the scope's size."""
        fields = requested_fields(facts.fields)
        unfetched: dict[str, str] = {}
        tasks = (
            partial(self._fetch_batch, batch, fields, facts, unfetched)
            for batch in self._id_batches()
        )
        batches = completed_in_parallel(
            tasks, workers=self.settings.workers, name=f"jira-{self.name}"
        )
        for items in batches:
            yield from items
        if unfetched:
            sample = ", ".join(f"{i} ({why})" for i, why in list(unfetched.items())[:5])
            raise ConnectorError(
                f"Jira could not return {len(unfetched)} issue(s) even when asked again: "
                f"{sample}; the pull is incomplete, so the sync must not be marked complete"
            )

    def _id_batches(self) -> Iterator[list[str]]:
        """The scope's issue ids, page by page of an id-only search, in bulkfetch-sized lists."""
        jql = f"({self.settings.jql}) {KEY_ORDER}"
        for page in self.client.search_jql_pages(jql, ["id"], CLOUD_ID_PAGE):
            ids = [str(issue["id"]) for issue in page if issue.get("id") is not None]
            yield from chunked(ids, BULKFETCH_LIMIT)

    def _fetch_batch(
        self, ids: list[str], fields: list[str], facts: _RunFacts, unfetched: dict[str, str]
    ) -> list[WorkItem]:
        result = self.client.bulkfetch(ids, fields)
        issues = result.issues
        if result.errors:
            # "retriable error or payload constraint": once more, for just those issues.
            again = self.client.bulkfetch([str(e.get("id")) for e in result.errors], fields)
            issues = [*issues, *again.issues]
            for error in again.errors:
                unfetched[str(error.get("id"))] = str(error.get("errorMessage") or "no reason")
        return list(self._normalized(issues, facts.fields))

    def _normalized(
        self, raw_issues: Iterable[Mapping[str, Any]], fields: FieldMap
    ) -> Iterator[WorkItem]:
        for raw in raw_issues:
            try:
                item = normalize(
                    raw,
                    fields,
                    connection=self.name,
                    base_url=self._browse_url,
                    levels=self.settings.levels,
                )
            except MalformedIssue as problem:
                label = raw.get("key") or f"issue id {raw.get('id', '?')}"
                self.warnings.append(f"{label}: skipped, {problem}")
                continue
            if item.id.isdigit():
                self._ids_by_key[item.key] = int(item.id)
            self._categories.learn(raw["fields"].get("status"))
            yield item


def _key_of(issue: Mapping[str, Any]) -> str:
    key = issue.get("key") or (issue.get("fields") or {}).get("key")
    return str(key) if key else ""


def _server_offset(info: Mapping[str, Any], asked_at: datetime) -> timedelta:
    server_time = info.get("serverTime")
    if not isinstance(server_time, str):
        return timedelta(0)
    try:
        jira_now = datetime.fromisoformat(server_time)
    except ValueError:
        return timedelta(0)
    if jira_now.tzinfo is None:
        return timedelta(0)
    return jira_now - asked_at


def _credentials(settings: JiraSettings, environ: Mapping[str, str]) -> dict[str, Any]:
    """Library auth arguments from the environment; messages name variables, never values."""

    def secret(env_name: str) -> str:
        return connection_secret(settings.name, env_name, environ)

    auth = settings.auth
    if isinstance(auth, BearerAuth):
        return {"token_auth": secret(auth.token_env)}
    return {"basic_auth": (secret(auth.user_env), secret(auth.token_env))}
