"""Writing planned values back: guarded JSON Patch documents, many items to a `$batch` request,
and what each answer means.

The pure pieces (patch documents, sub-requests, value checks, classification) are in
`connectors.azure_devops_writes`; this module sends them and handles the cases that need
another request: a refused `suppressNotifications`, a failed revision test (re-read to tell a
human's edit from our own earlier write), and a server without `$batch` (per-item PATCH).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from connectors.azure_devops_client import AzureDevOpsClient, PatchAnswer
from connectors.azure_devops_fields import FieldMap
from connectors.azure_devops_writes import (
    BATCH_LIMIT,
    BatchAnswerError,
    PatchOutcome,
    WriteValueError,
    batch_answers,
    batch_request,
    classify,
    expected_revision,
    field_operation,
    holds_values,
    new_revision,
    patch_document,
    patch_value,
    target_field,
)
from connectors.base import ConnectorError
from connectors.batches import completed_in_parallel
from spm_sync.core.domain import PlannedWrite, WriteResult, WriteStatus

RANK_MOVES_UNSUPPORTED = (
    "Azure DevOps orders backlogs by a numeric field: plan RANK writes with new values for "
    "the moved items instead of rank moves"
)
_NO_BATCH_ROUTE = frozenset({404, 405})
"""What a server without the `$batch` route answers (an old Azure DevOps Server)."""


@dataclass(frozen=True, slots=True)
class _Update:
    """One item's guarded update, ready to send: the writes it carries and their values."""

    key: str
    item_id: int
    writes: list[PlannedWrite]
    planned: dict[str, object]
    document: list[dict[str, Any]]


class WorkItemWriter:
    """Writes planned values, up to `batch_size` items a request; safe to use from several
    threads at once.

    Updates ask for `suppressNotifications=true` (a nightly job should not mail every assignee
    about a score). Where the service refuses it for lack of permission, the update is sent
    again without it, and so are all later ones of the run, with one warning. A server that has
    no `$batch` route gets one PATCH per item for the rest of the run, also with one warning.
    """

    def __init__(
        self,
        client: AzureDevOpsClient,
        fields: FieldMap,
        warn: Callable[[str], None],
        connection: str,
        *,
        batch_size: int = BATCH_LIMIT,
    ) -> None:
        if not 1 <= batch_size <= BATCH_LIMIT:
            raise ValueError(f"batch_size must be 1 to {BATCH_LIMIT}, not {batch_size}")
        self.client = client
        self.fields = fields
        self.batch_size = batch_size
        self._warn = warn
        self._connection = connection
        self._suppress_notifications = True
        self._batch_route = True
        self._lock = threading.Lock()

    # -- entry points ------------------------------------------------------------------------
    @property
    def uses_batches(self) -> bool:
        """False once the server turned out to have no `$batch` route (for the rest of the run)."""
        return self._batch_route

    def write_items(
        self, items: Sequence[tuple[str, Sequence[PlannedWrite]]], *, workers: int = 1
    ) -> list[WriteResult]:
        """Every changed value of up to `batch_size` items: one `$batch` request (a lone item
        gets its plain PATCH, the same one request); one result per planned write. Without
        `$batch`, the items get one PATCH each, `workers` at a time."""
        if len(items) > self.batch_size:
            raise ValueError(f"{len(items)} items exceed the batch size {self.batch_size}")
        results: list[WriteResult] = []
        updates: list[_Update] = []
        for key, writes in items:
            results += self._prepare(key, writes, updates)
        if len(updates) > 1 and self._batch_route:
            return results + self._send_batch(updates, workers)
        return results + self._send_each(updates, workers)

    def _send_each(self, updates: Sequence[_Update], workers: int) -> list[WriteResult]:
        if len(updates) < 2 or workers < 2:
            return [result for update in updates for result in self._send_one(update)]
        tasks = (partial(self._send_one, update) for update in updates)
        sent = completed_in_parallel(tasks, workers=workers, name=f"ado-patch-{self._connection}")
        return [result for results in sent for result in results]

    # -- preparing ---------------------------------------------------------------------------
    def _prepare(
        self, key: str, writes: Sequence[PlannedWrite], updates: list[_Update]
    ) -> list[WriteResult]:
        """The results known without asking (unchanged, invalid); appends the update to send."""
        results = [WriteResult(w, WriteStatus.UNCHANGED) for w in writes if w.old == w.new]
        changed = [w for w in writes if w.old != w.new]
        if not changed:
            return results
        try:
            item_id = int(key)
            revision = expected_revision(changed)
        except (ValueError, WriteValueError) as error:
            return results + _failed(changed, f"cannot write work item {key!r}: {error}")
        planned: dict[str, object] = {}
        valid: list[PlannedWrite] = []
        for write in changed:
            try:
                reference_name = target_field(write.field, self.fields)
                planned[reference_name] = patch_value(write.field, write.new)
            except WriteValueError as error:
                results.append(WriteResult(write, WriteStatus.FAILED, error=str(error)))
                continue
            valid.append(write)
        if valid:
            operations = [field_operation(name, value) for name, value in planned.items()]
            document = patch_document(revision, operations)
            updates.append(_Update(key, item_id, valid, planned, document))
        return results

    # -- one item ----------------------------------------------------------------------------
    def _send_one(self, update: _Update) -> list[WriteResult]:
        suppress = self._suppress_notifications
        try:
            answer = self._patch(update, suppress)
            outcome = classify(answer)
            if outcome is PatchOutcome.NOTIFICATIONS_REFUSED and suppress:
                self._stop_suppressing(answer)
                answer = self._patch(update, False)
                outcome = classify(answer)
            if outcome is PatchOutcome.CONFLICT:
                return self._conflicts_or_own_writes([(update, answer)])
        except ConnectorError as error:
            return _failed(update.writes, str(error))
        return _judged(update, answer, outcome)

    def _patch(self, update: _Update, suppress: bool) -> PatchAnswer:
        return self.client.update_work_item(
            update.item_id, update.document, suppress_notifications=suppress
        )

    # -- several items -----------------------------------------------------------------------
    def _send_batch(self, updates: list[_Update], workers: int) -> list[WriteResult]:
        suppress = self._suppress_notifications
        sub_requests = [
            batch_request(u.item_id, u.document, suppress_notifications=suppress) for u in updates
        ]
        try:
            outer = self.client.update_work_items(sub_requests)
        except ConnectorError as error:
            return [result for u in updates for result in _failed(u.writes, str(error))]
        if outer.status in _NO_BATCH_ROUTE:
            self._no_batch_route(outer)
            return self._send_each(updates, workers)
        try:
            if not outer.ok:
                raise BatchAnswerError(outer.message or f"HTTP {outer.status}")
            answers = batch_answers(outer.body, len(updates))
        except BatchAnswerError as error:
            message = f"the batch update of {len(updates)} work items failed: {error}"
            return [result for u in updates for result in _failed(u.writes, message)]
        results: list[WriteResult] = []
        conflicts: list[tuple[_Update, PatchAnswer]] = []
        refused: list[_Update] = []
        for update, answer in zip(updates, answers, strict=True):
            outcome = classify(answer)
            if outcome is PatchOutcome.CONFLICT:
                conflicts.append((update, answer))
            elif outcome is PatchOutcome.NOTIFICATIONS_REFUSED and suppress:
                refused.append(update)
                self._stop_suppressing(answer)
            else:
                results += _judged(update, answer, outcome)
        if conflicts:
            results += self._conflicts_or_own_writes(conflicts)
        if refused:  # again, without the flag: a batch of one is a plain PATCH
            again = self._send_batch(refused, workers) if len(refused) > 1 else []
            results += again or self._send_one(refused[0])
        return results

    # -- answers that need a second request ---------------------------------------------------
    def _stop_suppressing(self, answer: PatchAnswer) -> None:
        """Switch `suppressNotifications` off for the run (warned once)."""
        with self._lock:
            first = self._suppress_notifications
            self._suppress_notifications = False
        if first:
            self._warn(
                f"{self._connection}: updates without notifications were refused "
                f"({answer.message or answer.status}); writing with notifications this run"
            )

    def _no_batch_route(self, answer: PatchAnswer) -> None:
        with self._lock:
            first = self._batch_route
            self._batch_route = False
        if first:
            self._warn(
                f"{self._connection}: the server has no work item batch update "
                f"({answer.message or answer.status}); writing one item a request this run"
            )

    def _conflicts_or_own_writes(
        self, conflicts: Sequence[tuple[_Update, PatchAnswer]]
    ) -> list[WriteResult]:
        """A failed revision test can be our own earlier success: the policy retries a request
        whose connection dropped, and the first attempt may have been applied. Such an item
        already holds every planned value and is reported as written, not twice and not as a
        conflict. The items are re-read together (one request per 200)."""
        ids = [update.item_id for update, _ in conflicts]
        names = sorted({name for update, _ in conflicts for name in update.planned})
        try:
            found = self.client.work_items_batch(ids, fields=names, expand=None)
        except ConnectorError as error:
            return [
                result
                for update, answer in conflicts
                for result in _conflict(
                    update, f"{answer.message} (re-reading the item failed: {error})"
                )
            ]
        current = {item.get("id"): item for item in found}
        results: list[WriteResult] = []
        for update, answer in conflicts:
            item = current.get(update.item_id)
            if item is not None and holds_values(item, update.planned):
                revision = str(item.get("rev"))
                results += [
                    WriteResult(w, WriteStatus.WRITTEN, new_revision=revision)
                    for w in update.writes
                ]
                continue
            now = "it can no longer be read" if item is None else f"now {item.get('rev')}"
            message = (
                f"work item {update.item_id} changed since it was read (planned from revision "
                f"{update.writes[0].expected_revision}, {now}): {answer.message}"
            )
            results += _conflict(update, message)
        return results


def pushed_in_batches(
    writer: WorkItemWriter, writes: Sequence[PlannedWrite], *, workers: int, name: str
) -> Iterator[WriteResult]:
    """The writes grouped by item, `writer.batch_size` items a request, `workers` requests at
    a time; results as each request is answered.

    The first batch goes alone: its answer says whether the server has `$batch` at all, and
    without it the rest is sent one item a task, so per-item PATCHes still run in parallel.
    """
    by_item: dict[str, list[PlannedWrite]] = {}
    for write in writes:
        by_item.setdefault(write.item_key, []).append(write)
    items = list(by_item.items())
    if not items:
        return
    first = writer.batch_size if writer.uses_batches else 1
    yield from writer.write_items(items[:first], workers=workers)
    size = writer.batch_size if writer.uses_batches else 1
    rest = items[first:]
    tasks = (
        partial(writer.write_items, rest[start : start + size])
        for start in range(0, len(rest), size)
    )
    for results in completed_in_parallel(tasks, workers=workers, name=name):
        yield from results


def _judged(update: _Update, answer: PatchAnswer, outcome: PatchOutcome) -> list[WriteResult]:
    if outcome is PatchOutcome.WRITTEN:
        revision_now = new_revision(answer)
        return [
            WriteResult(w, WriteStatus.WRITTEN, new_revision=revision_now) for w in update.writes
        ]
    return _failed(update.writes, answer.message or f"HTTP {answer.status}")


def _conflict(update: _Update, message: str) -> list[WriteResult]:
    return [WriteResult(w, WriteStatus.CONFLICT, error=message) for w in update.writes]


def _failed(writes: Sequence[PlannedWrite], error: str) -> list[WriteResult]:
    return [WriteResult(w, WriteStatus.FAILED, error=error) for w in writes]
