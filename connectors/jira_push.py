"""Write-back to Jira: one freshness check, per-issue edits, then rank moves.

Order of work for one `ConnectionPlan`:
1. Read `updated` (and the current values of the written fields) of every planned item once:
   bulkfetch on Cloud, a `key in (...)` search on Data Center. An item whose `updated` is not
   the write's `expected_revision` was edited by someone since we planned: all its writes are
   `conflict` and it is left out of rank moves. Checking once, up front, also keeps our own
   score write from looking like a human edit to the rank step.
2. One `PUT /issue/{key}` per issue with every changed field; a value already present is
   `unchanged` and costs no request. Labels go through `update.labels` add/remove verbs
   computed from the planned old/new sets, never a `set`, so a label added meanwhile survives.
3. Rank moves in the planner's order, ≤ 50 issues per `PUT /rest/agile/1.0/issue/rank`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from connectors.base import ConnectorError
from connectors.batches import chunked
from connectors.jira_client import BULKFETCH_LIMIT, RANK_LIMIT, JiraClient, error_text
from connectors.jira_fields import FieldMap
from connectors.jira_mapping import MalformedIssue, parse_jira_datetime
from connectors.values import NotANumber, to_number
from spm_sync.core.domain import (
    ConnectionPlan,
    PlannedWrite,
    RankMove,
    WriteField,
    WriteResult,
    WriteStatus,
    WriteValue,
)

DC_KEYS_PER_SEARCH = 200
_ISSUE_KEY = re.compile(r"'([A-Z][A-Z0-9_]*-\d+)'")


@dataclass(frozen=True, slots=True)
class CurrentIssue:
    """What the freshness check read: the `updated` string and the written fields' values."""

    key: str
    updated: str
    fields: Mapping[str, Any]


@dataclass
class EditPlan:
    """One issue's edit: the request body and what each planned write becomes."""

    body: dict[str, Any] = field(default_factory=dict)
    changing: list[PlannedWrite] = field(default_factory=list)
    results: list[WriteResult] = field(default_factory=list)


def same_revision(current: str, expected: str) -> bool:
    """Compare `updated` stamps as instants when both parse (formats differ between APIs)."""
    if current == expected:
        return True
    try:
        return parse_jira_datetime(current, "updated") == parse_jira_datetime(expected, "updated")
    except MalformedIssue:
        return False


def plan_edit(writes: Iterable[PlannedWrite], current: CurrentIssue, fields: FieldMap) -> EditPlan:
    """The minimal edit for one issue (pure): only values that differ from Jira's current
    ones are sent; the rest are `unchanged` without a request."""
    plan = EditPlan()
    label_ops: list[dict[str, str]] = []
    for write in writes:
        if write.field in (WriteField.WSJF_SCORE, WriteField.COST_OF_DELAY):
            target = fields.score if write.field is WriteField.WSJF_SCORE else fields.cost_of_delay
            if target is None:
                plan.results.append(
                    _failed(write, f"no Jira field is configured for {write.field}")
                )
            elif _same_number(current.fields.get(target.id), write.new):
                plan.results.append(WriteResult(write, WriteStatus.UNCHANGED))
            else:
                plan.body.setdefault("fields", {})[target.id] = write.new
                plan.changing.append(write)
        elif write.field is WriteField.PRIORITY:
            now = (current.fields.get("priority") or {}).get("name")
            if now == write.new:
                plan.results.append(WriteResult(write, WriteStatus.UNCHANGED))
            else:
                value = None if write.new is None else {"name": str(write.new)}
                plan.body.setdefault("fields", {})["priority"] = value
                plan.changing.append(write)
        elif write.field is WriteField.LABELS:
            ops = _label_ops(write, current.fields.get("labels") or [])
            if ops:
                label_ops += ops
                plan.changing.append(write)
            else:
                plan.results.append(WriteResult(write, WriteStatus.UNCHANGED))
        else:
            plan.results.append(_failed(write, "Jira ranks move through rank moves, not edits"))
    if label_ops:
        plan.body.setdefault("update", {})["labels"] = label_ops
    return plan


def _label_ops(write: PlannedWrite, current: Iterable[str]) -> list[dict[str, str]]:
    old, new, now = _labels(write.old), _labels(write.new), set(current)
    adds = sorted((new - old) - now)
    removes = sorted((old - new) & now)
    return [{"add": label} for label in adds] + [{"remove": label} for label in removes]


def _labels(value: WriteValue) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    if isinstance(value, int | float):
        raise TypeError(f"a label set cannot be a number: {value!r}")
    return {str(label) for label in value}


def _same_number(current: Any, new: object) -> bool:
    try:
        now = to_number(current)
    except NotANumber:
        return False
    if now is None or new is None:
        return now is None and new is None
    if not isinstance(new, int | float):
        return False
    return abs(now - float(new)) <= 1e-9 * max(1.0, abs(now))


def _failed(write: PlannedWrite, error: str) -> WriteResult:
    return WriteResult(write, WriteStatus.FAILED, error)


class JiraWriter:
    """Executes write plans for one connector over one run (remembers notifyUsers refusal)."""

    def __init__(
        self, client: JiraClient, fields: FieldMap, *, workers: int, warnings: list[str]
    ) -> None:
        self.client = client
        self.fields = fields
        self.workers = workers
        self.warnings = warnings
        self._quiet_edits = True
        self._lock = threading.Lock()

    def push(self, plan: ConnectionPlan) -> Iterator[WriteResult]:
        rank_writes = [write for move in plan.moves for write in move.writes]
        all_writes = [*plan.writes, *rank_writes]
        keys = list(dict.fromkeys(write.item_key for write in all_writes))
        current, unreadable = self.current_state(keys, plan.writes)
        blocked: dict[str, tuple[WriteStatus, str]] = {}
        for key in keys:
            if key in unreadable:
                blocked[key] = (WriteStatus.FAILED, unreadable[key])
            elif key not in current:
                blocked[key] = (WriteStatus.FAILED, f"{key} does not exist or is not visible")
        for write in all_writes:
            now = current.get(write.item_key)
            if now is not None and not same_revision(now.updated, write.expected_revision):
                blocked[write.item_key] = (
                    WriteStatus.CONFLICT,
                    f"changed in Jira since planned (updated {now.updated}, planned from "
                    f"{write.expected_revision})",
                )
        for write in all_writes:
            if write.item_key in blocked:
                status, error = blocked[write.item_key]
                yield WriteResult(write, status, error)
        yield from self._edit_all(plan.writes, current, blocked)
        for move in plan.moves:
            yield from self._rank_move(move, blocked)

    # -- freshness -----------------------------------------------------------------------------
    def current_state(
        self, keys: Sequence[str], writes: Iterable[PlannedWrite]
    ) -> tuple[dict[str, CurrentIssue], dict[str, str]]:
        """The current `updated` and written values of `keys`, and keys that could not be read."""
        wanted = {"updated"}
        for write in writes:
            if write.field is WriteField.WSJF_SCORE and self.fields.score:
                wanted.add(self.fields.score.id)
            elif write.field is WriteField.COST_OF_DELAY and self.fields.cost_of_delay:
                wanted.add(self.fields.cost_of_delay.id)
            elif write.field is WriteField.PRIORITY:
                wanted.add("priority")
            elif write.field is WriteField.LABELS:
                wanted.add("labels")
        fields = sorted(wanted)
        if not keys:
            return {}, {}
        if self.client.flavour == "cloud":
            chunks = list(chunked(keys, BULKFETCH_LIMIT))
            read = self._read_cloud
        else:
            chunks = list(chunked(keys, DC_KEYS_PER_SEARCH))
            read = self._read_datacenter
        current: dict[str, CurrentIssue] = {}
        unreadable: dict[str, str] = {}
        with ThreadPoolExecutor(min(self.workers, len(chunks))) as pool:
            for found, failed in pool.map(lambda chunk: read(chunk, fields), chunks):
                current.update(found)
                unreadable.update(failed)
        return current, unreadable

    def _read_cloud(
        self, keys: list[str], fields: list[str]
    ) -> tuple[dict[str, CurrentIssue], dict[str, str]]:
        result = self.client.bulkfetch(keys, fields)
        found = _current(result.issues)
        if not result.errors:
            return found, {}
        # issueErrors are "retriable": ask once more for just those (they name ids, not keys).
        again = self.client.bulkfetch([str(e.get("id")) for e in result.errors], fields)
        found.update(_current(again.issues))
        if not again.errors:
            return found, {}
        reason = "; ".join(str(e.get("errorMessage") or "no reason") for e in again.errors)
        unreadable = {
            key: f"Jira could not return the current state: {reason}"
            for key in keys
            if key not in found
        }
        return found, unreadable

    def _read_datacenter(
        self, keys: list[str], fields: list[str]
    ) -> tuple[dict[str, CurrentIssue], dict[str, str]]:
        """`key in (...)`: Data Center rejects the whole JQL (400) when one key does not exist,
        naming it in quotes; those keys are dropped and the search asked again."""
        remaining = list(keys)
        while remaining:
            jql = "key in ({})".format(", ".join(f'"{key}"' for key in remaining))
            response = self.client.send(
                "POST",
                "/rest/api/2/search",
                {"jql": jql, "startAt": 0, "maxResults": len(remaining), "fields": fields},
            )
            if response.status_code == 400:
                missing = set(_ISSUE_KEY.findall(error_text(response))) & set(remaining)
                if missing:
                    remaining = [key for key in remaining if key not in missing]
                    continue
            page = self.client.parse(response, "read the current state of planned issues")
            return _current(page.get("issues") or []), {}
        return {}, {}

    # -- edits ---------------------------------------------------------------------------------
    def _edit_all(
        self,
        writes: Sequence[PlannedWrite],
        current: Mapping[str, CurrentIssue],
        blocked: Mapping[str, object],
    ) -> Iterator[WriteResult]:
        by_issue: dict[str, list[PlannedWrite]] = {}
        for write in writes:
            if write.item_key not in blocked:
                by_issue.setdefault(write.item_key, []).append(write)
        edits = {
            key: plan_edit(group, current[key], self.fields) for key, group in by_issue.items()
        }
        for edit in edits.values():
            yield from edit.results
        needed = [(key, edit) for key, edit in edits.items() if edit.changing]
        if not needed:
            return
        with ThreadPoolExecutor(min(self.workers, len(needed))) as pool:
            for results in pool.map(lambda item: self._edit(*item), needed):
                yield from results

    def _edit(self, key: str, edit: EditPlan) -> list[WriteResult]:
        try:
            response = self._send_edit(key, edit.body)
        except ConnectorError as error:
            return [_failed(write, str(error)) for write in edit.changing]
        if response.ok:
            return [WriteResult(write, WriteStatus.WRITTEN) for write in edit.changing]
        text = f"HTTP {response.status_code}: {error_text(response)}"
        status = WriteStatus.CONFLICT if response.status_code == 409 else WriteStatus.FAILED
        return [WriteResult(write, status, text) for write in edit.changing]

    def _send_edit(self, key: str, body: Mapping[str, Any]) -> Any:
        """Edit with `notifyUsers=false`, so a nightly job does not mail every watcher.

        Disabling notifications needs Administer Jira or project admin (spec, `editIssue`):
        Cloud then ignores the flag, Data Center may refuse the edit (400 or 403, "To discard
        the user notification either admin or project admin permissions are required."). We
        retry that edit once without the flag and stop sending it for the rest of the run.
        """
        quiet = self._quiet_edits
        response = self.client.edit_issue(key, body, notify_users=not quiet)
        if quiet and response.status_code in (400, 403) and _about_notifications(response):
            with self._lock:
                if self._quiet_edits:
                    self._quiet_edits = False
                    self.warnings.append(
                        "Jira refused notifyUsers=false (needs admin permission); edits are "
                        "sent with notifications for the rest of this run"
                    )
            response = self.client.edit_issue(key, body, notify_users=True)
        return response

    # -- rank ----------------------------------------------------------------------------------
    def _rank_move(self, move: RankMove, blocked: Mapping[str, object]) -> Iterator[WriteResult]:
        keys = [key for key in move.item_keys if key not in blocked]
        outcomes: dict[str, tuple[WriteStatus, str | None]] = {}
        after, before = move.after_key, move.before_key
        if after is None and before is None:
            outcomes = {key: (WriteStatus.FAILED, "rank move without an anchor") for key in keys}
            keys = []
        for chunk in chunked(keys, RANK_LIMIT):
            body: dict[str, Any] = {"issues": chunk}
            if after is not None:
                body["rankAfterIssue"] = after
            else:
                body["rankBeforeIssue"] = before
            if self.fields.rank is not None and self.fields.rank.custom_id is not None:
                body["rankCustomFieldId"] = self.fields.rank.custom_id
            outcomes.update(self._rank_chunk(chunk, body))
            placed = [key for key in chunk if outcomes[key][0] is WriteStatus.WRITTEN]
            if after is not None and placed:
                # The next chunk goes after the last issue this one placed, keeping the order.
                after = placed[-1]
        for write in move.writes:
            if write.item_key in blocked:
                continue
            status, error = outcomes.get(
                write.item_key, (WriteStatus.FAILED, "the item is not among the move's issues")
            )
            yield WriteResult(write, status, error)

    def _rank_chunk(
        self, chunk: list[str], body: Mapping[str, Any]
    ) -> dict[str, tuple[WriteStatus, str | None]]:
        """204: all ranked. 207: `entries[]` per issue with `status` and `errors`."""
        try:
            response = self.client.rank_issues(body)
        except ConnectorError as error:
            return {key: (WriteStatus.FAILED, str(error)) for key in chunk}
        if response.status_code == 207:
            return _partial_rank(chunk, response)
        if response.ok:
            return {key: (WriteStatus.WRITTEN, None) for key in chunk}
        text = f"HTTP {response.status_code}: {error_text(response)}"
        return {key: (WriteStatus.FAILED, text) for key in chunk}


def _partial_rank(chunk: list[str], response: Any) -> dict[str, tuple[WriteStatus, str | None]]:
    try:
        entries = response.json().get("entries") or []
    except (ValueError, AttributeError):
        entries = []
    by_key = {entry.get("issueKey"): entry for entry in entries if isinstance(entry, dict)}
    outcomes: dict[str, tuple[WriteStatus, str | None]] = {}
    for key in chunk:
        entry = by_key.get(key)
        if entry is None:
            outcomes[key] = (WriteStatus.FAILED, "Jira's 207 answer does not mention this issue")
        elif 200 <= int(entry.get("status") or 0) < 300:
            outcomes[key] = (WriteStatus.WRITTEN, None)
        else:
            errors = "; ".join(str(e) for e in entry.get("errors") or ()) or "no reason given"
            outcomes[key] = (WriteStatus.FAILED, f"HTTP {entry.get('status')}: {errors}")
    return outcomes


def _about_notifications(response: Any) -> bool:
    return "notif" in error_text(response).lower()


def _current(issues: Iterable[Mapping[str, Any]]) -> dict[str, CurrentIssue]:
    found: dict[str, CurrentIssue] = {}
    for issue in issues:
        values = issue.get("fields") or {}
        if isinstance(issue.get("key"), str) and isinstance(values.get("updated"), str):
            found[issue["key"]] = CurrentIssue(issue["key"], values["updated"], values)
    return found
