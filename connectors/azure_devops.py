"""The Azure DevOps connector: pulls a project's work items, scans its ids, writes plans back.

Requests of a pull (Work Item Tracking 7.1, specs/ado-wit-7.1.json):
- `OPTIONS {org}/_apis` once when the discovery cache is cold (the library needs the resource
  locations; see `connectors.azure_devops_client`);
- one WIQL query per 20,000 ids (`connectors.wiql_builder`: keyset paging by id with `$top`,
  id windows when the service refuses). The first query also resolves the configured field
  names through the `columns` of its answer, so a run where nothing changed costs at most two
  requests: discovery and one WIQL query;
- `POST …/workitemsbatch` per 200 ids, `settings.workers` at a time, items streamed as each
  batch completes;
- `GET …/workitemtypes/{type}/states` only for a type with a state outside the system states
  of Microsoft's processes, whose categories are fixed (`SYSTEM_STATE_CATEGORIES`), once per
  type and run. So a steady nightly run costs one WIQL query and the batch of the items in the
  overlap window, plus discovery when its on-disk cache is cold.

Items by key (`fetch_items`, ancestors outside the scope): `workitemsbatch` per 200 ids, no
query; ids the service omits (deleted, not visible) are left out.

Saved queries (`run_queries`, `connectors.azure_devops_queries`): one WIQL query per distinct
count, plus `workitemsbatch` per 200 matches when the items are wanted.

Status history (`pull_history`): the project's reporting revisions feed
(`connectors.azure_devops_revisions`), read from the previous run's continuation token, so a
run with no new revision costs one request and the first run one per batch of revisions (plus,
as in a pull, one states read per type with a custom state); the status changes are found by
`connectors.azure_devops_history`. No discovery: the feed is read on our session directly.
Measured on the sandbox, 20,000 items: 61,888 revisions in 62 requests, then 1 a night.

Relations: the batch reads with `$expand=relations` by default. The service does not combine
`$expand` with `fields`, so this returns every field of the item, but it is the one documented
way to get both the parent (`System.LinkTypes.Hierarchy-Reverse`) and the related links
(`System.LinkTypes.Related`) that carry OKR alignment, in the same single request per 200 items.
`read_relations=False` asks only for the needed fields plus `System.Parent` (smaller answers,
the same request count; no related links, and `System.Parent` is not in the spec examples).
Getting related links another way (a WIQL link query, or per-item reads) would cost requests
to save bytes; a nightly sync is bound by requests (throttling counts them), not bytes.
Measured on the sandbox, 20,000 items: 103 requests both ways (1 OPTIONS, 2 WIQL, 100 batches;
no type-state reads, its states are all system states), 13.8 MB of answers with relations
against 8.3 MB without; real items carry more fields (HTML descriptions), so there the gap is
wider.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from connectors.azure_devops_check import ado_checks
from connectors.azure_devops_client import DEFAULT_CACHE_DIR, AzureDevOpsClient, ServiceRefused
from connectors.azure_devops_fields import (
    PARENT_FIELD,
    FieldMap,
    FieldRef,
    configured_fields,
    resolve_from_catalog,
    resolve_from_columns,
    select_names,
)
from connectors.azure_devops_history import (
    MalformedRevision,
    Revision,
    StateChanges,
    read_revision,
)
from connectors.azure_devops_mapping import (
    MalformedWorkItem,
    MappingContext,
    category_of,
    normalize,
    state_category,
)
from connectors.azure_devops_push import (
    RANK_MOVES_UNSUPPORTED,
    WorkItemWriter,
    pushed_in_batches,
)
from connectors.azure_devops_queries import WorkItemQueries, stored_field
from connectors.azure_devops_revisions import RevisionFeed, RevisionReader
from connectors.base import ConnectorError, QueryAnswer, QueryRefused, TrackerQuery
from connectors.batches import chunked, completed_in_parallel
from connectors.http import RetryPolicy
from connectors.settings import AzureDevOpsSettings, connection_secret
from connectors.transfer import PullDeadline, TransferBounds
from connectors.wiql_builder import (
    WIQL_RESULT_CAP,
    IdPager,
    IdWindow,
    WiqlScope,
    build_scope_query,
)
from spm_sync.core.checks import CheckLine, CheckRequest
from spm_sync.core.domain import (
    ConnectionPlan,
    RankKind,
    StatusCategory,
    WorkItem,
    WriteResult,
    WriteStatus,
)
from spm_sync.core.history import StatusChange
from spm_sync.core.requests import RequestStats

log = logging.getLogger(__name__)

BATCH_SIZE = 200
"""Most ids `workitemsbatch` takes per call ("Maximum 200")."""

ID_ONLY = ("System.Id",)


class AzureDevOpsConnector:
    """One Azure DevOps project, as configured in `AzureDevOpsSettings`.

    The personal access token is read from the environment variable the settings name and is
    kept only inside the HTTP session's auth; it never appears in repr, logs or messages.
    `cache_dir` holds the library's resource-location cache (None: in memory only, one OPTIONS
    call per run); the default is per user, see `azure_devops_client.default_cache_dir`.
    `sleep`/`clock` are handed to the retry policy so tests need not wait.
    """

    rank_kind: RankKind = "numeric"

    def __init__(
        self,
        settings: AzureDevOpsSettings,
        *,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        cache_dir: Path | None = DEFAULT_CACHE_DIR,
        read_relations: bool = True,
        wiql_page_size: int = WIQL_RESULT_CAP,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.stats = RequestStats()
        self.warnings: list[str] = []
        self._pull_deadline = PullDeadline(settings.limits.pull_deadline_seconds)
        self._client = AzureDevOpsClient(
            settings.url,
            settings.project,
            connection_secret(settings.name, settings.auth.token_env, environ),
            stats=self.stats,
            retry=RetryPolicy.from_settings(settings.retry),
            timeout=settings.timeout_seconds,
            verify_tls=settings.verify_tls,
            pool_size=max(4, settings.workers * 2),
            cache_dir=cache_dir,
            sleep=sleep,
            clock=clock,
            bounds=TransferBounds.from_settings(settings.limits),
            pull_deadline=self._pull_deadline,
        )
        self._read_relations = read_relations
        self._page_size = wiql_page_size
        self._scope = WiqlScope.from_settings(settings.scope)
        self._configured = configured_fields(settings)
        self._select = select_names(self._configured)
        self._columns: list[FieldRef] | None = None
        self._fields: FieldMap | None = None
        self._state_tables: dict[str, dict[str, StatusCategory]] = {}
        self._states_read: set[str] = set()
        self._context = MappingContext(
            connection=settings.name,
            organization_url=self._client.organization_url,
            project=settings.project,
            levels=settings.levels,
            state_categories=self._state_tables,
        )
        self._work_item_writer: WorkItemWriter | None = None
        self._history_cursor: str | None = None
        self._revision_reader = RevisionReader(
            self._client, settings.project, self._scope.work_item_types, self._warn
        )
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"AzureDevOpsConnector(name={self.name!r}, url={self.settings.url!r}, "
            f"project={self.settings.project!r})"
        )

    # -- pull --------------------------------------------------------------------------------
    def pull(self, since: datetime | None) -> Iterator[WorkItem]:
        """Items of the scope changed at or after `since` (None: all), streamed per batch,
        within the pull's deadline (`limits.pull_deadline_seconds`, shared with `scan_keys`)."""
        with self._pull_deadline.window():
            yield from self._pull(since)

    def _pull(self, since: datetime | None) -> Iterator[WorkItem]:
        tasks = (
            partial(self._read_batch, batch, fields) for batch, fields in self._id_batches(since)
        )
        batches = completed_in_parallel(
            tasks, workers=self.settings.workers, name=f"ado-{self.name}"
        )
        for raw_items in batches:
            yield from self._normalized(raw_items, self.field_map())

    def _id_batches(self, since: datetime | None) -> Iterator[tuple[list[int], FieldMap]]:
        """The ids in scope, page by page of WIQL, in `workitemsbatch`-sized lists, each id once,
        with the fields to read (resolved through the first page's columns)."""
        pager = IdPager(
            lambda window: self._query(window, since, resolving=True),
            self._page_size,
            self.settings.limits.max_pages,
        )
        requested: set[int] = set()
        for page in pager.pages():
            fields = self.field_map()
            new_ids = [item_id for item_id in page if item_id not in requested]
            requested.update(new_ids)
            for batch in chunked(new_ids, BATCH_SIZE):
                yield batch, fields

    def scan_keys(self) -> set[str]:
        """Keys of every item in scope, from id-only WIQL queries (deletions, moves out)."""
        pager = IdPager(
            lambda window: self._query(window, None, resolving=False),
            self._page_size,
            self.settings.limits.max_pages,
        )
        with self._pull_deadline.window():
            return {str(item_id) for page in pager.pages() for item_id in page}

    def fetch_items(self, keys: Sequence[str]) -> Iterator[WorkItem]:
        """The work items with these ids, whatever the scope says, by `workitemsbatch` alone;
        keys that are not ids, and ids the service omits, are left out."""
        ids = sorted({int(key) for key in keys if key.isascii() and key.isdigit()})
        with self._pull_deadline.window():
            fields = self.field_map()
            for batch in chunked(ids, BATCH_SIZE):
                yield from self._normalized(self._read_batch(batch, fields), fields)

    def field_map(self) -> FieldMap:
        """The configured fields by reference name, resolved once per run.

        From the columns of the first scope query when they answer for every name, else from
        `GET _apis/wit/fields`, which also explains an unknown name (`UnknownFieldError`).
        """
        with self._lock:
            if self._fields is None:
                from_columns = resolve_from_columns(
                    self._configured, self._select, self._columns or []
                )
                self._fields = from_columns or resolve_from_catalog(
                    self._configured, self._client.fields()
                )
            return self._fields

    def _query(self, window: IdWindow, since: datetime | None, *, resolving: bool) -> list[int]:
        """One scope query. `resolving` SELECTs the configured fields so that the answer's
        columns resolve their names; otherwise ids only (`scan_keys`)."""
        select = self._select if resolving else ID_ONLY
        wiql = build_scope_query(self._scope, select=select, since=since, window=window)
        try:
            answer = self._client.query_ids(
                wiql, top=self._page_size, time_precision=since is not None
            )
        except ServiceRefused as refused:
            if resolving:
                self.field_map()  # an unknown configured name explains itself better
            raise ConnectorError(
                f"Azure DevOps rejected the scope query: {refused.message}"
            ) from refused
        if resolving and self._columns is None:
            self._columns = answer.columns
        return answer.ids

    def _read_batch(self, ids: list[int], fields: FieldMap) -> list[dict[str, Any]]:
        if self._read_relations:
            return self._client.work_items_batch(ids, fields=None, expand="relations")
        wanted = [*fields.reference_names(), PARENT_FIELD]
        return self._client.work_items_batch(ids, fields=wanted, expand=None)

    def _normalized(self, batch: list[dict[str, Any]], fields: FieldMap) -> Iterator[WorkItem]:
        raw_items = sorted(batch, key=lambda raw: raw.get("id") or 0)
        self._read_state_categories(self._types_with_unknown_states(raw_items))
        for raw in raw_items:
            try:
                item = normalize(raw, fields, self._context)
            except MalformedWorkItem as problem:
                self._warn(f"skipped a malformed work item: {problem}")
                continue
            self._check_state(item)
            yield item

    def _types_with_unknown_states(self, raw_items: Iterable[Mapping[str, Any]]) -> set[str]:
        """Types with a state neither the system table nor a table read before knows."""
        types: set[str] = set()
        for raw in raw_items:
            values = raw.get("fields") or {}
            work_item_type, state = values.get("System.WorkItemType"), values.get("System.State")
            if not (isinstance(work_item_type, str) and isinstance(state, str)):
                continue  # `normalize` skips the item with a warning
            if state_category(work_item_type, state, self._state_tables) is None:
                types.add(work_item_type)
        return types

    def _read_state_categories(self, types: set[str]) -> None:
        """`GET …/workitemtypes/{type}/states` once per type and run; the system table stands
        if it fails."""
        for work_item_type in sorted(types - self._states_read):
            self._states_read.add(work_item_type)
            try:
                states = self._client.type_states(work_item_type)
            except ConnectorError as error:
                self._warn(
                    f"could not read the states of {work_item_type!r} ({error}); "
                    "using the system state categories"
                )
                continue
            table = {name: cat for name, raw in states if (cat := category_of(raw)) is not None}
            if table:
                self._state_tables[work_item_type] = table

    def _check_state(self, item: WorkItem) -> None:
        if state_category(item.type, item.status, self._state_tables) is None:
            self._warn(
                f"state {item.status!r} of {item.type!r} has no known category; counted as To Do"
            )

    # -- history -----------------------------------------------------------------------------
    def pull_history(
        self, changed_keys: Sequence[str], cursor: str | None
    ) -> Iterator[StatusChange]:
        """Status changes of the project's revisions made after `cursor` (None: all of them),
        within the pull's deadline.

        `changed_keys` is not used: the feed is project-wide and continuing it costs one request
        per batch of new revisions whatever changed, where reading the items one by one would
        cost one per item. It is filtered to the scope's work item types on the server; the
        pipeline keeps the changes of the items it stores (other area paths are dropped there).
        """
        with self._pull_deadline.window():
            yield from self._history(cursor)

    @property
    def history_cursor(self) -> str | None:
        """The continuation token of the last batch of the last complete `pull_history`."""
        return self._history_cursor

    def _history(self, cursor: str | None) -> Iterator[StatusChange]:
        feed = RevisionFeed(self._revision_reader, self.settings.limits.max_pages)
        changes = StateChanges(self.name, self._state_category)
        for batch in feed.batches(cursor):
            revisions = list(self._revisions(batch.values))
            self._read_state_categories(
                {r.work_item_type for r in revisions if self._state_category_of(r) is None}
            )
            for revision in revisions:
                change = changes.change_of(revision)
                if change is not None:
                    yield change
        self._history_cursor = feed.token

    def _revisions(self, values: list[Any]) -> Iterator[Revision]:
        for raw in values:
            try:
                yield read_revision(raw)
            except MalformedRevision as problem:
                self._warn(f"skipped a malformed work item revision: {problem}")

    def _state_category(self, work_item_type: str, state: str) -> StatusCategory | None:
        return state_category(work_item_type, state, self._state_tables)

    def _state_category_of(self, revision: Revision) -> StatusCategory | None:
        return self._state_category(revision.work_item_type, revision.state)

    # -- saved queries -----------------------------------------------------------------------
    def run_queries(
        self, queries: Sequence[TrackerQuery]
    ) -> dict[str, QueryAnswer | QueryRefused]:
        """Saved WIQL queries, each refused alone when the service refuses it
        (`connectors.azure_devops_queries`); state categories are learned as in the pull."""
        if not queries:
            return {}
        runner = WorkItemQueries(
            self._client,
            self._state_category,
            lambda raw_items: self._read_state_categories(
                self._types_with_unknown_states(raw_items)
            ),
            workers=self.settings.workers,
            known_fields=self._columns or (),
        )
        return runner.run(queries)

    def stored_field(self, name: str) -> str | None:
        """`connectors.base.StoredFieldsConnector`, from the fields the run resolved (None
        before the pull resolved them: no request to find out)."""
        if self._fields is None:
            return None
        return stored_field(self._columns or (), self._fields, name)

    # -- push --------------------------------------------------------------------------------
    def push(self, plan: ConnectionPlan) -> Iterator[WriteResult]:
        """Guarded updates, 200 work items a `$batch` request, `settings.workers` requests at a
        time; results as they come."""
        if plan.connection != self.name:
            raise ConnectorError(f"got the plan of connection {plan.connection!r}")
        for move in plan.moves:
            for write in move.writes:
                yield WriteResult(write, WriteStatus.FAILED, error=RANK_MOVES_UNSUPPORTED)
        if not plan.writes:
            return
        yield from pushed_in_batches(
            self._writer(), plan.writes, workers=self.settings.workers, name=f"ado-push-{self.name}"
        )

    def _writer(self) -> WorkItemWriter:
        """One writer per run, so a refused `suppressNotifications` is asked (and warned) once."""
        fields = self.field_map()
        with self._lock:
            if self._work_item_writer is None:
                self._work_item_writer = WorkItemWriter(self._client, fields, self._warn, self.name)
            return self._work_item_writer

    # -- housekeeping ------------------------------------------------------------------------
    def _warn(self, message: str) -> None:
        with self._lock:
            if message in self._warned:
                return
            self._warned.add(message)
            self.warnings.append(message)
        log.warning("%s", message)

    def check(self, request: CheckRequest) -> Iterator[CheckLine]:
        """`spm-sync check --online` for this connection (`connectors.azure_devops_check`)."""
        return ado_checks(self.settings, self._client, request)

    def close(self) -> None:
        self._client.close()
