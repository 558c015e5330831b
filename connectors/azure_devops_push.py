"""Writing one work item's planned values back: a guarded JSON Patch and what its answer means.

The pure pieces (patch documents, value checks, classification) are in
`connectors.azure_devops_writes`; this module sends them and handles the two cases that need a
second request: a refused `suppressNotifications` and a failed revision test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connectors.azure_devops_client import AzureDevOpsClient, PatchAnswer
from connectors.azure_devops_fields import FieldMap
from connectors.azure_devops_writes import (
    PatchOutcome,
    WriteValueError,
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
from spm_sync.domain import PlannedWrite, WriteResult, WriteStatus

RANK_MOVES_UNSUPPORTED = (
    "Azure DevOps orders backlogs by a numeric field: plan RANK writes with new values for "
    "the moved items instead of rank moves"
)


class WorkItemWriter:
    """Writes planned values item by item; safe to use from several threads at once.

    Updates ask for `suppressNotifications=true` (a nightly job should not mail every assignee
    about a score). Where the service refuses it for lack of permission, the update is sent
    again without it, and so are all later ones of the run, with one warning.
    """

    def __init__(
        self,
        client: AzureDevOpsClient,
        fields: FieldMap,
        warn: Callable[[str], None],
        connection: str,
    ) -> None:
        self.client = client
        self.fields = fields
        self._warn = warn
        self._connection = connection
        self._suppress_notifications = True
        self._lock = threading.Lock()

    def write_item(self, key: str, writes: Sequence[PlannedWrite]) -> list[WriteResult]:
        """One PATCH with every changed value of item `key`; one result per planned write."""
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
        if not valid:
            return results
        operations = [field_operation(name, value) for name, value in planned.items()]
        try:
            answer, outcome = self._send(item_id, patch_document(revision, operations))
            if outcome is PatchOutcome.CONFLICT:
                return results + self._conflict_or_own_write(item_id, valid, planned, answer)
        except ConnectorError as error:
            return results + _failed(valid, str(error))
        if outcome is PatchOutcome.WRITTEN:
            revision_now = new_revision(answer)
            written = [
                WriteResult(w, WriteStatus.WRITTEN, new_revision=revision_now) for w in valid
            ]
            return results + written
        return results + _failed(valid, answer.message or f"HTTP {answer.status}")

    def _send(
        self, item_id: int, document: list[dict[str, Any]]
    ) -> tuple[PatchAnswer, PatchOutcome]:
        suppress = self._suppress_notifications
        answer = self.client.update_work_item(item_id, document, suppress_notifications=suppress)
        outcome = classify(answer)
        if outcome is PatchOutcome.NOTIFICATIONS_REFUSED and suppress:
            with self._lock:
                first = self._suppress_notifications
                self._suppress_notifications = False
            if first:
                self._warn(
                    f"{self._connection}: updates without notifications were refused "
                    f"({answer.message or answer.status}); writing with notifications this run"
                )
            answer = self.client.update_work_item(item_id, document, suppress_notifications=False)
            outcome = classify(answer)
        if outcome is PatchOutcome.NOTIFICATIONS_REFUSED:
            outcome = PatchOutcome.FAILED
        return answer, outcome

    def _conflict_or_own_write(
        self,
        item_id: int,
        writes: list[PlannedWrite],
        planned: Mapping[str, object],
        answer: PatchAnswer,
    ) -> list[WriteResult]:
        """A failed revision test can be our own earlier success: the policy retries a PATCH
        whose connection dropped, and the first attempt may have been applied. The item then
        already holds every planned value, and the write is reported as written, not twice
        and not as a conflict."""
        try:
            current = self.client.work_item(item_id, list(planned))
        except ConnectorError as error:
            message = f"{answer.message} (re-reading the item failed: {error})"
            return [WriteResult(w, WriteStatus.CONFLICT, error=message) for w in writes]
        if holds_values(current, planned):
            revision = str(current.get("rev"))
            return [WriteResult(w, WriteStatus.WRITTEN, new_revision=revision) for w in writes]
        message = (
            f"work item {item_id} changed since it was read (planned from revision "
            f"{writes[0].expected_revision}, now {current.get('rev')}): {answer.message}"
        )
        return [WriteResult(w, WriteStatus.CONFLICT, error=message) for w in writes]


def _failed(writes: Sequence[PlannedWrite], error: str) -> list[WriteResult]:
    return [WriteResult(w, WriteStatus.FAILED, error=error) for w in writes]
